// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator. Block n of a stream is a pure function of (key, counter), so any
// part of any sample can be drawn independently of the others and of the thread count.
#pragma once

#include "gumbel/core/simd.hpp"

#include <array>
#include <cstdint>

#if GUMBEL_AVX512
#include <immintrin.h>
#endif

namespace gumbel::random {

using Words = std::array<std::uint32_t, 4>;
using Key = std::array<std::uint32_t, 2>;

/// Ten Philox rounds over a 128-bit counter under a 64-bit key.
constexpr Words philox4x32_10(Words ctr, Key key) noexcept {
  constexpr std::uint64_t kMul0 = 0xD2511F53u;
  constexpr std::uint64_t kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
  constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    const std::uint64_t p0 = kMul0 * ctr[0];
    const std::uint64_t p1 = kMul1 * ctr[2];
    ctr = Words{
        static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<std::uint32_t>(p1),
        static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<std::uint32_t>(p0)};
  }
  return ctr;
}

/// Blocks a batch computes at once: with the words held lane by lane (structure of arrays), the
/// rounds become vector multiplies over all counters. 64 blocks are four independent sets of 16,
/// enough to hide the multiplies' latency.
inline constexpr int kBatch = 64;

/// Words of kBatch consecutive blocks, word w of block b at words[w][b].
using BatchWords = std::uint32_t[4][kBatch];

/// philox4x32_10 for the counters {first + b, stream} of b = 0 .. kBatch - 1, all at once, in
/// plain C++ (the compiler vectorises it).
inline void philox4x32_10_batch_portable(std::uint64_t first, std::uint64_t stream, Key key,
                                         BatchWords& out) noexcept {
  constexpr std::uint64_t kMul0 = 0xD2511F53u;
  constexpr std::uint64_t kMul1 = 0xCD9E8D57u;
  std::uint32_t c0[kBatch], c1[kBatch], c2[kBatch], c3[kBatch];
  for (int b = 0; b < kBatch; ++b) {
    const std::uint64_t index = first + static_cast<std::uint64_t>(b);
    c0[b] = static_cast<std::uint32_t>(index);
    c1[b] = static_cast<std::uint32_t>(index >> 32);
    c2[b] = static_cast<std::uint32_t>(stream);
    c3[b] = static_cast<std::uint32_t>(stream >> 32);
  }
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    for (int b = 0; b < kBatch; ++b) {
      const std::uint64_t p0 = kMul0 * c0[b];
      const std::uint64_t p1 = kMul1 * c2[b];
      c0[b] = static_cast<std::uint32_t>(p1 >> 32) ^ c1[b] ^ key[0];
      c1[b] = static_cast<std::uint32_t>(p1);
      c2[b] = static_cast<std::uint32_t>(p0 >> 32) ^ c3[b] ^ key[1];
      c3[b] = static_cast<std::uint32_t>(p0);
    }
  }
  for (int b = 0; b < kBatch; ++b) {
    out[0][b] = c0[b];
    out[1][b] = c1[b];
    out[2][b] = c2[b];
    out[3][b] = c3[b];
  }
}

#if GUMBEL_AVX512
/// The same blocks with AVX-512: one register per word and set of 16 counters, the four sets
/// interleaved round by round. The 32 x 32 -> 64-bit products come as a low half (mullo) and a
/// high half assembled from the even-lane and odd-lane products; three-way XORs are one
/// ternary-logic instruction. The counters are built in registers (a carry into the high word
/// where the low word wraps): writing them to memory and loading them back stalled each batch.
inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, Key key,
                                BatchWords& out) noexcept {
  constexpr int kSets = kBatch / 16;
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
#else
inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, Key key,
                                BatchWords& out) noexcept {
  philox4x32_10_batch_portable(first, stream, key, out);
}
#endif

/// A uniform float on the open interval (0, 1) from 32 random bits: the top 23 bits plus half
/// a step, i.e. one of 2^23 midpoints from 2^-24 to 1 - 2^-24. Both ends are exact floats, so
/// neither 0 nor 1 can come out and log(u), log(-log u) stay finite. (24 bits plus half a step
/// would round the top value to exactly 1.0f.)
constexpr float uniform_open_float(std::uint32_t bits) noexcept {
  return (static_cast<float>(bits >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

/// A uniform double on (0, 1) from 64 random bits, the same construction with 52 bits: from
/// 2^-53 to 1 - 2^-53, never 0 or 1.
constexpr double uniform_open_double(std::uint64_t bits) noexcept {
  return (static_cast<double>(bits >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

}  // namespace gumbel::random
