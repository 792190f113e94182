// The Binary Concrete (relaxed Bernoulli) relaxation of Bernoulli samples (Maddison, Mnih & Teh
// 2017), its straight-through (hard) form and its log-density.
//
// Every entry of `logits` is one Bernoulli with P(1) = sigmoid(logit); -inf and +inf are the
// certain outcomes 0 and 1. Noise for entry (i, j) comes from the generator's counter, so a
// sample is the same whatever the thread count.
#pragma once

#include <cmath>
#include <cstdint>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/parallel.hpp"
#include "gumbel/core/tape.hpp"
#include "gumbel/random/generator.hpp"
#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel {
namespace detail {

/// out = logits + L for the draw at block `first`, L = ln u - ln(1 - u) logistic noise
/// (u uniform on the open interval (0, 1), so |L| < 17.4 in float and L is always finite).
template <class T>
void logistic_perturb(const Generator& gen, std::uint64_t first, Index rows, Index cols,
                      const T* logits, T* out) {
  parallel_rows(rows, cols, [&](Index i) {
    T* row = out + i * cols;
    gen.uniform_range(first, i * cols, cols, row);
    RowArray<T> z(row, cols);
    z = z.log() - (-z).log1p() + ConstRowArray<T>(logits + i * cols, cols);
  });
}

template <class T>
Var<T> binary_concrete_node(const Var<T>& logits, T tau, const Var<T>& tau_var, Generator& gen,
                            bool hard) {
  const char* op = hard ? "binary_concrete(hard)" : "binary_concrete";
  Tape<T>& tape = tau_var.empty() ? tape_of(op, logits) : tape_of(op, logits, tau_var);
  require_temperature(op, tau);
  if (logits.value().hasNaN()) fail<ValueError>(op, "logits contain NaN");
  const Index rows = logits.rows();
  const Index cols = logits.cols();
  const Index n = rows * cols;
  const bool tau_grad = !tau_var.empty() && tau_var.requires_grad();
  Var<T> out = tape.make(rows, cols, logits.requires_grad() || tau_grad, op);
  const std::uint64_t first = gen.advance(Generator::blocks_for<T>(n));
  const T inv_tau = T(1) / tau;
  const bool grad = out.requires_grad();
  // z = l + L; the soft sample y = sigmoid(z / tau) is the value (soft) or kept for the
  // gradient (hard, whose value is 1 where z > 0 and 0 elsewhere).
  T* z = grad || hard ? tape.scratch(n) : out.value_mut().data();
  logistic_perturb(gen, first, rows, cols, logits.value().data(), z);
  using Flat = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  const Flat zf(z, n);
  T* soft = hard ? (grad ? tape.scratch(n) : nullptr) : out.value_mut().data();
  if (soft != nullptr) Flat(soft, n) = sigmoid_exact(zf * inv_tau);
  if (hard) Flat(out.value_mut().data(), n) = (zf > T(0)).template cast<T>();
  if (!grad) return out;

  // y = sigmoid(z / tau) (hard shows 1[z > 0]) ; dl += dy y (1 - y) / tau,
  // dtau -= sum dy y (1 - y) z / tau^2 (0 where y (1 - y) = 0: z may be +-inf there)
  tape.on_backward(out, [logits, tau_var, out, z, soft, rows, cols, inv_tau, tau_grad] {
    const ConstMatrixMap<T> y(soft, rows, cols);
    const auto dz = out.grad().array() * y.array() * (T(1) - y.array());
    if (logits.requires_grad()) logits.grad_sink().add(dz * inv_tau);
    if (tau_grad) {
      const ConstMatrixMap<T> zm(z, rows, cols);
      const T dtau = (dz != T(0)).select(dz * zm.array(), T(0)).sum();
      tau_var.grad_mut()(0, 0) -= dtau * inv_tau * inv_tau;
    }
  });
  return out;
}

/// log p(y) of the Binary Concrete density at y in (0, 1), elementwise (the value of
/// torch.distributions.RelaxedBernoulli(tau, logits=l).log_prob(y)):
/// log p = ln tau + d - 2 softplus(d) - ln y - ln(1 - y),  d = l - tau logit(y).
template <class T>
Var<T> binary_concrete_log_prob_node(const Var<T>& logits, T tau, const Var<T>& tau_var,
                                     const Var<T>& y) {
  constexpr const char* op = "binary_concrete_log_prob";
  Tape<T>& tape = tau_var.empty() ? tape_of(op, logits, y) : tape_of(op, logits, y, tau_var);
  require_temperature(op, tau);
  if (logits.rows() != y.rows() || logits.cols() != y.cols()) {
    fail<ShapeError>(op, "logits ", shape_str(logits.rows(), logits.cols()), " and y ",
                     shape_str(y.rows(), y.cols()), " differ in shape");
  }
  const auto yv = y.value().array();
  if (!((yv > T(0)) && (yv < T(1))).all()) {
    Index r = 0, c = 0;
    (!((yv > T(0)) && (yv < T(1)))).template cast<int>().maxCoeff(&r, &c);
    fail<ValueError>(op, "y(", r, ", ", c, ") = ", yv(r, c),
                     " lies outside (0, 1), where the density is defined");
  }
  const bool tau_grad = !tau_var.empty() && tau_var.requires_grad();
  Var<T> out =
      tape.make(y.rows(), y.cols(), logits.requires_grad() || y.requires_grad() || tau_grad, op);
  const auto l = logits.value().array();
  const auto log_y = log_exact(yv);
  const auto log_1my = (-yv).log1p();
  const auto d = l - tau * (log_y - log_1my);
  // d - 2 softplus(d) = -|d| - 2 log1p(e^-|d|): logits of +-inf give -inf (all mass at 0 or 1).
  out.value_mut().array() =
      std::log(tau) - d.abs() - T(2) * (-d.abs()).exp().log1p() - log_y - log_1my;
  if (!out.requires_grad()) return out;

  // s = 1 - 2 sigmoid(d) ; dl += dp s, dy += dp (-tau s / (y (1 - y)) - 1/y + 1/(1 - y)),
  // dtau += sum dp (1/tau - s logit(y))
  tape.on_backward(out, [logits, y, tau_var, out, tau, tau_grad] {
    const auto ya = y.value().array();
    const auto dp = out.grad().array();
    const auto logit = log_exact(ya) - (-ya).log1p();
    const auto s = T(1) - T(2) * sigmoid_exact(logits.value().array() - tau * logit);
    if (logits.requires_grad()) logits.grad_sink().add(dp * s);
    if (y.requires_grad()) {
      y.grad_sink().add(dp * (-tau * s / (ya * (T(1) - ya)) - T(1) / ya + T(1) / (T(1) - ya)));
    }
    if (tau_grad) tau_var.grad_mut()(0, 0) += (dp * (T(1) / tau - s * logit)).sum();
  });
  return out;
}

}  // namespace detail

/// A Binary Concrete (relaxed Bernoulli) sample of every entry: y = sigmoid((l + L) / tau),
/// L = ln u - ln(1 - u) logistic noise; P(y > 1/2) = sigmoid(l). With hard = true the value is
/// exactly 1 where l + L > 0 and 0 elsewhere (a Bernoulli(sigmoid(l)) sample) and the gradient
/// is the soft sample's (straight-through).
template <class T>
Var<T> binary_concrete(const Var<T>& logits, detail::NotDeduced<T> tau, Generator& gen,
                       bool hard = false) {
  return detail::binary_concrete_node(logits, T(tau), Var<T>(), gen, hard);
}

/// As above, with a learnable temperature: `tau` is a 1x1 variable and receives a gradient.
template <class T>
Var<T> binary_concrete(const Var<T>& logits, const Var<T>& tau, Generator& gen, bool hard = false) {
  const char* op = hard ? "binary_concrete(hard)" : "binary_concrete";
  return detail::binary_concrete_node(logits, detail::temperature_of(op, logits, tau), tau, gen,
                                      hard);
}

/// The log-density of the Binary Concrete distribution at y (same shape as logits, entries in
/// (0, 1)), elementwise, differentiable in the logits and y.
template <class T>
Var<T> binary_concrete_log_prob(const Var<T>& logits, detail::NotDeduced<T> tau, const Var<T>& y) {
  return detail::binary_concrete_log_prob_node(logits, T(tau), Var<T>(), y);
}

/// As above, with the temperature a 1x1 variable that receives a gradient.
template <class T>
Var<T> binary_concrete_log_prob(const Var<T>& logits, const Var<T>& tau, const Var<T>& y) {
  return detail::binary_concrete_log_prob_node(
      logits, detail::temperature_of("binary_concrete_log_prob", logits, tau), tau, y);
}

}  // namespace gumbel
