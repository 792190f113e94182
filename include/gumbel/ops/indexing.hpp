// Selection by a mask (where) and by indices (embedding).
#pragma once

#include "gumbel/core/tape.hpp"
#include "gumbel/core/types.hpp"
#include "gumbel/ops/elementwise.hpp"

namespace gumbel {

/// y = condition ? a : b elementwise, a and b broadcast as in add ;  da += dy where the
/// condition holds, db += dy elsewhere. `condition` (bool) has the output's shape.
template <class T>
Var<T> where(const Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& condition,
             const Var<T>& a, const Var<T>& b) {
  Tape<T>& tape = detail::tape_of("where", a, b);
  const Index rows = std::max(a.rows(), b.rows());
  const Index cols = std::max(a.cols(), b.cols());
  if (condition.rows() != rows || condition.cols() != cols) {
    detail::fail<ShapeError>("where", "condition ", shape_str(condition.rows(), condition.cols()),
                             " for operands ", shape_str(a.rows(), a.cols()), " and ",
                             shape_str(b.rows(), b.cols()));
  }
  bool* mask = tape.template scratch_of<bool>(rows * cols);
  std::copy_n(condition.data(), rows * cols, mask);
  using MaskMap =
      Eigen::Map<const Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
  return detail::binary(
      "where", a, b,
      [mask, rows, cols](const auto& x, const auto& z) {
        return MaskMap(mask, rows, cols).select(x, z);
      },
      [mask, rows, cols](const auto&, const auto&, const auto&, const auto& dy) {
        return MaskMap(mask, rows, cols).select(dy, T(0));
      },
      [mask, rows, cols](const auto&, const auto&, const auto&, const auto& dy) {
        return MaskMap(mask, rows, cols).select(T(0), dy);
      });
}

/// y_i = weight[index_i] (B x D from a V x D table) ;  dweight[index_i] += dy_i (rows repeated
/// in index add up)
template <class T>
Var<T> embedding(const Var<T>& weight, const IndexVector& index) {
  Tape<T>& tape = detail::tape_of("embedding", weight);
  const Index vocabulary = weight.rows();
  for (Index i = 0; i < index.size(); ++i) {
    if (index(i) < 0 || index(i) >= vocabulary) {
      detail::fail<ValueError>("embedding", "index ", index(i), " at position ", i,
                               " is outside [0, ", vocabulary, ")");
    }
  }
  const Index n = index.size();
  Var<T> y = tape.make(n, weight.cols(), weight.requires_grad(), "embedding");
  const auto w = weight.value();
  auto yv = y.value_mut();
  for (Index i = 0; i < n; ++i) yv.row(i) = w.row(index(i));
  if (!y.requires_grad()) return y;
  Index* rows = tape.template scratch_of<Index>(n);
  std::copy_n(index.data(), n, rows);
  tape.on_backward(y, [weight, y, rows, n] {
    MatrixMap<T> dw = weight.grad_sink().zeroed();
    const auto dy = y.grad();
    for (Index i = 0; i < n; ++i) dw.row(rows[i]) += dy.row(i);
  });
  return y;
}

}  // namespace gumbel
