// The generic twins of the vector logarithm, exponential and Gumbel transform: one float at a
// time, the same table, the same operations in the same order and the same fused multiply-adds
// (fused_multiply_add), so that each returns exactly the bits of its AVX-512 twin. Written as
// plain loops' bodies, they vectorise for whatever the compiler targets.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gumbel/core/simd/log2_table.hpp"

namespace gumbel::detail::generic {

inline std::uint32_t float_bits(float x) noexcept {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

inline float bits_float(std::uint32_t b) noexcept {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Fused multiply-adds: where the target has FMA instructions (x86 with -mfma, -march=haswell or
// x86-64-v3 and later; every ARMv8) they are std::fma, one instruction, and every kernel set gives
// the same bits. Elsewhere (x86-64 without -march) a fused multiply-add is a libm call, about 40
// times slower, so the generic kernels round the product and the sum separately, except where
// that would cost accuracy (m c - 1 in log2, made exact below): the values stay within the tested
// error bounds but differ from an FMA build's in the last bit. GUMBEL_EXACT_FMA makes such a build
// call std::fma and give the same bits, at that cost.
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(GUMBEL_EXACT_FMA)
#define GUMBEL_GENERIC_FMA 1
#else
#define GUMBEL_GENERIC_FMA 0
#endif

/// a b + c: rounded once where GUMBEL_GENERIC_FMA, else twice.
inline float fused_multiply_add(float a, float b, float c) noexcept {
#if GUMBEL_GENERIC_FMA
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// m c - 1 rounded once, for m c within [1/2, 2], on any target. Without FMA: m c = hi + lo
/// exactly (Dekker's product with Veltkamp's splits), hi - 1 is exact (Sterbenz), and the one
/// rounding is that of (hi - 1) + lo.
inline float product_minus_one(float m, float c) noexcept {
#if GUMBEL_GENERIC_FMA
  return std::fma(m, c, -1.0f);
#else
  const auto split = [](float x, float& high, float& low) {
    const float t = x * 4097.0f;  // 2^12 + 1: high gets the leading 12 of 24 bits
    high = t - (t - x);
    low = x - high;
  };
  float mh, ml, ch, cl;
  split(m, mh, ml);
  split(c, ch, cl);
  const float hi = m * c;
  const float lo = ((mh * ch - hi) + mh * cl + ml * ch) + ml * cl;
  return (hi - 1.0f) + lo;
#endif
}

/// log2 x for positive, normal, finite x (the table method of log2_table.hpp).
inline float log2_positive(float x) noexcept {
  const std::uint32_t bits = float_bits(x);
  const std::uint32_t offset = bits - kTwoThirdsBits;
  const std::int32_t exponent = static_cast<std::int32_t>(offset) >> 23;  // arithmetic shift
  const float m = bits_float(bits - (static_cast<std::uint32_t>(exponent) << 23));
  const auto slice = static_cast<std::int32_t>((offset >> 18) & 31u);  // a 32-bit gather index
  const float r = product_minus_one(m, kLog2Table.scale[slice]);
  // Horner's rule written out: a loop over the coefficients would keep the compiler from
  // vectorising the caller's loop.
  float p = fused_multiply_add(kLog2Poly[0], r, kLog2Poly[1]);
  p = fused_multiply_add(p, r, kLog2Poly[2]);
  p = fused_multiply_add(p, r, kLog2Poly[3]);
  p = fused_multiply_add(p, r, kLog2Poly[4]);
  return fused_multiply_add(r, p, kLog2Table.neg_log2[slice] + static_cast<float>(exponent));
}

/// 2^e for an integral e in [-127, 127], from its exponent bits: 2^-127 comes out as 0.
inline float power_of_two(float e) noexcept {
  return bits_float(static_cast<std::uint32_t>(static_cast<std::int32_t>(e) + 127) << 23);
}

/// 2^x for x <= 128: exactly 0 for x < -126 (where the result would be subnormal, and for
/// -inf), NaN for NaN. 2^x = 2^n 2^f with n = x rounded to nearest even and |f| <= 1/2. Written
/// with selects the compiler turns into vector blends, no branch or call, so that loops over it
/// vectorise.
inline float exp2_flush(float x) noexcept {
  const float bounded = x < -127.0f ? -127.0f : x;  // -inf would make f NaN
  const float n = std::nearbyint(bounded);
  const float f = bounded - n;
  float p = fused_multiply_add(kExp2Poly[0], f, kExp2Poly[1]);
  p = fused_multiply_add(p, f, kExp2Poly[2]);
  p = fused_multiply_add(p, f, kExp2Poly[3]);
  p = fused_multiply_add(p, f, kExp2Poly[4]);
  p = fused_multiply_add(p, f, kExp2Poly[5]);
  p = fused_multiply_add(p, f, kExp2Poly[6]);
  // p 2^n as two exact scalings: 2^n for n up to 127 (2^-127, i.e. 0, for the flush; 1 for NaN,
  // whose p is NaN), then up to 2^2 more (n = 128 doubles, larger n overflow to inf as one
  // scaling would).
  const float e = x < -126.0f ? -127.0f : n > 127.0f ? 127.0f : n == n ? n : 0.0f;
  const float above = n - 127.0f;  // computed on every path: a conditional one would be a branch
  const float extra = above > 2.0f ? 2.0f : above > 0.0f ? above : 0.0f;
  return (p * power_of_two(e)) * power_of_two(extra);
}

/// Standard Gumbel noise from an open uniform: g = -ln(-ln u) = -ln 2 log2(-log2 u) + offset.
inline float gumbel_from_uniform(float u) noexcept {
  const float t = 0.0f - log2_positive(u);
  return fused_multiply_add(log2_positive(t), -kLn2, kGumbelOffset);
}

}  // namespace gumbel::detail::generic
