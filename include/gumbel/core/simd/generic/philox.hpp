// Philox4x32-10 over a batch of consecutive counters: the generic kernel, which the compiler
// vectorises; its AVX-512 twin is core/simd/avx512/philox.hpp. Integer arithmetic only, so both
// give the same words. (The scalar reference is random::philox4x32_10.)
#pragma once

#include <array>
#include <cstdint>

namespace gumbel::detail {

/// Blocks a batch computes at once: with the words held lane by lane (structure of arrays), the
/// rounds become vector multiplies over all counters. 64 blocks are four independent sets of 16,
/// enough to hide the multiplies' latency.
inline constexpr int kPhiloxBatch = 64;

/// Words of kPhiloxBatch consecutive blocks, word w of block b at words[w][b].
using PhiloxBatchWords = std::uint32_t[4][kPhiloxBatch];

/// A Philox key.
using PhiloxKey = std::array<std::uint32_t, 2>;

/// A uniform float on the open interval (0, 1) from 32 random bits: the top 23 bits plus half
/// a step, i.e. one of 2^23 midpoints from 2^-24 to 1 - 2^-24. Both ends are exact floats, so
/// neither 0 nor 1 can come out and log(u), log(-log u) stay finite. (24 bits plus half a step
/// would round the top value to exactly 1.0f.) Every step is exact, so any vector form of it
/// gives the same floats.
constexpr float open_uniform_float(std::uint32_t bits) noexcept {
  return (static_cast<float>(bits >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

namespace generic {

/// Philox4x32-10 of the counters {first + b, stream} for b = 0 .. kPhiloxBatch - 1, all at once,
/// in plain C++ (the compiler vectorises it).
inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, PhiloxKey key,
                                PhiloxBatchWords& out) noexcept {
  constexpr std::uint64_t kMul0 = 0xD2511F53u;
  constexpr std::uint64_t kMul1 = 0xCD9E8D57u;
  std::uint32_t c0[kPhiloxBatch], c1[kPhiloxBatch], c2[kPhiloxBatch], c3[kPhiloxBatch];
  for (int b = 0; b < kPhiloxBatch; ++b) {
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
    for (int b = 0; b < kPhiloxBatch; ++b) {
      const std::uint64_t p0 = kMul0 * c0[b];
      const std::uint64_t p1 = kMul1 * c2[b];
      c0[b] = static_cast<std::uint32_t>(p1 >> 32) ^ c1[b] ^ key[0];
      c1[b] = static_cast<std::uint32_t>(p1);
      c2[b] = static_cast<std::uint32_t>(p0 >> 32) ^ c3[b] ^ key[1];
      c3[b] = static_cast<std::uint32_t>(p0);
    }
  }
  for (int b = 0; b < kPhiloxBatch; ++b) {
    out[0][b] = c0[b];
    out[1][b] = c1[b];
    out[2][b] = c2[b];
    out[3][b] = c3[b];
  }
}

/// The 4 kPhiloxBatch floats of a batch in element order: dest[4 b + w] from word w of block b.
inline void uniform_floats(const PhiloxBatchWords& words, float* dest) noexcept {
  for (int b = 0; b < kPhiloxBatch; ++b) {
    for (int w = 0; w < 4; ++w) dest[4 * b + w] = open_uniform_float(words[w][b]);
  }
}

}  // namespace generic

}  // namespace gumbel::detail
