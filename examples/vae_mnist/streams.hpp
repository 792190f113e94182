// The generator streams of a vae_mnist run: one per purpose and epoch, so that every epoch's
// randomness is fixed by (seed, epoch) alone and a resumed run repeats a straight run exactly.
#pragma once

#include <cstdint>

namespace vae {

constexpr std::uint64_t kInitStream = 0;
constexpr std::uint64_t kNoiseStream = 1'000'000;
constexpr std::uint64_t kShuffleStream = 2'000'000;
constexpr std::uint64_t kTestStream = 3'000'000;
constexpr std::uint64_t kPriorStream = 4'000'000;
constexpr std::uint64_t kBinarizeTrainStream = 5'000'000;  // with binarize_seed, not seed
constexpr std::uint64_t kBinarizeTestStream = 6'000'000;   // with binarize_seed, not seed
constexpr std::uint64_t kDynamicStream = 7'000'000;
constexpr std::uint64_t kBoundStream = 8'000'000;
constexpr std::uint64_t kFinalBoundStream = 9'000'000;

}  // namespace vae
