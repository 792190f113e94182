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

}  // namespace gumbel::detail::avx2

#endif
