// softmax and log_softmax over each row. Rows may hold -inf (masked classes); a row needs at
// least one finite entry, and +inf or NaN is rejected rather than turned into NaN outputs.
// logsumexp of each row, which accepts any row (as PyTorch).
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

/// Writes x - max of each row into out (both rows x k, out contiguous).
template <class In, class Out>
void shift_rows_by_max(const char* op, const In& x, Out& out) {
  for (Index i = 0; i < x.rows(); ++i) out.row(i).array() = x.row(i).array() - row_max(op, x, i);
}

/// Writes log_softmax of every row of x into out and softmax into `probs` (rows x k,
/// contiguous). The exp runs once over the whole matrix, so short rows (the VAE's K = 10) still
/// fill vector registers; only the per-row sums and logs are scalar.
template <class In, class Out>
void log_softmax_rows(const char* op, const In& x, Out& out, typename In::Scalar* probs) {
  using T = typename In::Scalar;
  using Flat = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  const Index rows = x.rows();
  const Index k = x.cols();
  shift_rows_by_max(op, x, out);
  Flat p(probs, rows * k);
  p = exp_flush(Flat(out.data(), rows * k));
  for (Index i = 0; i < rows; ++i) {
    Flat row(probs + i * k, k);
    const T total = row.sum();  // at least 1: the maximum contributes e^0
    out.row(i).array() -= std::log(total);
    row *= T(1) / total;
  }
}

}  // namespace detail

/// y = e^(x - m) / sum_j e^(x_j - m) per row ;  dx += y * (dy - sum_j dy_j y_j)
template <class T>
Var<T> softmax(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("softmax", x);
  detail::require_classes("softmax", x);
  Var<T> y = tape.make(x.rows(), x.cols(), x.requires_grad());
  auto yv = y.value_mut();
  detail::shift_rows_by_max("softmax", x.value(), yv);
  yv.array() = detail::exp_flush(yv.array());  // one pass over all rows (see log_softmax_rows)
  for (Index i = 0; i < yv.rows(); ++i) yv.row(i) /= yv.row(i).sum();
  tape.on_backward(y, [x, y] {
    const auto ym = y.value();
    const auto dy = y.grad();
    auto dx = x.grad_sink();
    for (Index i = 0; i < ym.rows(); ++i) {
      const T dot = dy.row(i).dot(ym.row(i));
      dx.add_row(i, ym.row(i).array() * (dy.row(i).array() - dot));
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
  T* probs = tape.scratch(x.size());  // softmax(x), which the backward needs
  detail::log_softmax_rows("log_softmax", x.value(), yv, probs);
  tape.on_backward(y, [x, y, probs] {
    const ConstMatrixMap<T> p(probs, y.rows(), y.cols());
    const auto dy = y.grad();
    auto dx = x.grad_sink();
    for (Index i = 0; i < dy.rows(); ++i) {
      dx.add_row(i, dy.row(i).array() - p.row(i).array() * dy.row(i).sum());
    }
  });
  return y;
}

/// y_i = ln sum_j e^(x_ij) per row (rows x 1), computed around the row's maximum ;
/// dx_ij += dy_i e^(x_ij - y_i). A row of -inf gives -inf (gradient 0), a +inf gives +inf, NaN
/// gives NaN, as PyTorch.
template <class T>
Var<T> logsumexp(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("logsumexp", x);
  detail::require_classes("logsumexp", x);
  Var<T> y = tape.make(x.rows(), 1, x.requires_grad(), "logsumexp");
  const auto xv = x.value();
  auto yv = y.value_mut();
  for (Index i = 0; i < x.rows(); ++i) {
    const T m = xv.row(i).template maxCoeff<Eigen::PropagateNaN>();
    yv(i, 0) = std::isfinite(m) ? m + std::log(detail::exp_flush(xv.row(i).array() - m).sum()) : m;
  }
  tape.on_backward(y, [x, y] {
    const auto xm = x.value();
    const auto ym = y.value();
    const auto dy = y.grad();
    auto dx = x.grad_sink();
    for (Index i = 0; i < xm.rows(); ++i) {
      const auto row = xm.row(i).array();
      dx.add_row(i, (row > -std::numeric_limits<T>::infinity())
                        .select(detail::exp_flush(row - ym(i, 0)) * dy(i, 0), T(0)));
    }
  });
  return y;
}

}  // namespace gumbel
