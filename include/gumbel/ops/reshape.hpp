// Reshape (the same row-major elements seen under another shape) and detach (the same values
// without a gradient).
#pragma once

#include "gumbel/core/sizes.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel {

/// y = x viewed as rows x cols (row-major order kept) ;  dx = dy, shared memory: no copy either
/// way, so (B, N*K) <-> (B*N, K) costs nothing.
template <class T>
Var<T> reshape(const Var<T>& x, Index rows, Index cols) {
  Tape<T>& tape = detail::tape_of("reshape", x);
  if (!detail::fits(rows, cols, sizeof(T)) || rows * cols != x.size()) {
    detail::fail<ShapeError>("reshape", "cannot view ", shape_str(x.rows(), x.cols()), " (",
                             x.size(), " elements) as ", shape_str(rows, cols));
  }
  return tape.alias(x, rows, cols);
}

/// y = x as a constant: the same values, and no gradient flows back to x (a copy)
template <class T>
Var<T> detach(const Var<T>& x) {
  Tape<T>& tape = detail::tape_of("detach", x);
  Var<T> y = tape.make(x.rows(), x.cols(), false, "detach");
  y.value_mut() = x.value();
  return y;
}

}  // namespace gumbel
