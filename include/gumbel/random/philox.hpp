// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator. Block n of a stream is a pure function of (key, counter), so any
// part of any sample can be drawn independently of the others and of the thread count.
#pragma once

#include <array>
#include <cstdint>

#include "gumbel/core/simd/dispatch.hpp"

namespace gumbel::random {

using Words = std::array<std::uint32_t, 4>;
using Key = detail::PhiloxKey;

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

/// Blocks a batch computes at once (see core/simd/generic/philox.hpp).
inline constexpr int kBatch = detail::kPhiloxBatch;

/// Words of kBatch consecutive blocks, word w of block b at words[w][b].
using BatchWords = detail::PhiloxBatchWords;

/// philox4x32_10 for the counters {first + b, stream} of b = 0 .. kBatch - 1, all at once, by
/// the kernel the dispatch chooses (the same words either way).
inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, Key key,
                                BatchWords& out) noexcept {
  detail::kernels::philox4x32_10_batch(first, stream, key, out);
}

/// A uniform float on the open interval (0, 1) from 32 random bits (see
/// detail::open_uniform_float): one of 2^23 midpoints from 2^-24 to 1 - 2^-24.
constexpr float uniform_open_float(std::uint32_t bits) noexcept {
  return detail::open_uniform_float(bits);
}

/// A uniform double on (0, 1) from 64 random bits, the same construction with 52 bits: from
/// 2^-53 to 1 - 2^-53, never 0 or 1.
constexpr double uniform_open_double(std::uint64_t bits) noexcept {
  return (static_cast<double>(bits >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

}  // namespace gumbel::random
