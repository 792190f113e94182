// The constants the fast float logarithm shares between its generic and vector forms: both read
// the same table, so both give the same bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace gumbel::detail {

/// log2 x = e + log2(m) with x = 2^e m, m in [2/3, 4/3): the 32 equal slices of m's bit pattern
/// each store c ~ 1 / (slice midpoint) and -log2 c, so that log2 m = -log2 c + log2(1 + r) with
/// r = m c - 1, |r| < 0.021, where five Taylor terms are exact to float precision. The slice
/// that holds 1 uses c = 1 exactly, so log2 keeps full relative accuracy near x = 1 (r = x - 1
/// there, without cancellation).
struct Log2Table {
  alignas(64) float scale[32];     ///< c of each slice
  alignas(64) float neg_log2[32];  ///< -log2 c, rounded from double
};

inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2 = 0.693147180559945309f;

inline constexpr std::uint32_t kTwoThirdsBits = 0x3F2AAAABu;  // the float just above 2/3

inline Log2Table make_log2_table() {
  Log2Table t{};
  for (std::uint32_t i = 0; i < 32; ++i) {
    const std::uint32_t low_bits = kTwoThirdsBits + (i << 18);
    const std::uint32_t high_bits = low_bits + (1u << 18);
    float low, high;
    std::memcpy(&low, &low_bits, sizeof low);
    std::memcpy(&high, &high_bits, sizeof high);
    float c = static_cast<float>(2.0 / (double(low) + double(high)));
    if (low <= 1.0f && 1.0f < high) c = 1.0f;
    t.scale[i] = c;
    t.neg_log2[i] = static_cast<float>(-std::log2(double(c)));
  }
  return t;
}

inline const Log2Table kLog2Table = make_log2_table();

/// The coefficients of log2(1 + r) / r = (1 - r/2 + r^2/3 - r^3/4 + r^4/5) / ln 2, highest
/// first.
inline constexpr float kLog2Poly[5] = {kLog2e / 5, -kLog2e / 4, kLog2e / 3, -kLog2e / 2, kLog2e};

/// 2^f = 1 + f P(f) on |f| <= 1/2: the coefficients of P, highest first, then 1 (a degree-5
/// least-squares fit; relative error 2.2e-9 before rounding).
inline constexpr float kExp2Poly[7] = {1.5370705e-4f, 1.3399848e-3f, 9.6183736e-3f, 5.5503290e-2f,
                                       2.4022648e-1f, 6.9314718e-1f, 1.0f};

/// -ln 2 log2(ln 2): g = -ln(-ln u) = -ln 2 log2(-log2 u) + this.
inline constexpr float kGumbelOffset = 0.366512920581664327f;

}  // namespace gumbel::detail
