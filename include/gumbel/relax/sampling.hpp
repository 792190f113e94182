// Shared pieces of the Gumbel samplers: temperature checks, perturbing a row of logits with
// Gumbel noise, and the per-row softmax of perturbed logits.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/tape.hpp"
#include "gumbel/random/gumbel_noise.hpp"

namespace gumbel::detail {

template <class T>
using RowArray = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
template <class T>
using ConstRowArray = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;

/// A temperature must be a positive, finite number.
template <class T>
T require_temperature(const char* op, T tau) {
  if (!(tau > T(0)) || !std::isfinite(tau)) {
    fail<ValueError>(op, "temperature tau = ", tau, " is invalid: it must be positive and finite");
  }
  return tau;
}

/// The first row that failed inside a parallel loop (exceptions cannot leave one).
class RowFailure {
 public:
  void report(Index row) {
    Index seen = first_.load();
    while ((seen < 0 || row < seen) && !first_.compare_exchange_weak(seen, row)) {
    }
  }
  /// Throws the usual message about row logits when any row failed.
  void throw_if_failed(const char* op) const {
    if (first_.load() >= 0) {
      fail<ValueError>(op, "row ", first_.load(),
                       " of the logits has no finite entry, or contains +inf or NaN (masked "
                       "classes are -inf, and every row needs at least one finite logit)");
    }
  }

 private:
  std::atomic<Index> first_{-1};
};

/// Sampling loops work on blocks of whole rows of about this many elements: short rows are
/// batched so that the noise, exp and add run over long vectors, and a block stays in cache.
inline constexpr Index kSamplingBlock = 2048;
inline constexpr Index kMaxBlockRows = 256;

inline Index sampling_block_rows(Index k) {
  return std::clamp<Index>(kSamplingBlock / std::max<Index>(k, 1), 1, kMaxBlockRows);
}

/// The index of the first largest entry of a row, or -1 when the row has no finite maximum
/// (all -inf, or a +inf or NaN anywhere).
template <class T>
Index row_argmax(const T* row, Index k) {
  const T m = ConstRowArray<T>(row, k).template maxCoeff<Eigen::PropagateNaN>();
  if (!std::isfinite(m)) return -1;
  Index j = 0;
  while (row[j] != m) ++j;
  return j;
}

/// In place, for each of `rows` rows of length k: row <- softmax(row * inv_tau), given each
/// row's argmax. The exp runs once over the whole block.
template <class T>
void softmax_block(T* block, Index rows, Index k, const Index* argmax, T inv_tau) {
  for (Index r = 0; r < rows; ++r) {
    RowArray<T> row(block + r * k, k);
    row = (row - block[r * k + argmax[r]]) * inv_tau;
  }
  RowArray<T> all(block, rows * k);
  all = exp_flush(all);
  for (Index r = 0; r < rows; ++r) {
    RowArray<T> row(block + r * k, k);
    row *= T(1) / row.sum();
  }
}

/// Writes p = logits + g for row i (noise from the draw at block `first`) and returns the index
/// of the largest p, or -1 when the row is unusable (all -inf, or +inf / NaN).
template <class T>
Index perturb_row(const Generator& gen, std::uint64_t first, Index i, const T* logits, T* p,
                  Index k) {
  gumbel_range(gen, first, i * k, k, p);
  RowArray<T>(p, k) += ConstRowArray<T>(logits, k);
  return row_argmax(p, k);
}

/// In place: row <- log_softmax(row * inv_tau), given the row's maximum.
template <class T>
void log_softmax_row(T* row, Index k, T max, T inv_tau) {
  RowArray<T> r(row, k);
  r = (r - max) * inv_tau;
  r -= std::log(exp_flush(r).sum());
}

}  // namespace gumbel::detail
