// Shared pieces of the Gumbel samplers: temperature checks, failed rows, and the per-row
// maximum, argmax and softmax of perturbed logits.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/simd/dispatch.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel::detail {

template <class T>
using RowArray = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
template <class T>
using ConstRowArray = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;

/// A temperature must be a positive, finite number whose inverse is finite too: the samplers
/// scale by 1/tau, and a tau below 1/max (a subnormal float such as 1e-40) would make every
/// sample NaN.
template <class T>
T require_temperature(const char* op, T tau) {
  if (!(tau > T(0)) || !std::isfinite(tau)) {
    fail<ValueError>(op, "temperature tau = ", tau, " is invalid: it must be positive and finite");
  }
  if (!std::isfinite(T(1) / tau)) {
    fail<ValueError>(op, "temperature tau = ", tau, " is invalid: 1/tau overflows (the smallest ",
                     "usable tau is 1/max = ", T(1) / std::numeric_limits<T>::max(), ")");
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

// The row kernels, each the AVX-512 one or its generic twin (core/simd/dispatch.hpp).
using kernels::block_argmax;
using kernels::row_argmax;
using kernels::row_max;
using kernels::softmax_block;
using kernels::softmax_rows;
using kernels::write_one_hot;

/// In place: row <- log_softmax(row * inv_tau), given the row's maximum.
template <class T>
void log_softmax_row(T* row, Index k, T max, T inv_tau) {
  RowArray<T> r(row, k);
  r = (r - max) * inv_tau;
  r -= std::log(exp_flush(r).sum());
}

}  // namespace gumbel::detail
