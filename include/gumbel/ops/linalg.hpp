// Matrix products: matmul and the affine layer linear(x, W, b).
#pragma once

#include "gumbel/core/gemm.hpp"
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

/// v's gradient += a b; assigned, without a pass of zeroing, when nothing was written into it.
template <class T>
void gemm_into_grad(const Var<T>& v, const GemmOperand<T>& a, const GemmOperand<T>& b) {
  GradSink<T> sink = v.grad_sink();
  gemm_into(sink.memory(), a, b, T(1), sink.assigns());
}

/// The shared part of both linear backwards: dx += dy W, dW += dy^T x.
template <class T>
void linear_backward(const Var<T>& x, const Var<T>& weight, const Var<T>& y) {
  if (x.requires_grad()) gemm_into_grad(x, as_operand<T>(y.grad()), as_operand<T>(weight.value()));
  if (weight.requires_grad())
    gemm_into_grad(weight, as_transposed<T>(y.grad()), as_operand<T>(x.value()));
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
  Var<T> y = tape.make(a.rows(), b.cols(), detail::any_requires_grad(a, b), "matmul");
  detail::gemm_assign(y.value_mut(), detail::as_operand<T>(a.value()),
                      detail::as_operand<T>(b.value()));
  tape.on_backward(y, [a, b, y] {
    using detail::as_operand;
    using detail::as_transposed;
    if (a.requires_grad())
      detail::gemm_into_grad(a, as_operand<T>(y.grad()), as_transposed<T>(b.value()));
    if (b.requires_grad())
      detail::gemm_into_grad(b, as_transposed<T>(a.value()), as_operand<T>(y.grad()));
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
  Var<T> y =
      tape.make(x.rows(), weight.rows(), detail::any_requires_grad(x, weight, bias), "linear");
  // Start from the broadcast bias so the product adds into it: one pass fewer over y.
  y.value_mut().rowwise() = bias.value().row(0);
  detail::gemm_accumulate(y.value_mut(), detail::as_operand<T>(x.value()),
                          detail::as_transposed<T>(weight.value()));
  tape.on_backward(y, [x, weight, bias, y] {
    detail::linear_backward(x, weight, y);
    if (bias.requires_grad()) bias.grad_sink().add(y.grad().colwise().sum().array());
  });
  return y;
}

/// y = x W^T ;  dx += dy W, dW += dy^T x
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& weight) {
  Tape<T>& tape = detail::tape_of("linear", x, weight);
  detail::require_linear_input(x, weight);
  Var<T> y = tape.make(x.rows(), weight.rows(), detail::any_requires_grad(x, weight), "linear");
  detail::gemm_assign(y.value_mut(), detail::as_operand<T>(x.value()),
                      detail::as_transposed<T>(weight.value()));
  tape.on_backward(y, [x, weight, y] { detail::linear_backward(x, weight, y); });
  return y;
}

}  // namespace gumbel
