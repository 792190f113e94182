// AVX2 kernels over rows of floats: Gumbel noise from uniforms, the row maximum and argmax, the
// softmax of long rows (16 lanes as two registers of 8, the generic order) and of short rows (8
// rows through 8 x 8 transposes). One-hot rows and the short-row backward are the generic
// code's; core/simd/dispatch.hpp combines them. Each returns the bits of its generic twin.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX2

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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

/// Transposes 8 rows of 8 floats in registers.
inline void transpose8x8(__m256 (&r)[8]) noexcept {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// generic::softmax_rows for rows of at most kShortRow floats, 8 rows per group: after one or
/// two 8 x 8 transposes lane i holds row i and column j is v[j], so the maximum, the powers,
/// the left-to-right sum and the quotient are lane-wise over k columns, with one exponential
/// per column instead of part-filled vectors per row. Rows are read from a copy of the block
/// (in place, a load would wait for the previous row's overlapping store) and written back in
/// row order with whole-vector stores, the part past a row's end landing on rows written after
/// it; only stores that would pass the block's end are masked. With WithArgmax, argmax[r] is
/// the first column of row r equal to its maximum. Returns the first unusable row, or -1.
template <bool WithArgmax>
Index softmax_short_rows(float* block, Index rows, Index k, float inv_tau, Index* argmax) noexcept {
  alignas(32) float copy[kShortRow * kMaxBlockRows + 16];
  std::copy_n(block, rows * k, copy);
  std::fill_n(copy + rows * k, 16, 0.0f);  // read by the last rows' loads, never used
  const __m256 scale = splat(inv_tau * kLog2e);
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 inf = splat(std::numeric_limits<float>::infinity());
  const Index halves = k > 8 ? 2 : 1;
  for (Index r0 = 0; r0 < rows; r0 += 8) {
    const Index group = std::min<Index>(8, rows - r0);
    __m256 v[16];
    for (Index h = 0; h < halves; ++h) {
      __m256 t[8];
      // Rows past the group repeat its last row.
      for (Index i = 0; i < 8; ++i) {
        t[i] = _mm256_loadu_ps(copy + (r0 + std::min(i, group - 1)) * k + 8 * h);
      }
      transpose8x8(t);
      for (Index c = 0; c < 8; ++c) v[8 * h + c] = t[c];
    }
    __m256 max = v[0];
    __m256 nan = _mm256_cmp_ps(v[0], v[0], _CMP_UNORD_Q);
    for (Index j = 1; j < k; ++j) {
      max = _mm256_max_ps(max, v[j]);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[j], v[j], _CMP_UNORD_Q));
    }
    const __m256 bad =
        _mm256_or_ps(nan, _mm256_cmp_ps(_mm256_and_ps(max, magnitude), inf, _CMP_NLT_UQ));
    const unsigned bad_rows = unsigned(_mm256_movemask_ps(bad)) & ((1u << group) - 1u);
    if (bad_rows != 0) return r0 + lowest_set_bit(bad_rows);
    if constexpr (WithArgmax) {
      __m256i first = _mm256_setzero_si256();  // columns from last to first, each overriding
      for (Index j = k - 1; j > 0; --j) {
        first = _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(first), _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(j))),
            _mm256_cmp_ps(v[j], max, _CMP_EQ_OQ)));
      }
      first = _mm256_and_si256(first, _mm256_castps_si256(_mm256_cmp_ps(v[0], max, _CMP_NEQ_UQ)));
      alignas(32) std::int32_t index[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(index), first);
      for (Index i = 0; i < group; ++i) argmax[r0 + i] = index[i];
    }
    __m256 sum = _mm256_setzero_ps();
    for (Index j = 0; j < k; ++j) {
      v[j] = exp2_flush(_mm256_mul_ps(_mm256_sub_ps(v[j], max), scale));
      sum = _mm256_add_ps(sum, v[j]);
    }
    const __m256 inv_sum = _mm256_div_ps(splat(1.0f), sum);  // rounded once, as 1.0f / sum
    for (Index j = 0; j < k; ++j) v[j] = _mm256_mul_ps(v[j], inv_sum);
    __m256 out[2][8];
    for (Index h = 0; h < halves; ++h) {
      for (Index c = 0; c < 8; ++c) out[h][c] = v[8 * h + c];
      transpose8x8(out[h]);
    }
    for (Index i = 0; i < group; ++i) {
      for (Index h = 0; h < halves; ++h) {
        const Index at = (r0 + i) * k + 8 * h;
        if (at + 8 <= rows * k) {
          _mm256_storeu_ps(block + at, out[h][i]);
        } else {
          _mm256_maskstore_ps(block + at, first_lanes(k - 8 * h), out[h][i]);
        }
      }
    }
  }
  return -1;
}

/// generic::softmax_rows: rows above kShortRow through softmax_block, shorter ones through
/// softmax_short_rows.
inline Index softmax_rows(float* block, Index rows, Index k, float inv_tau,
                          float* one_hot) noexcept {
  Index argmax[kMaxBlockRows];
  if (k <= kShortRow) {
    if (one_hot == nullptr) return softmax_short_rows<false>(block, rows, k, inv_tau, nullptr);
    const Index bad = softmax_short_rows<true>(block, rows, k, inv_tau, argmax);
    if (bad < 0) generic::write_one_hot(one_hot, rows, k, argmax);
    return bad;
  }
  float max[kMaxBlockRows];
  for (Index r = 0; r < rows; ++r) {
    const float* row = block + r * k;
    const bool usable = one_hot ? (argmax[r] = row_argmax(row, k)) >= 0 : row_max(row, k, max[r]);
    if (!usable) return r;
    if (one_hot) max[r] = row[argmax[r]];
  }
  softmax_block(block, rows, k, max, inv_tau);
  if (one_hot) generic::write_one_hot(one_hot, rows, k, argmax);
  return -1;
}

}  // namespace gumbel::detail::avx2

#endif
