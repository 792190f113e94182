// Reductions: sum and mean of everything, of each row, of each column.
#pragma once

#include "gumbel/core/parallel.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel {
namespace detail {

/// x's gradient += value at every element (assigned when nothing was written yet), rows shared
/// among threads when x is large.
template <class T>
void add_everywhere(const Var<T>& x, T value) {
  GradSink<T> sink = x.grad_sink();
  const Index cols = x.cols();
  parallel_row_blocks(x.rows(), cols, [&](Index r0, Index n) {
    sink.add_rows(
        r0, n,
        Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Constant(n, cols, value));
  });
}

}  // namespace detail

/// y = sum_ij x_ij (1x1) ;  dx_ij += dy
template <class T>
Var<T> sum(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("sum", x);
  Var<T> y = tape.make(1, 1, x.requires_grad());
  y.value_mut()(0, 0) = x.value().sum();
  tape.on_backward(y, [x, y] { detail::add_everywhere(x, y.grad()(0, 0)); });
  return y;
}

/// y = sum_ij x_ij / (rows cols) (1x1) ;  dx_ij += dy / (rows cols)
template <class T>
Var<T> mean(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("mean", x);
  if (x.size() == 0) detail::fail<ShapeError>("mean", "of an empty 0-element matrix");
  const T inv_n = T(1) / static_cast<T>(x.size());
  Var<T> y = tape.make(1, 1, x.requires_grad());
  y.value_mut()(0, 0) = x.value().sum() * inv_n;
  tape.on_backward(y, [x, y, inv_n] { detail::add_everywhere(x, y.grad()(0, 0) * inv_n); });
  return y;
}

/// y_i = sum_j x_ij (rows x 1) ;  dx_ij += dy_i
template <class T>
Var<T> sum_rows(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("sum_rows", x);
  Var<T> y = tape.make(x.rows(), 1, x.requires_grad());
  y.value_mut() = x.value().rowwise().sum();
  tape.on_backward(y,
                   [x, y] { x.grad_sink().add(y.grad().col(0).replicate(1, x.cols()).array()); });
  return y;
}

/// y_i = mean_j x_ij (rows x 1) ;  dx_ij += dy_i / cols
template <class T>
Var<T> mean_rows(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("mean_rows", x);
  if (x.cols() == 0) detail::fail<ShapeError>("mean_rows", "of rows with 0 columns");
  const T inv_n = T(1) / static_cast<T>(x.cols());
  Var<T> y = tape.make(x.rows(), 1, x.requires_grad());
  y.value_mut() = x.value().rowwise().sum() * inv_n;
  tape.on_backward(y, [x, y, inv_n] {
    x.grad_sink().add(y.grad().col(0).replicate(1, x.cols()).array() * inv_n);
  });
  return y;
}

/// y_j = sum_i x_ij (1 x cols) ;  dx_ij += dy_j
template <class T>
Var<T> sum_cols(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("sum_cols", x);
  Var<T> y = tape.make(1, x.cols(), x.requires_grad());
  y.value_mut() = x.value().colwise().sum();
  tape.on_backward(y,
                   [x, y] { x.grad_sink().add(y.grad().row(0).replicate(x.rows(), 1).array()); });
  return y;
}

/// y_j = mean_i x_ij (1 x cols) ;  dx_ij += dy_j / rows
template <class T>
Var<T> mean_cols(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("mean_cols", x);
  if (x.rows() == 0) detail::fail<ShapeError>("mean_cols", "of columns with 0 rows");
  const T inv_n = T(1) / static_cast<T>(x.rows());
  Var<T> y = tape.make(1, x.cols(), x.requires_grad());
  y.value_mut() = x.value().colwise().sum() * inv_n;
  tape.on_backward(y, [x, y, inv_n] {
    x.grad_sink().add(y.grad().row(0).replicate(x.rows(), 1).array() * inv_n);
  });
  return y;
}

/// Applies a loss's reduction to its per-term values: none keeps them, sum adds them, mean
/// averages them (a mean of no terms is a ShapeError naming `op`, the loss).
template <class T>
Var<T> reduce(const Var<T>& terms, Reduction reduction, const char* op = "reduce") {
  switch (reduction) {
    case Reduction::sum:
      return sum(terms);
    case Reduction::mean:
      if (terms.size() == 0) {
        detail::fail<ShapeError>(op, "the mean of no terms (",
                                 shape_str(terms.rows(), terms.cols()),
                                 ") is undefined; use Reduction::sum or none");
      }
      return mean(terms);
    case Reduction::none:
      break;
  }
  return terms;
}

}  // namespace gumbel
