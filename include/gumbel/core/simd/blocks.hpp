// The block sizes of the row kernels, shared by the generic and the vector ones.
#pragma once

#include <algorithm>

#include "gumbel/core/types.hpp"

namespace gumbel::detail {

/// Sampling loops work on blocks of whole rows of about this many elements: short rows are
/// batched so that the noise, exp and add run over long vectors, and a block stays in cache.
inline constexpr Index kSamplingBlock = 2048;
inline constexpr Index kMaxBlockRows = 256;

inline Index sampling_block_rows(Index k) {
  return std::clamp<Index>(kSamplingBlock / std::max<Index>(k, 1), 1, kMaxBlockRows);
}

/// Rows of at most this many floats take the short-row kernels (16 rows per transpose).
inline constexpr Index kShortRow = 16;

}  // namespace gumbel::detail
