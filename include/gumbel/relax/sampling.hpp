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

/// Writes p = logits + g for row i (noise from the draw at block `first`) and returns the index
/// of the largest p, or -1 when the row is unusable (all -inf, or +inf / NaN).
template <class T>
Index perturb_row(const Generator& gen, std::uint64_t first, Index i, const T* logits, T* p,
                  Index k) {
  gumbel_range(gen, first, i * k, k, p);
  RowArray<T> out(p, k);
  out += ConstRowArray<T>(logits, k);
  Index arg = 0;
  const T m = out.maxCoeff(&arg);
  if (!std::isfinite(m)) return -1;
  return arg;
}

/// In place: row <- softmax(row * inv_tau), given the row's maximum.
template <class T>
void softmax_row(T* row, Index k, T max, T inv_tau) {
  RowArray<T> r(row, k);
  r = exp_flush((r - max) * inv_tau);
  r *= T(1) / r.sum();
}

/// In place: row <- log_softmax(row * inv_tau), given the row's maximum.
template <class T>
void log_softmax_row(T* row, Index k, T max, T inv_tau) {
  RowArray<T> r(row, k);
  r = (r - max) * inv_tau;
  r -= std::log(exp_flush(r).sum());
}

}  // namespace gumbel::detail
