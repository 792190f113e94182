// MPI basics for data-parallel training: errors, rank and size, parameter broadcast, per-rank
// noise, and the options of distributed::DataParallel. Include gumbel/distributed/mpi.hpp.
#pragma once

// The deprecated MPI C++ bindings are not used (and warn under -Wextra): skip them.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "gumbel/core/error.hpp"
#include "gumbel/core/parameter.hpp"
#include "gumbel/random/generator.hpp"

namespace gumbel::distributed {

/// An MPI call that failed (the call and MPI's own message), or a step that failed on a rank:
/// every rank throws it, naming the rank that failed and its error.
class DistributedError : public Error {
 public:
  using Error::Error;
};

namespace detail {

inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw DistributedError(std::string(call) + " failed: " + std::string(text, std::size_t(length)));
}

template <class T>
MPI_Datatype mpi_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

/// An element count as MPI's int, or a DistributedError (a bucket above 2^31 elements).
inline int count(Index n) {
  if (n < 0 || n > Index{2147483647}) {
    throw DistributedError("a message of " + std::to_string(n) + " elements exceeds MPI's int");
  }
  return int(n);
}

}  // namespace detail

/// This process's rank and the number of ranks of `comm`.
inline int rank(MPI_Comm comm) {
  int r = 0;
  detail::check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}
inline int size(MPI_Comm comm) {
  int s = 0;
  detail::check(MPI_Comm_size(comm, &s), "MPI_Comm_size");
  return s;
}

/// Copies every parameter's value from rank `root` to all ranks of `comm`, in list order
/// (collective: every rank calls it with the same list shapes).
template <class T>
void broadcast_parameters(const ParameterList<T>& params, MPI_Comm comm, int root = 0) {
  for (Parameter<T>* p : params) {
    detail::check(
        MPI_Bcast(p->value.data(), detail::count(p->size()), detail::mpi_type<T>(), root, comm),
        "MPI_Bcast");
  }
}

/// A generator of its own for each rank: `base`'s seed and stream, rank r's draws starting at
/// Philox block r * 2^32 (Generator::subsequence), so that no two ranks draw the same noise.
/// (Noise per block of examples, Generator::subsequence(step * blocks + block), is what makes
/// results independent of the rank count; this is for noise that belongs to the rank.)
inline Generator rank_generator(const Generator& base, int rank) {
  return base.subsequence(std::uint64_t(rank));
}

/// How the ranks' gradients are summed.
enum class Reduction {
  /// The blocks' tree order of block_tree.hpp, whatever the rank count: the same bits on 1, 2,
  /// 3 or 4 ranks. Per bucket each rank sends every other rank that rank's shard of its tree
  /// pieces (MPI_Isend, straight from the gradients); each rank sums and updates its shard in
  /// tree order and sends the new values to the others (the traffic of a ring all-reduce:
  /// about twice the bucket per rank).
  exact,
  /// MPI_Iallreduce (MPI_SUM) of each rank's own sum: MPI's summation order, so results agree
  /// across rank counts to the rounding of the sum only.
  fast,
};

struct Options {
  /// Blocks per global batch, at least the number of ranks; the results depend on it, not on
  /// the rank or thread count. 4 lets 1, 2, 3 or 4 ranks reproduce each other.
  Index blocks = 4;
  int threads = 1;  ///< per rank
  Reduction reduction = Reduction::exact;
  /// Gradient elements are grouped into buckets of at most this many bytes, in reverse
  /// parameter order (backward finishes the last layers first); a bucket's exchange starts as
  /// soon as backward has finished all of its parameters on this rank.
  std::size_t bucket_bytes = std::size_t{1} << 20;
};

}  // namespace gumbel::distributed
