// Log-densities of the Concrete (Gumbel-Softmax) distribution (Maddison et al. 2017), built
// from differentiable ops so that gradients reach the sample, the logits and the temperature.
#pragma once

#include <cmath>

#include "gumbel/ops/elementwise.hpp"
#include "gumbel/ops/reduce.hpp"
#include "gumbel/ops/softmax.hpp"

namespace gumbel {

/// Per row, the log-density of a log-space sample x = log y (ExpConcrete):
/// ln p(x) = lgamma(K) + (K-1) ln tau + sum_k log_softmax(logits - tau x)_k.
/// Working in log space keeps it finite at low temperatures where y itself underflows.
/// Shapes: `log_sample` and `logits` are B x K, `tau` is 1x1; the result is B x 1.
template <class T>
Var<T> exp_concrete_log_prob(const Var<T>& log_sample, const Var<T>& logits, const Var<T>& tau) {
  constexpr const char* op = "exp_concrete_log_prob";
  Tape<T>& tape = detail::tape_of(op, log_sample, logits, tau);
  detail::require_same_shape(op, log_sample, logits);
  if (tau.rows() != 1 || tau.cols() != 1) {
    detail::fail<ShapeError>(op, "tau must be 1x1, got ", shape_str(tau.rows(), tau.cols()));
  }
  if (!(tau.item() > T(0))) detail::fail<ValueError>(op, "tau = ", tau.item(), " must be positive");
  if (!logits.value().allFinite()) {
    detail::fail<ValueError>(op, "the density needs finite logits (no masked classes)");
  }
  const Index k = logits.cols();
  const Var<T> per_class = log_softmax(logits - mul(tau, log_sample));
  const Var<T> log_norm = scale(log(tau), T(k - 1)) + tape.scalar(std::lgamma(T(k)));
  return sum_rows(per_class) + log_norm;
}

/// Per row, the log-density of a relaxed one-hot sample y on the simplex:
/// ln p(y) = ln p_ExpConcrete(ln y) - sum_k ln y_k (the change of variables y = exp x).
template <class T>
Var<T> concrete_log_prob(const Var<T>& sample, const Var<T>& logits, const Var<T>& tau) {
  const Var<T> log_sample = log(sample);
  return exp_concrete_log_prob(log_sample, logits, tau) - sum_rows(log_sample);
}

/// Overloads with a fixed temperature.
template <class T>
Var<T> exp_concrete_log_prob(const Var<T>& log_sample, const Var<T>& logits,
                             detail::NotDeduced<T> tau) {
  return exp_concrete_log_prob(log_sample, logits,
                               detail::tape_of("exp_concrete_log_prob", logits).scalar(tau));
}
template <class T>
Var<T> concrete_log_prob(const Var<T>& sample, const Var<T>& logits, detail::NotDeduced<T> tau) {
  return concrete_log_prob(sample, logits,
                           detail::tape_of("concrete_log_prob", logits).scalar(tau));
}

}  // namespace gumbel
