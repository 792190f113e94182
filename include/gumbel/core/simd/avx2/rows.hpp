// AVX2 kernels over rows and ranges of floats: Gumbel noise from uniforms, the row maximum and
// argmax, the softmax of long rows (16 lanes as two registers of 8, the generic order) and the
// exponential over a range. Short-row softmax sums and one-hot rows are the generic code's;
// core/simd/dispatch.hpp combines them. Each returns the bits of its generic twin.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX2

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gumbel/core/simd/avx2/math.hpp"
#include "gumbel/core/simd/blocks.hpp"
#include "gumbel/core/simd/generic/math.hpp"
#include "gumbel/core/simd/generic/rows.hpp"
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

/// All bits set in lanes [0, n) of 8 (n may exceed 8): a mask for maskload and maskstore.
inline __m256i first_lanes(Index n) noexcept {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<Index>(n, 8))), iota);
}

/// The largest of 8 lanes, in every lane.
inline __m256 all_lanes_max(__m256 v) noexcept {
  v = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 0x01));
  v = _mm256_max_ps(v, _mm256_permute_ps(v, 0x4E));
  return _mm256_max_ps(v, _mm256_permute_ps(v, 0xB1));
}

/// generic::row_max: the largest entry in `max`, false when the row has no finite maximum (all
/// -inf, or a +inf or NaN anywhere); the NaN check in the same pass.
inline bool row_max(const float* row, Index k, float& max) noexcept {
  const __m256 minus_inf = splat(-std::numeric_limits<float>::infinity());
  __m256 best0 = minus_inf, best1 = minus_inf;
  __m256 nan = _mm256_setzero_ps();
  Index j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m256 v0 = _mm256_loadu_ps(row + j), v1 = _mm256_loadu_ps(row + j + 8);
    best0 = _mm256_max_ps(best0, v0);
    best1 = _mm256_max_ps(best1, v1);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));  // either one NaN
  }
  for (; j < k; j += 8) {
    const __m256i lanes = first_lanes(k - j);
    const __m256 v =
        _mm256_blendv_ps(minus_inf, _mm256_maskload_ps(row + j, lanes), _mm256_castsi256_ps(lanes));
    best0 = _mm256_max_ps(best0, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  max = _mm256_cvtss_f32(all_lanes_max(_mm256_max_ps(best0, best1)));
  return _mm256_testz_ps(nan, nan) && std::isfinite(max);
}

/// generic::row_argmax: the first index of the row's largest entry, -1 as row_max fails.
inline Index row_argmax(const float* row, Index k) noexcept {
  float m;
  if (!row_max(row, k, m)) return -1;
  const __m256 target = splat(m);
  Index j = 0;
  for (; j + 8 <= k; j += 8) {
    const int hits =
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + j), target, _CMP_EQ_OQ));
    if (hits != 0) return j + lowest_set_bit(unsigned(hits));
  }
  while (row[j] != m) ++j;
  return j;
}

/// The sum of 16 lanes held as lanes 0-7 (low) and 8-15 (high), in generic::lane_sum's order.
inline float lane_sum(__m256 low, __m256 high) noexcept {
  const __m256 h = _mm256_add_ps(low, high);  // h[i] = v[i] + v[i + 8]
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 t = _mm_add_ps(q, _mm_movehl_ps(q, q));  // q0 + q2, q1 + q3
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 0x55)));
}

/// generic::softmax_block (16-lane sums, any k): one pass for the powers and their sum, one to
/// normalise.
inline void softmax_block(float* block, Index rows, Index k, const float* row_max,
                          float inv_tau) noexcept {
  const __m256 scale = splat(inv_tau * kLog2e);
  for (Index r = 0; r < rows; ++r) {
    float* row = block + r * k;
    const __m256 max = splat(row_max[r]);
    const auto power = [&](__m256 x) {
      return exp2_flush(_mm256_mul_ps(_mm256_sub_ps(x, max), scale));
    };
    __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
    Index j = 0;
    for (; j + 16 <= k; j += 16) {
      const __m256 e0 = power(_mm256_loadu_ps(row + j));
      const __m256 e1 = power(_mm256_loadu_ps(row + j + 8));
      _mm256_storeu_ps(row + j, e0);
      _mm256_storeu_ps(row + j + 8, e1);
      low = _mm256_add_ps(low, e0);
      high = _mm256_add_ps(high, e1);
    }
    if (j < k) {  // 1 to 15 entries: lanes past them add +0, which changes no sum
      const __m256i l0 = first_lanes(k - j);
      const __m256 e0 =
          _mm256_and_ps(power(_mm256_maskload_ps(row + j, l0)), _mm256_castsi256_ps(l0));
      _mm256_maskstore_ps(row + j, l0, e0);
      low = _mm256_add_ps(low, e0);
      if (k - j > 8) {
        const __m256i l1 = first_lanes(k - j - 8);
        const __m256 e1 =
            _mm256_and_ps(power(_mm256_maskload_ps(row + j + 8, l1)), _mm256_castsi256_ps(l1));
        _mm256_maskstore_ps(row + j + 8, l1, e1);
        high = _mm256_add_ps(high, e1);
      }
    }
    const __m256 inv_sum = splat(1.0f / lane_sum(low, high));
    j = 0;
    for (; j + 8 <= k; j += 8)
      _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv_sum));
    if (j < k) {
      const __m256i lanes = first_lanes(k - j);
      _mm256_maskstore_ps(row + j, lanes,
                          _mm256_mul_ps(_mm256_maskload_ps(row + j, lanes), inv_sum));
    }
  }
}

/// generic::softmax_rows: rows above kShortRow through softmax_block, shorter ones summed left to
/// right by the generic code with this set's exponential.
inline Index softmax_rows(float* block, Index rows, Index k, float inv_tau,
                          float* one_hot) noexcept {
  Index argmax[kMaxBlockRows];
  float max[kMaxBlockRows];
  for (Index r = 0; r < rows; ++r) {
    const float* row = block + r * k;
    const bool usable = one_hot ? (argmax[r] = row_argmax(row, k)) >= 0 : row_max(row, k, max[r]);
    if (!usable) return r;
    if (one_hot) max[r] = row[argmax[r]];
  }
  if (k <= kShortRow) {
    generic::softmax_block(block, rows, k, max, inv_tau, true, Exp2Range{});
  } else {
    softmax_block(block, rows, k, max, inv_tau);
  }
  if (one_hot) generic::write_one_hot(one_hot, rows, k, argmax);
  return -1;
}

}  // namespace gumbel::detail::avx2

#endif
