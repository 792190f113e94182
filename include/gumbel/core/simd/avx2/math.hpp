// Base-2 logarithm and exponential and the Gumbel transform of 8 floats at a time (AVX2 with
// FMA): the twins of core/simd/generic/math.hpp, operation for operation, so the same bits. The
// logarithm's 32-entry tables are read with four in-register permutes and three blends each
// (a gather is several times slower on most CPUs).
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX2

#include <immintrin.h>

#include <cstdint>

#include "gumbel/core/simd/log2_table.hpp"

namespace gumbel::detail::avx2 {

inline __m256 splat(float x) noexcept {
  return _mm256_set1_ps(x);
}

/// table[index] for 8 indices in [0, 32): bits 0-2 choose within a group of 8 (permute), bit 3
/// and bit 4 between groups (blends on the sign bit of the index shifted up).
inline __m256 lookup32(const float* table, __m256i index) noexcept {
  const __m256 g0 = _mm256_permutevar8x32_ps(_mm256_load_ps(table), index);
  const __m256 g1 = _mm256_permutevar8x32_ps(_mm256_load_ps(table + 8), index);
  const __m256 g2 = _mm256_permutevar8x32_ps(_mm256_load_ps(table + 16), index);
  const __m256 g3 = _mm256_permutevar8x32_ps(_mm256_load_ps(table + 24), index);
  const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(index, 28));
  const __m256 bit4 = _mm256_castsi256_ps(_mm256_slli_epi32(index, 27));
  return _mm256_blendv_ps(_mm256_blendv_ps(g0, g1, bit3), _mm256_blendv_ps(g2, g3, bit3), bit4);
}

/// log2 x for positive, normal, finite x (generic::log2_positive).
inline __m256 log2_positive(__m256 x) noexcept {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i offset = _mm256_sub_epi32(bits, _mm256_set1_epi32(int(kTwoThirdsBits)));
  const __m256i exponent = _mm256_srai_epi32(offset, 23);
  const __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(bits, _mm256_slli_epi32(exponent, 23)));
  const __m256i slice = _mm256_and_si256(_mm256_srli_epi32(offset, 18), _mm256_set1_epi32(31));
  const __m256 c = lookup32(kLog2Table.scale, slice);
  const __m256 neg_log2_c = lookup32(kLog2Table.neg_log2, slice);
  const __m256 r = _mm256_fmadd_ps(m, c, splat(-1.0f));
  __m256 p = _mm256_fmadd_ps(splat(kLog2Poly[0]), r, splat(kLog2Poly[1]));
  p = _mm256_fmadd_ps(p, r, splat(kLog2Poly[2]));
  p = _mm256_fmadd_ps(p, r, splat(kLog2Poly[3]));
  p = _mm256_fmadd_ps(p, r, splat(kLog2Poly[4]));
  return _mm256_fmadd_ps(r, p, _mm256_add_ps(neg_log2_c, _mm256_cvtepi32_ps(exponent)));
}

/// 2^e for integral e in [-127, 127] held as floats (2^-127 comes out as 0).
inline __m256 power_of_two(__m256 e) noexcept {
  const __m256i biased = _mm256_add_epi32(_mm256_cvttps_epi32(e), _mm256_set1_epi32(127));
  return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
}

/// 2^x for x <= 128, 0 for x < -126, NaN for NaN (generic::exp2_flush).
inline __m256 exp2_flush(__m256 x) noexcept {
  const __m256 bounded = _mm256_max_ps(x, splat(-127.0f));  // max(NaN, -127) is -127 ...
  const __m256 xb = _mm256_blendv_ps(bounded, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // ... so
  const __m256 n = _mm256_round_ps(xb, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(xb, n);
  __m256 p = _mm256_fmadd_ps(splat(kExp2Poly[0]), f, splat(kExp2Poly[1]));
  p = _mm256_fmadd_ps(p, f, splat(kExp2Poly[2]));
  p = _mm256_fmadd_ps(p, f, splat(kExp2Poly[3]));
  p = _mm256_fmadd_ps(p, f, splat(kExp2Poly[4]));
  p = _mm256_fmadd_ps(p, f, splat(kExp2Poly[5]));
  p = _mm256_fmadd_ps(p, f, splat(kExp2Poly[6]));
  // e = -127 where x < -126 (the flush), min(n, 127) elsewhere, 0 for NaN.
  const __m256 flush = _mm256_cmp_ps(x, splat(-126.0f), _CMP_LT_OQ);
  const __m256 nan = _mm256_cmp_ps(n, n, _CMP_UNORD_Q);
  __m256 e = _mm256_min_ps(n, splat(127.0f));
  e = _mm256_andnot_ps(nan, e);
  e = _mm256_blendv_ps(e, splat(-127.0f), flush);
  // extra = clamp(n - 127, 0, 2), 0 for NaN.
  __m256 extra =
      _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(n, splat(127.0f)), splat(0.0f)), splat(2.0f));
  extra = _mm256_andnot_ps(nan, extra);
  return _mm256_mul_ps(_mm256_mul_ps(p, power_of_two(e)), power_of_two(extra));
}

/// Standard Gumbel noise from open uniforms (generic::gumbel_from_uniform).
inline __m256 gumbel_from_uniform(__m256 u) noexcept {
  const __m256 t = _mm256_sub_ps(_mm256_setzero_ps(), log2_positive(u));
  return _mm256_fmadd_ps(log2_positive(t), splat(-kLn2), splat(kGumbelOffset));
}

}  // namespace gumbel::detail::avx2

#endif
