// Hard Concrete gates for L0 regularisation (Louizos, Welling & Kingma 2018): a Binary Concrete
// sample stretched to (gamma, zeta) and clamped to [0, 1], so that a gate is exactly 0 or 1
// with positive probability and differentiable in between; the expected L0 norm in closed form;
// the deterministic gate used at test time.
#pragma once

#include <cmath>

#include "gumbel/core/numeric.hpp"
#include "gumbel/ops/activation.hpp"
#include "gumbel/ops/elementwise.hpp"
#include "gumbel/relax/binary_concrete.hpp"

namespace gumbel {

/// The stretch interval (gamma, zeta) and the temperature beta; the paper's defaults.
struct HardConcreteOptions {
  double beta = 2.0 / 3.0;
  double gamma = -0.1;
  double zeta = 1.1;
};

namespace detail {

/// The options are valid, and beta, 1 / beta and (zeta - gamma) / beta are positive and finite
/// in T, the type the sample is computed in (beta = 1e-40 is fine in double, 0 or inf in float).
template <class T = double>
void require_hard_concrete(const char* op, const HardConcreteOptions& o) {
  if (!(o.beta > 0) || !std::isfinite(o.beta) || !std::isfinite(1.0 / o.beta)) {
    fail<ValueError>(op, "beta = ", o.beta, " must be positive and finite with a finite inverse");
  }
  const T inverse = T(1 / o.beta);
  if (!(T(o.beta) > 0) || !std::isfinite(inverse) ||
      !std::isfinite(T(o.zeta - o.gamma) / T(o.beta))) {
    fail<ValueError>(op, "beta = ", o.beta, " has no finite inverse in ",
                     sizeof(T) == 4 ? "float" : "double", " (1 / beta = ", 1 / o.beta, ")");
  }
  if (!(o.gamma < 0) || !std::isfinite(o.gamma)) {
    fail<ValueError>(op, "gamma = ", o.gamma, " must be negative and finite");
  }
  if (!(o.zeta > 1) || !std::isfinite(o.zeta)) {
    fail<ValueError>(op, "zeta = ", o.zeta, " must be finite and above 1");
  }
}

/// v clamped to [0, 1], NaN kept.
template <class Array>
auto clamp_unit(const Array& v) {
  using T = typename Array::Scalar;
  return (v < T(0)).select(T(0), (v > T(1)).select(T(1), v));
}

}  // namespace detail

/// A Hard Concrete gate per entry of log_alpha (any shape):
/// z = min(1, max(0, s (zeta - gamma) + gamma)),  s = sigmoid((log_alpha + L) / beta),
/// L = ln u - ln(1 - u) logistic noise. P(z = 0) = sigmoid(beta ln(-gamma / zeta) - log_alpha).
/// dlog_alpha += dz (zeta - gamma) s (1 - s) / beta where 0 < z < 1, 0 where z is clamped
template <class T>
Var<T> hard_concrete(const Var<T>& log_alpha, Generator& gen, const HardConcreteOptions& o = {}) {
  constexpr const char* op = "hard_concrete";
  Tape<T>& tape = detail::tape_of(op, log_alpha);
  detail::require_hard_concrete<T>(op, o);
  if (log_alpha.value().hasNaN()) detail::fail<ValueError>(op, "log_alpha contains NaN");
  const Index rows = log_alpha.rows();
  const Index cols = log_alpha.cols();
  const Index n = rows * cols;
  Var<T> out = tape.make(rows, cols, log_alpha.requires_grad(), op);
  const std::uint64_t first = gen.advance(Generator::blocks_for<T>(n));
  const bool grad = out.requires_grad();
  T* s = grad ? tape.scratch(n) : out.value_mut().data();
  detail::logistic_perturb(gen, first, rows, cols, log_alpha.value().data(), s);
  using Flat = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  Flat sf(s, n);
  sf = detail::sigmoid_exact(sf * T(1 / o.beta));
  const T width = T(o.zeta - o.gamma);
  const T gamma = T(o.gamma);
  Flat(out.value_mut().data(), n) = detail::clamp_unit(sf * width + gamma);
  if (!grad) return out;
  const T scale = width / T(o.beta);
  tape.on_backward(out, [log_alpha, out, s, rows, cols, scale] {
    const ConstMatrixMap<T> sm(s, rows, cols);
    const auto z = out.value().array();
    const auto inside = (z > T(0) && z < T(1)).template cast<T>();
    log_alpha.grad_sink().add(out.grad().array() * inside * scale * sm.array() *
                              (T(1) - sm.array()));
  });
  return out;
}

/// P(z != 0) = sigmoid(log_alpha - beta ln(-gamma / zeta)) per entry: summed, the expected L0
/// norm of the gated weights or units, the penalty of L0 regularisation (differentiable).
template <class T>
Var<T> hard_concrete_l0(const Var<T>& log_alpha, const HardConcreteOptions& o = {}) {
  detail::require_hard_concrete<T>("hard_concrete_l0", o);
  return sigmoid(log_alpha + T(-o.beta * std::log(-o.gamma / o.zeta)));
}

/// The deterministic gate of test time: min(1, max(0, sigmoid(log_alpha) (zeta - gamma) +
/// gamma)) ;  dlog_alpha += dz (zeta - gamma) s (1 - s) where 0 < z < 1, s = sigmoid(log_alpha)
template <class T>
Var<T> hard_concrete_gate(const Var<T>& log_alpha, const HardConcreteOptions& o = {}) {
  detail::require_hard_concrete<T>("hard_concrete_gate", o);
  const T width = T(o.zeta - o.gamma);
  const T gamma = T(o.gamma);
  return detail::unary(
      "hard_concrete_gate", log_alpha,
      [width, gamma](const auto& x) {
        return detail::clamp_unit(detail::sigmoid_exact(x) * width + gamma);
      },
      [width](const auto& x, const auto& z, const auto& dz) {
        const auto s = detail::sigmoid_exact(x);
        return dz * (z > T(0) && z < T(1)).template cast<T>() * width * s * (T(1) - s);
      });
}

}  // namespace gumbel
