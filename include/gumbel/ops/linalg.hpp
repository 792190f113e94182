// Matrix products: matmul and the affine layer linear(x, W, b).
#pragma once

#include "gumbel/core/tape.hpp"

namespace gumbel {
namespace detail {

template <class T>
void require_linear_input(const Var<T>& x, const Var<T>& weight) {
  if (x.cols() != weight.cols()) {
    fail<ShapeError>("linear", "input has ", x.cols(), " features but the weight expects ",
                     weight.cols(), ": x is ", shape_str(x.rows(), x.cols()), ", weight is ",
                     shape_str(weight.rows(), weight.cols()));
  }
}

}  // namespace detail

/// y = a b ;  da += dy b^T, db += a^T dy
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  Tape<T>& tape = detail::tape_of("matmul", a, b);
  if (a.cols() != b.rows()) {
    detail::fail<ShapeError>("matmul", "inner dimensions differ: a is ",
                             shape_str(a.rows(), a.cols()), ", b is ",
                             shape_str(b.rows(), b.cols()));
  }
  Var<T> y = tape.make(a.rows(), b.cols(), detail::any_requires_grad(a, b));
  y.value_mut().noalias() = a.value() * b.value();
  tape.on_backward(y, [a, b, y] {
    if (a.requires_grad()) a.grad_mut().noalias() += y.grad() * b.value().transpose();
    if (b.requires_grad()) b.grad_mut().noalias() += a.value().transpose() * y.grad();
  });
  return y;
}

/// y = x W^T + b, W is out x in (PyTorch's layout), b is 1 x out ;
/// dx += dy W, dW += dy^T x, db += column sums of dy
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& weight, const Var<T>& bias) {
  Tape<T>& tape = detail::tape_of("linear", x, weight, bias);
  detail::require_linear_input(x, weight);
  if (bias.rows() != 1 || bias.cols() != weight.rows()) {
    detail::fail<ShapeError>("linear", "bias must be 1x", weight.rows(), " for a weight of ",
                             shape_str(weight.rows(), weight.cols()), ", got ",
                             shape_str(bias.rows(), bias.cols()));
  }
  Var<T> y = tape.make(x.rows(), weight.rows(), detail::any_requires_grad(x, weight, bias));
  auto yv = y.value_mut();
  yv.noalias() = x.value() * weight.value().transpose();
  yv.rowwise() += bias.value().row(0);
  tape.on_backward(y, [x, weight, bias, y] {
    const auto dy = y.grad();
    if (x.requires_grad()) x.grad_mut().noalias() += dy * weight.value();
    if (weight.requires_grad()) weight.grad_mut().noalias() += dy.transpose() * x.value();
    if (bias.requires_grad()) bias.grad_mut() += dy.colwise().sum();
  });
  return y;
}

/// y = x W^T ;  dx += dy W, dW += dy^T x
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& weight) {
  Tape<T>& tape = detail::tape_of("linear", x, weight);
  detail::require_linear_input(x, weight);
  Var<T> y = tape.make(x.rows(), weight.rows(), detail::any_requires_grad(x, weight));
  y.value_mut().noalias() = x.value() * weight.value().transpose();
  tape.on_backward(y, [x, weight, y] {
    const auto dy = y.grad();
    if (x.requires_grad()) x.grad_mut().noalias() += dy * weight.value();
    if (weight.requires_grad()) weight.grad_mut().noalias() += dy.transpose() * x.value();
  });
  return y;
}

}  // namespace gumbel
