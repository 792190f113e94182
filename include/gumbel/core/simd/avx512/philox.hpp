// Philox4x32-10 over a batch of consecutive counters with AVX-512: the twin of
// core/simd/generic/philox.hpp, the same words.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX512

#include <immintrin.h>

#include <cstdint>

#include "gumbel/core/simd/generic/philox.hpp"

namespace gumbel::detail::avx512 {

/// The same blocks with AVX-512: one register per word and set of 16 counters, the four sets
/// interleaved round by round. The 32 x 32 -> 64-bit products come as a low half (mullo) and a
/// high half assembled from the even-lane and odd-lane products; three-way XORs are one
/// ternary-logic instruction. The counters are built in registers (a carry into the high word
/// where the low word wraps): writing them to memory and loading them back stalled each batch.
inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, PhiloxKey key,
                                PhiloxBatchWords& out) noexcept {
  constexpr int kSets = kPhiloxBatch / 16;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i stream_low =
      _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(stream)));
  const __m512i stream_high =
      _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(stream >> 32)));
  __m512i c0[kSets], c1[kSets], c2[kSets], c3[kSets];
  for (int s = 0; s < kSets; ++s) {
    const std::uint64_t base = first + static_cast<std::uint64_t>(16 * s);
    const __m512i low = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(base)));
    const __m512i high =
        _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(base >> 32)));
    c0[s] = _mm512_add_epi32(low, iota);
    c1[s] = _mm512_mask_add_epi32(high, _mm512_cmplt_epu32_mask(c0[s], low), high, one);
    c2[s] = stream_low;
    c3[s] = stream_high;
  }
  const __m512i mul0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m512i mul1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const auto high_half = [](__m512i x, __m512i m) {
    const __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(x, m), 32);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
    return _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, odd);
  };
  constexpr int kXor3 = 0x96;  // a ^ b ^ c
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    const __m512i k0 = _mm512_set1_epi32(static_cast<int>(key[0]));
    const __m512i k1 = _mm512_set1_epi32(static_cast<int>(key[1]));
    for (int s = 0; s < kSets; ++s) {
      const __m512i hi0 = high_half(c0[s], mul0);
      const __m512i lo0 = _mm512_mullo_epi32(c0[s], mul0);
      const __m512i hi1 = high_half(c2[s], mul1);
      const __m512i lo1 = _mm512_mullo_epi32(c2[s], mul1);
      c0[s] = _mm512_ternarylogic_epi32(hi1, c1[s], k0, kXor3);
      c1[s] = lo1;
      c2[s] = _mm512_ternarylogic_epi32(hi0, c3[s], k1, kXor3);
      c3[s] = lo0;
    }
  }
  for (int s = 0; s < kSets; ++s) {
    _mm512_storeu_si512(out[0] + 16 * s, c0[s]);
    _mm512_storeu_si512(out[1] + 16 * s, c1[s]);
    _mm512_storeu_si512(out[2] + 16 * s, c2[s]);
    _mm512_storeu_si512(out[3] + 16 * s, c3[s]);
  }
}
}  // namespace gumbel::detail::avx512

#endif
