// AVX2 kernels over ranges of floats: Gumbel noise from uniforms and the softmax's exponential.
// The rest of the row work (maxima, sums in the vector kernels' order) is the generic code's,
// which the compiler vectorises or which is short; core/simd/dispatch.hpp combines them.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX2

#include <immintrin.h>

#include "gumbel/core/simd/avx2/math.hpp"
#include "gumbel/core/simd/generic/math.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail::avx2 {

/// Gumbel noise in place of the uniforms in out[0, count): out[j] = g_j, or
/// (shift[j] - offset) + g_j when shift is given. The tail past the last 8 takes the generic
/// twin.
inline void gumbel_from_uniforms(float* out, Index count, const float* shift, float offset) {
  const __m256 minus_offset = _mm256_set1_ps(-offset);
  Index j = 0;
  for (; j + 8 <= count; j += 8) {
    __m256 g = gumbel_from_uniform(_mm256_loadu_ps(out + j));
    if (shift) g = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(shift + j), minus_offset), g);
    _mm256_storeu_ps(out + j, g);
  }
  for (; j < count; ++j) {
    const float g = generic::gumbel_from_uniform(out[j]);
    out[j] = shift ? (shift[j] + -offset) + g : g;
  }
}

/// x[j] <- 2^x[j] over a range, 8 at a time (the twin of generic::Exp2Range).
struct Exp2Range {
  void operator()(float* x, Index n) const noexcept {
    Index j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, exp2_flush(_mm256_loadu_ps(x + j)));
    for (; j < n; ++j) x[j] = generic::exp2_flush(x[j]);
  }
};

}  // namespace gumbel::detail::avx2

#endif
