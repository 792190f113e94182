// Losses: binary cross-entropy (on probabilities and on logits) and the KL divergence of
// categorical distributions given by logits, against a uniform prior or another categorical.
#pragma once

#include <cmath>

#include "gumbel/ops/elementwise.hpp"
#include "gumbel/ops/reduce.hpp"
#include "gumbel/ops/softmax.hpp"

namespace gumbel {

/// l = -(t max(ln p, -100) + (1 - t) max(ln(1 - p), -100)) ;
/// dp += dy (p - t) / max(p (1 - p), 1e-12), dt += dy (max(ln(1-p), -100) - max(ln p, -100)).
/// The clamps are PyTorch's: a probability of exactly 0 or 1 gives a finite loss and gradient.
template <class T>
Var<T> binary_cross_entropy(const Var<T>& p, const Var<T>& target,
                            Reduction reduction = Reduction::mean) {
  detail::tape_of("binary_cross_entropy", p, target);
  detail::require_same_shape("binary_cross_entropy", p, target);
  const auto pv = p.value().array();
  if (!((pv >= T(0)) && (pv <= T(1))).all()) {
    detail::fail<ValueError>("binary_cross_entropy",
                             "every probability must lie in [0, 1] (apply sigmoid first, or use "
                             "binary_cross_entropy_with_logits)");
  }
  const auto terms = detail::binary(
      "binary_cross_entropy", p, target,
      [](const auto& q, const auto& t) {
        return -(t * detail::log_exact(q).max(T(-100)) +
                 (T(1) - t) * detail::log_exact(T(1) - q).max(T(-100)));
      },
      [](const auto& q, const auto& t, const auto&, const auto& dy) {
        return dy * (q - t) / (q * (T(1) - q)).max(T(1e-12));
      },
      [](const auto& q, const auto&, const auto&, const auto& dy) {
        return dy * (detail::log_exact(T(1) - q).max(T(-100)) - detail::log_exact(q).max(T(-100)));
      });
  return reduce(terms, reduction, "binary_cross_entropy");
}

/// l = max(x, 0) - x t + ln(1 + e^-|x|), the cross-entropy of sigmoid(x) against t without
/// overflow ;  dx += dy (sigmoid(x) - t), dt -= dy x
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& target,
                                        Reduction reduction = Reduction::mean) {
  detail::tape_of("binary_cross_entropy_with_logits", logits, target);
  detail::require_same_shape("binary_cross_entropy_with_logits", logits, target);
  const auto terms = detail::binary(
      "binary_cross_entropy_with_logits", logits, target,
      [](const auto& x, const auto& t) { return x.max(T(0)) - x * t + (-x.abs()).exp().log1p(); },
      [](const auto& x, const auto& t, const auto&, const auto& dy) {
        return dy * (detail::sigmoid_exact(x) - t);
      },
      [](const auto& x, const auto&, const auto&, const auto& dy) { return -dy * x; });
  return reduce(terms, reduction, "binary_cross_entropy_with_logits");
}

/// Per row: KL(q || uniform over K) = sum_k q_k ln q_k + ln K, q = softmax(logits) (log-probs
/// work as logits too) ;  dlogits_k += dy q_k (ln q_k - sum_j q_j ln q_j). Masked (-inf)
/// classes contribute 0. With Reduction::none the result is rows x 1; mean averages the rows.
template <class T>
Var<T> kl_uniform(const Var<T>& logits, Reduction reduction = Reduction::mean) {
  Tape<T>& tape = detail::tape_of("kl_uniform", logits);
  detail::require_classes("kl_uniform", logits);
  const Index rows = logits.rows();
  const Index k = logits.cols();
  T* log_q_data = tape.scratch(rows * k);
  T* q_data = tape.scratch(rows * k);
  MatrixMap<T> log_q(log_q_data, rows, k);
  detail::log_softmax_rows("kl_uniform", logits.value(), log_q, q_data);

  Var<T> kl = tape.make(rows, 1, logits.requires_grad());
  const T log_k = std::log(static_cast<T>(k));
  const ConstMatrixMap<T> q(q_data, rows, k);
  // Masked classes (q = 0, ln q = -inf) contribute 0, not NaN.
  kl.value_mut() = detail::times_unless_zero(q.array(), log_q.array()).matrix().rowwise().sum();
  kl.value_mut().array() += log_k;
  tape.on_backward(kl, [logits, kl, log_q_data, q_data, rows, k, log_k] {
    const ConstMatrixMap<T> lq(log_q_data, rows, k);
    const ConstMatrixMap<T> qm(q_data, rows, k);
    const auto klv = kl.value();
    const auto dy = kl.grad();
    auto dx = logits.grad_sink();
    for (Index i = 0; i < rows; ++i) {
      const T neg_entropy = klv(i, 0) - log_k;
      dx.add_row(i, dy(i, 0) * detail::times_unless_zero(qm.row(i).array(),
                                                         lq.row(i).array() - neg_entropy));
    }
  });
  return reduce(kl, reduction, "kl_uniform");
}

/// Per row: KL(q || p) = sum_k q_k (ln q_k - ln p_k), q = softmax(q_logits), p =
/// softmax(p_logits) ;  dq_logits_k += dy q_k (ln q_k - ln p_k - KL), dp_logits_k += dy (p_k -
/// q_k). Classes with q_k = 0 contribute 0; q_k > 0 where p_k = 0 gives +inf, the true value.
template <class T>
Var<T> kl_categorical(const Var<T>& q_logits, const Var<T>& p_logits,
                      Reduction reduction = Reduction::mean) {
  Tape<T>& tape = detail::tape_of("kl_categorical", q_logits, p_logits);
  detail::require_same_shape("kl_categorical", q_logits, p_logits);
  detail::require_classes("kl_categorical", q_logits);
  const Index rows = q_logits.rows();
  const Index k = q_logits.cols();
  T* log_q_data = tape.scratch(rows * k);
  T* log_p_data = tape.scratch(rows * k);
  T* q_data = tape.scratch(rows * k);
  T* p_data = tape.scratch(rows * k);
  MatrixMap<T> log_q(log_q_data, rows, k);
  MatrixMap<T> log_p(log_p_data, rows, k);
  detail::log_softmax_rows("kl_categorical", q_logits.value(), log_q, q_data);
  detail::log_softmax_rows("kl_categorical", p_logits.value(), log_p, p_data);

  Var<T> kl = tape.make(rows, 1, detail::any_requires_grad(q_logits, p_logits));
  const ConstMatrixMap<T> q(q_data, rows, k);
  // Classes with q = 0 contribute 0 (even where p = 0 too, which would be NaN).
  kl.value_mut() =
      detail::times_unless_zero(q.array(), log_q.array() - log_p.array()).matrix().rowwise().sum();
  tape.on_backward(kl, [q_logits, p_logits, kl, log_q_data, log_p_data, q_data, p_data, rows, k] {
    const ConstMatrixMap<T> lq(log_q_data, rows, k);
    const ConstMatrixMap<T> lp(log_p_data, rows, k);
    const ConstMatrixMap<T> qm(q_data, rows, k);
    const ConstMatrixMap<T> p(p_data, rows, k);
    const auto klv = kl.value();
    const auto dy = kl.grad();
    // One operand after the other: both may be the same variable, and the second must see
    // the first's rows as written.
    if (q_logits.requires_grad()) {
      auto dq = q_logits.grad_sink();
      for (Index i = 0; i < rows; ++i) {
        dq.add_row(i, dy(i, 0) * detail::times_unless_zero(
                                     qm.row(i).array(),
                                     lq.row(i).array() - lp.row(i).array() - klv(i, 0)));
      }
    }
    if (p_logits.requires_grad()) {
      auto dp = p_logits.grad_sink();
      for (Index i = 0; i < rows; ++i) {
        dp.add_row(i, dy(i, 0) * (p.row(i).array() - qm.row(i).array()));
      }
    }
  });
  return reduce(kl, reduction, "kl_categorical");
}

}  // namespace gumbel
