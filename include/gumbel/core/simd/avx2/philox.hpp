// Philox4x32-10 over a batch of consecutive counters with AVX2: the twin of
// core/simd/generic/philox.hpp (integer arithmetic, the same words).
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX2

#include <immintrin.h>

#include <cstdint>

#include "gumbel/core/simd/generic/philox.hpp"

namespace gumbel::detail::avx2 {

/// The batch as eight sets of 8 counters, one register per word and set, the sets interleaved
/// round by round; the high halves of the 32 x 32-bit products come from the even-lane and
/// odd-lane 64-bit products.
inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, PhiloxKey key,
                                PhiloxBatchWords& out) noexcept {
  constexpr int kSets = kPhiloxBatch / 8;
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const auto word = [](std::uint64_t v) { return static_cast<int>(static_cast<std::uint32_t>(v)); };
  const __m256i stream_low = _mm256_set1_epi32(word(stream));
  const __m256i stream_high = _mm256_set1_epi32(word(stream >> 32));
  __m256i c0[kSets], c1[kSets], c2[kSets], c3[kSets];
  for (int s = 0; s < kSets; ++s) {
    const std::uint64_t base = first + static_cast<std::uint64_t>(8 * s);
    const __m256i low = _mm256_set1_epi32(word(base));
    c0[s] = _mm256_add_epi32(low, iota);
    // A carry into the high word where the low word wrapped (c0 < low, unsigned): -1 there.
    const __m256i carry =
        _mm256_cmpgt_epi32(_mm256_xor_si256(low, sign), _mm256_xor_si256(c0[s], sign));
    c1[s] = _mm256_sub_epi32(_mm256_set1_epi32(word(base >> 32)), carry);
    c2[s] = stream_low;
    c3[s] = stream_high;
  }
  const __m256i mul0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i mul1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const auto high_half = [](__m256i x, __m256i m) {
    const __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(x, m), 32);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
    return _mm256_blend_epi32(even, odd, 0xAA);
  };
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    const __m256i k0 = _mm256_set1_epi32(static_cast<int>(key[0]));
    const __m256i k1 = _mm256_set1_epi32(static_cast<int>(key[1]));
    for (int s = 0; s < kSets; ++s) {
      const __m256i hi0 = high_half(c0[s], mul0);
      const __m256i lo0 = _mm256_mullo_epi32(c0[s], mul0);
      const __m256i hi1 = high_half(c2[s], mul1);
      const __m256i lo1 = _mm256_mullo_epi32(c2[s], mul1);
      c0[s] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[s]), k0);
      c1[s] = lo1;
      c2[s] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[s]), k1);
      c3[s] = lo0;
    }
  }
  for (int s = 0; s < kSets; ++s) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[0] + 8 * s), c0[s]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[1] + 8 * s), c1[s]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[2] + 8 * s), c2[s]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[3] + 8 * s), c3[s]);
  }
}

/// The 4 kPhiloxBatch floats of a batch in element order (generic::uniform_floats): eight
/// blocks at a time, each word converted exactly, then interleaved by a 4 x 4 transpose within
/// each 128-bit half and an exchange of halves.
inline void uniform_floats(const PhiloxBatchWords& words, float* dest) noexcept {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 step = _mm256_set1_ps(1.0f / 8388608.0f);
  const auto convert = [&](const std::uint32_t* w) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    return _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(bits, 9)), half), step);
  };
  for (int b = 0; b < kPhiloxBatch; b += 8) {
    const __m256 f0 = convert(words[0] + b), f1 = convert(words[1] + b);
    const __m256 f2 = convert(words[2] + b), f3 = convert(words[3] + b);
    const __m256 t0 = _mm256_unpacklo_ps(f0, f1), t1 = _mm256_unpackhi_ps(f0, f1);
    const __m256 t2 = _mm256_unpacklo_ps(f2, f3), t3 = _mm256_unpackhi_ps(f2, f3);
    // Block b + i's four words: u0 holds blocks 0 | 4, u1 1 | 5, u2 2 | 6, u3 3 | 7.
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    float* out = dest + 4 * b;
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
  }
}

}  // namespace gumbel::detail::avx2

#endif
