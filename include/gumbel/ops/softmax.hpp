// softmax and log_softmax over each row. Rows may hold -inf (masked classes); a row needs at
// least one finite entry, and +inf or NaN is rejected rather than turned into NaN outputs.
#pragma once

#include <cmath>
#include <limits>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel {
namespace detail {

template <class T>
void require_classes(const char* op, const Var<T>& x) {
  if (x.cols() == 0) {
    fail<ShapeError>(op, "needs at least one class per row, got ", shape_str(x.rows(), x.cols()));
  }
}

/// The largest entry of row i: the shift that keeps exp() from overflowing.
template <class Map>
typename Map::Scalar row_max(const char* op, const Map& x, Index i) {
  using T = typename Map::Scalar;
  const T m = x.row(i).maxCoeff();
  if (m == -std::numeric_limits<T>::infinity()) {
    fail<ValueError>(op, "row ", i, " has no finite entry (every class is masked with -inf)");
  }
  if (!std::isfinite(m) || x.row(i).hasNaN()) {
    fail<ValueError>(op, "row ", i, " contains +inf or NaN");
  }
  return m;
}

/// Writes log_softmax of every row of x into out.
template <class In, class Out>
void log_softmax_rows(const char* op, const In& x, Out& out) {
  for (Index i = 0; i < x.rows(); ++i) {
    const auto m = row_max(op, x, i);
    out.row(i).array() = x.row(i).array() - m;
    out.row(i).array() -= std::log(exp_flush(out.row(i).array()).sum());
  }
}

}  // namespace detail

/// y = e^(x - m) / sum_j e^(x_j - m) per row ;  dx += y * (dy - sum_j dy_j y_j)
template <class T>
Var<T> softmax(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("softmax", x);
  detail::require_classes("softmax", x);
  Var<T> y = tape.make(x.rows(), x.cols(), x.requires_grad());
  const auto xv = x.value();
  auto yv = y.value_mut();
  for (Index i = 0; i < xv.rows(); ++i) {
    const T m = detail::row_max("softmax", xv, i);
    yv.row(i).array() = detail::exp_flush(xv.row(i).array() - m);
    yv.row(i) /= yv.row(i).sum();
  }
  tape.on_backward(y, [x, y] {
    const auto yv = y.value();
    const auto dy = y.grad();
    auto dx = x.grad_mut();
    for (Index i = 0; i < yv.rows(); ++i) {
      const T dot = dy.row(i).dot(yv.row(i));
      dx.row(i).array() += yv.row(i).array() * (dy.row(i).array() - dot);
    }
  });
  return y;
}

/// y = x - m - ln sum_j e^(x_j - m) per row ;  dx += dy - softmax(x) * sum_j dy_j
template <class T>
Var<T> log_softmax(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("log_softmax", x);
  detail::require_classes("log_softmax", x);
  Var<T> y = tape.make(x.rows(), x.cols(), x.requires_grad());
  auto yv = y.value_mut();
  detail::log_softmax_rows("log_softmax", x.value(), yv);
  tape.on_backward(y, [x, y] {
    const auto yv = y.value();
    const auto dy = y.grad();
    auto dx = x.grad_mut();
    for (Index i = 0; i < yv.rows(); ++i) {
      dx.row(i).array() +=
          dy.row(i).array() - detail::exp_flush(yv.row(i).array()) * dy.row(i).sum();
    }
  });
  return y;
}

}  // namespace gumbel
