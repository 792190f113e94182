// A seeded stream of Philox blocks with a position, and uniform / normal fills built on it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "gumbel/core/error.hpp"
#include "gumbel/core/sizes.hpp"
#include "gumbel/core/types.hpp"
#include "gumbel/random/philox.hpp"

namespace gumbel {

/// Seed + stream pick a sequence of 128-bit blocks; `offset` is the next unused block. The whole
/// state is these three integers, so saving and restoring a generator is trivial.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept
      : seed_(seed), stream_(stream) {}

  std::uint64_t seed() const noexcept { return seed_; }
  std::uint64_t stream() const noexcept { return stream_; }
  std::uint64_t offset() const noexcept { return offset_; }
  void set_offset(std::uint64_t offset) noexcept { offset_ = offset; }

  /// A generator of the same seed and stream whose draws start at Philox block index * 2^32:
  /// a range of 2^32 blocks (2^34 floats) of its own for each index, for example one per block
  /// of examples per step, so that a block's noise does not depend on which thread or process
  /// draws it. `index` must be below 2^32 (a ValueError otherwise); the ranges of different
  /// indices never overlap, and index 0's is where this stream's own draws start.
  Generator subsequence(std::uint64_t index) const {
    if (index >> 32 != 0) {
      detail::fail<ValueError>("Generator::subsequence", "index ", index, " must be below 2^32");
    }
    Generator g(seed_, stream_);
    g.set_offset(index << 32);
    return g;
  }

  /// Block `index` of this stream, without moving the position.
  random::Words block(std::uint64_t index) const noexcept {
    return random::philox4x32_10(
        {static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
         static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
        key());
  }

  /// Reserves `count` blocks and returns the index of the first.
  std::uint64_t advance(std::uint64_t count) noexcept {
    const std::uint64_t first = offset_;
    offset_ += count;
    return first;
  }

  /// How many values of type T one block gives: 4 floats or 2 doubles.
  template <class T>
  static constexpr Index values_per_block = std::is_same_v<T, float> ? 4 : 2;

  /// Uniforms on the open interval (0, 1) for elements [begin, begin + count) of a draw that
  /// starts at block `first`: element e always comes from lane e % per of block first + e / per
  /// (per = values_per_block<T>), so any slice of a draw can be made on its own.
  template <class T>
  void uniform_range(std::uint64_t first, Index begin, Index count, T* out) const noexcept {
    constexpr Index per = values_per_block<T>;
    constexpr Index batch_values = per * random::kBatch;
    // A batch costs about as much as four blocks one by one: short ranges go block by block.
    constexpr Index kShortRange = 4 * per;
    Index e = begin;
    const Index end = begin + count;
    while (end - e > kShortRange) {
      // A batch may start at any block; a range that starts mid-block or ends mid-batch takes
      // the part of a whole batch it needs.
      const Index lane = e % per;
      const Index n = std::min(end - e, batch_values - lane);
      const std::uint64_t block = first + static_cast<std::uint64_t>(e / per);
      T* dest = out + (e - begin);
      if (n == batch_values) {
        uniform_batch(block, dest);
      } else {
        T values[std::size_t{batch_values}];
        uniform_batch(block, values);
        std::copy_n(values + lane, n, dest);
      }
      e += n;
    }
    uniform_blocks(first, e, end, out - begin);
  }

  /// The per * kBatch values of the batch of blocks that starts at block `block`, in order.
  template <class T>
  void uniform_batch(std::uint64_t block, T* dest) const noexcept {
    random::BatchWords w;
    random::philox4x32_10_batch(block, stream_, key(), w);
    if constexpr (std::is_same_v<T, float>) {
      detail::kernels::uniform_floats(w, dest);
    } else {
      for (Index b = 0; b < random::kBatch; ++b) {
        dest[2 * b] = static_cast<T>(random::uniform_open_double(join(w[1][b], w[0][b])));
        dest[2 * b + 1] = static_cast<T>(random::uniform_open_double(join(w[3][b], w[2][b])));
      }
    }
  }

  /// Blocks a draw of `count` values of type T uses.
  template <class T>
  static constexpr std::uint64_t blocks_for(Index count) {
    return static_cast<std::uint64_t>((count + values_per_block<T> - 1) / values_per_block<T>);
  }

  /// `count` uniforms on (lo, hi), advancing the stream.
  template <class T>
  void fill_uniform(T* out, Index count, T lo = T(0), T hi = T(1)) noexcept {
    uniform_range(advance(blocks_for<T>(count)), 0, count, out);
    for (Index j = 0; j < count; ++j) out[j] = lo + (hi - lo) * out[j];
  }

  /// `count` normals (Box-Muller on pairs of open uniforms), advancing the stream.
  template <class T>
  void fill_normal(T* out, Index count, T mean = T(0), T stddev = T(1)) noexcept {
    const Index even = count - count % 2;
    fill_uniform(out, even);
    for (Index j = 0; j < even; j += 2) box_muller(out[j], out[j + 1], mean, stddev);
    if (even < count) {  // an odd count: the last value takes a fresh pair
      T pair[2];
      fill_uniform(pair, 2);
      box_muller(pair[0], pair[1], mean, stddev);
      out[even] = pair[0];
    }
  }

  /// A rows x cols matrix of uniforms on (lo, hi).
  template <class T>
  Matrix<T> uniform(Index rows, Index cols, T lo = T(0), T hi = T(1)) {
    detail::checked_size<T>("Generator::uniform", rows, cols);
    Matrix<T> m(rows, cols);
    fill_uniform(m.data(), m.size(), lo, hi);
    return m;
  }

  /// A rows x cols matrix of normals.
  template <class T>
  Matrix<T> normal(Index rows, Index cols, T mean = T(0), T stddev = T(1)) {
    detail::checked_size<T>("Generator::normal", rows, cols);
    Matrix<T> m(rows, cols);
    fill_normal(m.data(), m.size(), mean, stddev);
    return m;
  }

 private:
  random::Key key() const noexcept {
    return {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)};
  }

  static std::uint64_t join(std::uint32_t high, std::uint32_t low) noexcept {
    return (std::uint64_t{high} << 32) | low;
  }

  /// Elements [e, end) of a draw, one block at a time; out_base[e] is element e's slot. Returns
  /// end.
  template <class T>
  Index uniform_blocks(std::uint64_t first, Index e, Index end, T* out_base) const noexcept {
    constexpr Index per = values_per_block<T>;
    while (e < end) {
      const random::Words w = block(first + static_cast<std::uint64_t>(e / per));
      T u[std::size_t{per}];
      if constexpr (std::is_same_v<T, float>) {
        for (std::size_t k = 0; k < 4; ++k) u[k] = random::uniform_open_float(w[k]);
      } else {
        u[0] = static_cast<T>(random::uniform_open_double(join(w[1], w[0])));
        u[1] = static_cast<T>(random::uniform_open_double(join(w[3], w[2])));
      }
      for (Index lane = e % per; lane < per && e < end; ++lane, ++e) out_base[e] = u[lane];
    }
    return end;
  }

  /// Turns two open uniforms into two independent normals, in place.
  template <class T>
  static void box_muller(T& u1, T& u2, T mean, T stddev) noexcept {
    const T radius = std::sqrt(T(-2) * std::log(u1));
    const T angle = T(6.283185307179586476925) * u2;
    u1 = mean + stddev * radius * std::cos(angle);
    u2 = mean + stddev * radius * std::sin(angle);
  }

  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t offset_ = 0;
};

}  // namespace gumbel
