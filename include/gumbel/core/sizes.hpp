// Element and byte counts computed without overflow. Every size that comes from the user (a
// shape, a sample count) passes here before it reaches the arena or Eigen, so that a product
// too large for memory is an error naming the op, never a count that wrapped around.
#pragma once

#include <cstddef>
#include <limits>

#include "gumbel/core/error.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail {

/// The most elements of `element_bytes` each that one buffer can hold: its byte count must fit
/// a signed pointer difference, as Eigen's own size checks require.
constexpr Index max_elements(std::size_t element_bytes) {
  return std::numeric_limits<Index>::max() / static_cast<Index>(element_bytes);
}

/// True when a >= 0, b >= 0 and a * b elements of `element_bytes` each fit one buffer.
constexpr bool fits(Index a, Index b, std::size_t element_bytes) {
  return a >= 0 && b >= 0 && (b == 0 || a <= max_elements(element_bytes) / b);
}

/// rows * cols for a matrix of T, or a ShapeError naming the op: a negative side, or more
/// elements than memory can address.
template <class T>
Index checked_size(const char* op, Index rows, Index cols) {
  if (rows < 0 || cols < 0) fail<ShapeError>(op, "negative shape ", shape_str(rows, cols));
  if (!fits(rows, cols, sizeof(T))) {
    fail<ShapeError>(op, "shape ", shape_str(rows, cols), " has more elements than memory can ",
                     "address (at most ", max_elements(sizeof(T)), " of ", sizeof(T), " bytes)");
  }
  return rows * cols;
}

}  // namespace gumbel::detail
