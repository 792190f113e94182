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

/// a b + c rounded once: one instruction where the target has FMA (x86 with -mfma or
/// -march=x86-64-v3, haswell and later; every ARMv8); elsewhere (x86-64 without -march) a call
/// to libm's fmaf, exact but about 40 times slower. (Emulating it in double with rounding to odd
/// is exact too, and slower still without vectors.)
inline float fused_multiply_add(float a, float b, float c) noexcept {
  return std::fma(a, b, c);
}

/// log2 x for positive, normal, finite x (the table method of log2_table.hpp).
inline float log2_positive(float x) noexcept {
  const std::uint32_t bits = float_bits(x);
  const std::uint32_t offset = bits - kTwoThirdsBits;
  const std::int32_t exponent = static_cast<std::int32_t>(offset) >> 23;  // arithmetic shift
  const float m = bits_float(bits - (static_cast<std::uint32_t>(exponent) << 23));
  const std::uint32_t slice = (offset >> 18) & 31u;
  const float r = fused_multiply_add(m, kLog2Table.scale[slice], -1.0f);
  float p = kLog2Poly[0];
  for (int i = 1; i < 5; ++i) p = fused_multiply_add(p, r, kLog2Poly[i]);
  return fused_multiply_add(r, p, kLog2Table.neg_log2[slice] + static_cast<float>(exponent));
}

/// 2^x for x <= 128: exactly 0 for x < -126 (where the result would be subnormal, and for
/// -inf), NaN for NaN. 2^x = 2^n 2^f with n = x rounded to nearest even and |f| <= 1/2.
inline float exp2_flush(float x) noexcept {
  const float n = std::nearbyint(x);
  const float f = x - n;
  float p = kExp2Poly[0];
  for (int i = 1; i < 7; ++i) p = fused_multiply_add(p, f, kExp2Poly[i]);
  // 2^n built from its exponent bits (fmax and fmin pass a NaN n through as the bound).
  const float clamped = std::fmin(std::fmax(n, -126.0f), 127.0f);
  float y = p * bits_float(static_cast<std::uint32_t>(static_cast<int>(clamped) + 127) << 23);
  if (n > 127.0f) y *= n == 128.0f ? 2.0f : std::numeric_limits<float>::infinity();
  return x < -126.0f ? 0.0f : y;
}

/// Standard Gumbel noise from an open uniform: g = -ln(-ln u) = -ln 2 log2(-log2 u) + offset.
inline float gumbel_from_uniform(float u) noexcept {
  const float t = 0.0f - log2_positive(u);
  return fused_multiply_add(log2_positive(t), -kLn2, kGumbelOffset);
}

}  // namespace gumbel::detail::generic
