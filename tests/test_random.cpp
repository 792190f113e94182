#include "test_util.hpp"

#include <cmath>

using namespace gumbel;

TEST_CASE("Philox4x32-10 matches the published known-answer vectors") {
  using random::philox4x32_10;
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
        random::Words{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox4x32_10({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}) ==
        random::Words{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                      {0xa4093822u, 0x299f31d0u}) ==
        random::Words{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("A batch of Philox blocks equals the blocks one by one, both implementations") {
  // Counters whose low word wraps inside the first and a later set of 16, a counter that wraps
  // around 2^64, and keys and streams with high bits set.
  const random::Key key{0xa4093822u, 0x299f31d0u};
  for (const std::uint64_t first :
       {std::uint64_t{0}, std::uint64_t{0xFFFFFFF8u}, std::uint64_t{0xFFFFFFD5u},
        std::uint64_t{0x123456789abcdef0u}, ~std::uint64_t{0} - 40}) {
    const std::uint64_t stream = 0xfedcba9876543210u;
    random::BatchWords fast{};
    random::BatchWords portable{};
    random::philox4x32_10_batch(first, stream, key, fast);
    detail::generic::philox4x32_10_batch(first, stream, key, portable);
    for (int b = 0; b < random::kBatch; ++b) {
      const std::uint64_t index = first + static_cast<std::uint64_t>(b);
      const random::Words one = random::philox4x32_10(
          {static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
           static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)},
          key);
      for (int w = 0; w < 4; ++w) {
        CAPTURE(first);
        CAPTURE(b);
        CAPTURE(w);
        CHECK(fast[w][b] == one[static_cast<std::size_t>(w)]);
        CHECK(portable[w][b] == one[static_cast<std::size_t>(w)]);
      }
    }
  }
}

TEST_CASE("open uniforms never reach 0 or 1, even from extreme bits") {
  CHECK(random::uniform_open_float(0u) > 0.0f);
  CHECK(random::uniform_open_float(~0u) < 1.0f);
  CHECK(std::isfinite(-std::log(-std::log(random::uniform_open_float(0u)))));
  CHECK(std::isfinite(-std::log(-std::log(random::uniform_open_float(~0u)))));
  CHECK(random::uniform_open_double(0u) > 0.0);
  CHECK(random::uniform_open_double(~std::uint64_t{0}) < 1.0);
}

TEST_CASE_TEMPLATE("uniform and normal fills have the right moments", T, float, double) {
  const Index n = 200000;
  Generator gen(42);
  const Matrix<T> u = gen.uniform<T>(1, n);
  const double mean_u = u.template cast<double>().mean();
  // 5 standard errors of a mean of n U(0,1) draws (variance 1/12).
  CHECK(std::abs(mean_u - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  CHECK(u.minCoeff() > T(0));
  CHECK(u.maxCoeff() < T(1));

  const Matrix<T> z = gen.normal<T>(1, n + 1);  // odd count on purpose
  const Eigen::ArrayXd zd = z.template cast<double>().transpose().array();
  const double mean_z = zd.mean();
  const double var_z = (zd - mean_z).square().sum() / (zd.size() - 1);
  CHECK(std::abs(mean_z) < 5 / std::sqrt(double(n)));
  // The variance of a sample variance of normals is 2 / (n - 1).
  CHECK(std::abs(var_z - 1.0) < 5 * std::sqrt(2.0 / n));
}

TEST_CASE("a generator is reproducible and its streams differ") {
  Generator a(7), b(7), c(7, 1);
  const Matrix<float> x = a.uniform<float>(3, 5);
  CHECK(x == b.uniform<float>(3, 5));
  CHECK(x != c.uniform<float>(3, 5));
  CHECK(a.offset() == b.offset());
  // Counter-based: rewinding the offset replays the same numbers.
  a.set_offset(0);
  CHECK(x == a.uniform<float>(3, 5));
}

TEST_CASE_TEMPLATE("batched uniforms equal the block-by-block definition, for any slice", T, float,
                   double) {
  const Generator gen(42, 3);
  constexpr Index per = Generator::values_per_block<T>;
  const std::uint64_t first = (std::uint64_t{1} << 32) - 5;  // the counter's low word wraps
  // Slices that start mid-block, are just too long for blocks one by one, fill a batch exactly
  // or span several batches, and end mid-block or mid-batch.
  for (const Index begin : {Index{0}, Index{1}, Index{3}, Index{61}}) {
    for (const Index count :
         {Index{1}, Index{7}, Index{17}, Index{64}, Index{128}, Index{256}, Index{1001}}) {
      std::vector<T> batched(static_cast<std::size_t>(count));
      gen.uniform_range(first, begin, count, batched.data());
      for (Index j = 0; j < count; ++j) {
        const Index e = begin + j;
        const random::Words w = gen.block(first + static_cast<std::uint64_t>(e / per));
        T expected;
        if constexpr (std::is_same_v<T, float>) {
          expected = random::uniform_open_float(w[static_cast<std::size_t>(e % per)]);
        } else {
          const std::size_t lane = 2 * static_cast<std::size_t>(e % per);
          expected = random::uniform_open_double((std::uint64_t{w[lane + 1]} << 32) | w[lane]);
        }
        REQUIRE(batched[static_cast<std::size_t>(j)] == expected);
      }
    }
  }
}
