// Base-2 logarithm and exponential of 16 floats at a time (AVX-512), for the samplers' hot
// loops, and a 16 x 16 transpose in registers (the samplers' short rows, the products'
// packing). The logarithm looks its leading mantissa bits up in a 32-entry table held in two
// registers, the exponential splits off the integer part in one rounding instruction and scales
// by it in another: fewer floating-point operations than a plain polynomial.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX512

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "gumbel/core/simd/log2_table.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail::avx512 {

/// The low n lanes of 16 (none for n <= 0, all for n >= 16): the mask of a partial vector.
inline __mmask16 first_lanes(Index n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

/// log2 x for positive, normal, finite x, within 2 float ulps of the result (or of 1 when
/// |log2 x| < 1).
inline __m512 log2_positive(__m512 x) noexcept {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i offset = _mm512_sub_epi32(bits, _mm512_set1_epi32(int(kTwoThirdsBits)));
  const __m512i exponent = _mm512_srai_epi32(offset, 23);
  const __m512 m = _mm512_castsi512_ps(_mm512_sub_epi32(bits, _mm512_slli_epi32(exponent, 23)));
  // permutex2var reads the low five bits of each index: the slice number.
  const __m512i slice = _mm512_srli_epi32(offset, 18);
  const __m512 c = _mm512_permutex2var_ps(_mm512_load_ps(kLog2Table.scale), slice,
                                          _mm512_load_ps(kLog2Table.scale + 16));
  const __m512 neg_log2_c = _mm512_permutex2var_ps(_mm512_load_ps(kLog2Table.neg_log2), slice,
                                                   _mm512_load_ps(kLog2Table.neg_log2 + 16));
  const __m512 r = _mm512_fmsub_ps(m, c, _mm512_set1_ps(1.0f));
  // log2(1 + r) / r = (1 - r/2 + r^2/3 - r^3/4 + r^4/5) / ln 2
  __m512 p = _mm512_set1_ps(kLog2Poly[0]);
  for (int i = 1; i < 5; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kLog2Poly[i]));
  return _mm512_fmadd_ps(r, p, _mm512_add_ps(neg_log2_c, _mm512_cvtepi32_ps(exponent)));
}

/// 2^x for x <= 128, exactly 0 where the result would be subnormal (x < -126, and x = -inf),
/// NaN for NaN, within 2 float ulps otherwise. 2^x = 2^n 2^f with n = round(x), |f| <= 1/2, and
/// 2^f = 1 + f P(f), P a degree-5 least-squares fit (relative error 2.2e-9 before rounding).
inline __m512 exp2_flush(__m512 x) noexcept {
  // "Not less than", true for NaN, which then runs through the arithmetic and stays NaN.
  const __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(kExp2Poly[0]);
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[i]));
  return _mm512_maskz_scalef_ps(normal, p, n);
}

/// Transposes 16 vectors of 16 floats in place: afterwards r[j] lane i is what r[i] lane j was.
inline void transpose16x16(__m512 (&r)[16]) noexcept {
  // Pairs of rows interleaved within each 128-bit lane, then pairs of pairs: each lane of
  // q[4 g + c] holds rows 4 g .. 4 g + 3 of the columns c, c + 4, c + 8, c + 12.
  __m512 q[16];
  const auto pd = [](__m512 x) { return _mm512_castps_pd(x); };
  for (int g = 0; g < 4; ++g) {
    const __m512 lo01 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
    const __m512 hi01 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m512 lo23 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    const __m512 hi23 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    q[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(lo01), pd(lo23)));
    q[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(lo01), pd(lo23)));
    q[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(hi01), pd(hi23)));
    q[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(hi01), pd(hi23)));
  }
  // Lanes regrouped: column c + 4 l gathers lane l of q[c], q[4 + c], q[8 + c], q[12 + c].
  for (int c = 0; c < 4; ++c) {
    const __m512 even_low = _mm512_shuffle_f32x4(q[c], q[4 + c], 0x88);  // lanes 0, 2
    const __m512 odd_low = _mm512_shuffle_f32x4(q[c], q[4 + c], 0xdd);   // lanes 1, 3
    const __m512 even_high = _mm512_shuffle_f32x4(q[8 + c], q[12 + c], 0x88);
    const __m512 odd_high = _mm512_shuffle_f32x4(q[8 + c], q[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(even_low, even_high, 0x88);
    r[c + 4] = _mm512_shuffle_f32x4(odd_low, odd_high, 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(even_low, even_high, 0xdd);
    r[c + 12] = _mm512_shuffle_f32x4(odd_low, odd_high, 0xdd);
  }
}

/// Standard Gumbel noise from open uniforms: g = -ln(-ln u) = -ln 2 (log2(-log2 u) + log2 ln 2).
inline __m512 gumbel_from_uniform(__m512 u) noexcept {
  const __m512 t = _mm512_sub_ps(_mm512_setzero_ps(), log2_positive(u));
  return _mm512_fmadd_ps(log2_positive(t), _mm512_set1_ps(-kLn2), _mm512_set1_ps(kGumbelOffset));
}

}  // namespace gumbel::detail::avx512

#endif
