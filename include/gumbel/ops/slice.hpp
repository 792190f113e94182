// Concatenation and slicing along rows or columns: copies whose backward routes each part of
// the gradient to its operand.
#pragma once

#include <limits>

#include "gumbel/core/sizes.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel {
namespace detail {

enum class Axis { rows, cols };

/// y = [a; b] (rows) or [a, b] (cols) ;  da += dy's first block, db += the second.
template <class T>
Var<T> concat(const char* op, Axis axis, const Var<T>& a, const Var<T>& b) {
  Tape<T>& tape = tape_of(op, a, b);
  const bool by_rows = axis == Axis::rows;
  if (by_rows ? a.cols() != b.cols() : a.rows() != b.rows()) {
    fail<ShapeError>(
        op, "cannot join ", shape_str(a.rows(), a.cols()), " and ", shape_str(b.rows(), b.cols()),
        by_rows ? " by rows (their columns differ)" : " by columns (their rows differ)");
  }
  // The joined side can pass Index's range (two 2^62 x 0 operands): check it before adding.
  const Index a_side = by_rows ? a.rows() : a.cols();
  const Index b_side = by_rows ? b.rows() : b.cols();
  if (a_side > std::numeric_limits<Index>::max() - b_side) {
    fail<ShapeError>(op, "joining ", shape_str(a.rows(), a.cols()), " and ",
                     shape_str(b.rows(), b.cols()),
                     by_rows ? " has more rows" : " has more columns", " than an index can count");
  }
  const Index rows = by_rows ? a_side + b_side : a.rows();
  const Index cols = by_rows ? a.cols() : a_side + b_side;
  Var<T> y = tape.make(rows, cols, any_requires_grad(a, b), op);
  const Index b_row = by_rows ? a.rows() : 0;  // where b's block starts in y
  const Index b_col = by_rows ? 0 : a.cols();
  // Empty operands are skipped: a block of 2^62 x 0 would still be walked row by row.
  auto yv = y.value_mut();
  if (a.size() > 0) yv.block(0, 0, a.rows(), a.cols()) = a.value();
  if (b.size() > 0) yv.block(b_row, b_col, b.rows(), b.cols()) = b.value();
  tape.on_backward(y, [a, b, y, b_row, b_col] {
    const auto dy = y.grad();
    if (a.requires_grad() && a.size() > 0) {
      a.grad_sink().add(dy.block(0, 0, a.rows(), a.cols()).array());
    }
    if (b.requires_grad() && b.size() > 0) {
      b.grad_sink().add(dy.block(b_row, b_col, b.rows(), b.cols()).array());
    }
  });
  return y;
}

/// y = x's `count` rows or columns from `begin` ;  dx += dy in that block, 0 elsewhere.
template <class T>
Var<T> slice(const char* op, Axis axis, const Var<T>& x, Index begin, Index count) {
  Tape<T>& tape = tape_of(op, x);
  const bool by_rows = axis == Axis::rows;
  const Index extent = by_rows ? x.rows() : x.cols();
  if (begin < 0 || count < 0 || begin > extent || count > extent - begin) {
    fail<ShapeError>(op, "[", begin, ", ", begin, " + ", count, ") is outside the ",
                     by_rows ? "rows" : "columns", " of ", shape_str(x.rows(), x.cols()));
  }
  const Index rows = by_rows ? count : x.rows();
  const Index cols = by_rows ? x.cols() : count;
  Var<T> y = tape.make(rows, cols, x.requires_grad(), op);
  const Index row0 = by_rows ? begin : 0;
  const Index col0 = by_rows ? 0 : begin;
  y.value_mut() = x.value().block(row0, col0, rows, cols);
  tape.on_backward(y, [x, y, row0, col0, rows, cols] {
    MatrixMap<T> dx = x.grad_sink().zeroed();
    dx.block(row0, col0, rows, cols) += y.grad();
  });
  return y;
}

}  // namespace detail

/// y = [a; b]: b's rows below a's (the same number of columns) ;  da, db += their rows of dy
template <class T>
Var<T> concat_rows(const Var<T>& a, const Var<T>& b) {
  return detail::concat("concat_rows", detail::Axis::rows, a, b);
}

/// y = [a, b]: b's columns right of a's (the same number of rows) ;  da, db += their columns
template <class T>
Var<T> concat_cols(const Var<T>& a, const Var<T>& b) {
  return detail::concat("concat_cols", detail::Axis::cols, a, b);
}

/// y = rows [begin, begin + count) of x ;  dx += dy there
template <class T>
Var<T> slice_rows(const Var<T>& x, Index begin, Index count) {
  return detail::slice("slice_rows", detail::Axis::rows, x, begin, count);
}

/// y = columns [begin, begin + count) of x ;  dx += dy there
template <class T>
Var<T> slice_cols(const Var<T>& x, Index begin, Index count) {
  return detail::slice("slice_cols", detail::Axis::cols, x, begin, count);
}

}  // namespace gumbel
