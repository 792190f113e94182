// Row-parallel loops. With OpenMP enabled (-fopenmp) large loops use every thread; without it
// they run serially. Work is split by rows and random numbers are drawn by element counter, so
// results never depend on the thread count.
#pragma once

#include "gumbel/core/error.hpp"
#include "gumbel/core/types.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gumbel {

/// Threads a parallel loop may use (1 without OpenMP).
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// The most threads set_threads accepts: far above any machine's cores, far below the count
/// at which the OpenMP runtime fails to create its threads and aborts.
inline constexpr int kMaxThreads = 1024;

/// Sets the threads later parallel loops use (checked, then ignored without OpenMP). A count
/// outside [1, kMaxThreads] is a ValueError.
inline void set_threads(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    detail::fail<ValueError>("set_threads", "threads = ", threads, " must lie in [1, ", kMaxThreads,
                             "]");
  }
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

namespace detail {

/// True inside a parallel region (a data-parallel worker): loops there run on their thread.
inline bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

/// Below this many elements a loop is not worth waking other threads for.
inline constexpr Index kParallelGrain = Index{1} << 15;

/// Calls body(first_row, count) on contiguous shares of [0, rows): one share per thread when
/// the work is large, else one call for all rows. `body` must not throw: report failures
/// through its captures and throw after the loop.
template <class Body>
void parallel_row_blocks(Index rows, Index elements_per_row, Body&& body) {
#ifdef _OPENMP
  const bool parallel = rows > 1 && rows * elements_per_row >= kParallelGrain &&
                        omp_get_max_threads() > 1 && !omp_in_parallel();
  if (parallel) {
    // A static split by hand: LLVM's libomp allocates in every `omp for` scheduling call.
#pragma omp parallel
    {
      const Index parts = omp_get_num_threads();
      const Index part = omp_get_thread_num();
      const Index first = rows * part / parts;
      const Index end = rows * (part + 1) / parts;
      if (end > first) body(first, end - first);
    }
    return;
  }
  // Not `if(parallel)` on the pragma: libgomp allocates a team even for a serial region.
#else
  (void)elements_per_row;
#endif
  if (rows > 0) body(Index{0}, rows);
}

/// Calls body(i) for every row i, rows shared among threads as by parallel_row_blocks.
template <class Body>
void parallel_rows(Index rows, Index elements_per_row, Body&& body) {
  parallel_row_blocks(rows, elements_per_row, [&](Index first, Index count) {
    for (Index i = first; i < first + count; ++i) body(i);
  });
}

}  // namespace detail
}  // namespace gumbel
