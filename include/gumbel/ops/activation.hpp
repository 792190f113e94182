// Activation functions: relu, sigmoid, tanh, softplus.
#pragma once

#include "gumbel/ops/elementwise.hpp"

namespace gumbel {

/// y = max(x, 0) ;  dx += dy where x > 0 (the subgradient at 0 is 0, as in PyTorch)
template <class T>
Var<T> relu(const Var<T>& x) {
  return detail::unary(
      "relu", x, [](const auto& v) { return detail::relu_nan(v); },
      [](const auto& v, const auto&, const auto& dy) {
        return detail::pass_where_positive(v, dy);
      });
}

/// y = 1 / (1 + e^-x) ;  dx += dy * y * (1 - y)
template <class T>
Var<T> sigmoid(const Var<T>& x) {
  // sigmoid_exact, not Eigen's logistic(): Eigen's float form is off by thousands of ulp for x
  // between about -15 and -2.7 and flushes subnormal results to 0.
  return detail::unary(
      "sigmoid", x, [](const auto& v) { return detail::sigmoid_exact(v); },
      [](const auto&, const auto& y, const auto& dy) { return dy * y * (T(1) - y); });
}

/// y = tanh x ;  dx += dy * (1 - y^2)
template <class T>
Var<T> tanh(const Var<T>& x) {
  return detail::unary(
      "tanh", x, [](const auto& v) { return v.tanh(); },
      [](const auto&, const auto& y, const auto& dy) { return dy * (T(1) - y.square()); });
}

/// y = ln(1 + e^x) = max(x, 0) + log1p(e^-|x|) ;  dx += dy sigmoid(x)
template <class T>
Var<T> softplus(const Var<T>& x) {
  return detail::unary(
      "softplus", x,
      [](const auto& v) { return v.max(T(0)) + detail::exp_flush(-v.abs()).log1p(); },
      [](const auto& v, const auto&, const auto& dy) { return dy * detail::sigmoid_exact(v); });
}

}  // namespace gumbel
