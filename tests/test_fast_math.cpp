// The AVX-512 logarithm, exponential and Gumbel transform against double-precision references,
// over every uniform the generator can give a float.
#include "test_util.hpp"

#if GUMBEL_AVX512
#include <gumbel/core/fast_math_avx512.hpp>
#include <gumbel/relax/sampling.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace gumbel;
namespace simd = gumbel::detail::avx512;

namespace {

/// f applied to xs, 16 at a time (xs.size() a multiple of 16).
template <class F>
std::vector<float> sixteen_at_a_time(const std::vector<float>& xs, F f) {
  std::vector<float> out(xs.size());
  for (std::size_t j = 0; j < xs.size(); j += 16) {
    _mm512_storeu_ps(out.data() + j, f(_mm512_loadu_ps(xs.data() + j)));
  }
  return out;
}

/// All 2^23 open uniforms of uniform_open_float, in order.
std::vector<float> every_uniform() {
  std::vector<float> u(std::size_t{1} << 23);
  for (std::uint32_t k = 0; k < (1u << 23); ++k) u[k] = random::uniform_open_float(k << 9);
  return u;
}

constexpr double kUlp = 1.0 / (1 << 23);  // float's ulp of 1

}  // namespace

TEST_CASE("AVX-512 log2 is within 2 ulps of log2, near 1 and across all binades") {
  const std::vector<float> u = every_uniform();
  // Every uniform (down to 2^-24, up to 1 - 2^-24, where log2 is tiny and needs relative
  // accuracy), then minus their log2 (0 to 24), then one value in each normal binade.
  std::vector<float> xs = u;
  const std::vector<float> log2u = sixteen_at_a_time(u, simd::log2_positive);
  for (const float v : log2u) xs.push_back(-v);
  for (int e = -125; e < 128; ++e) {
    for (const float m : {1.0f, 1.1f, 1.3333f, 1.5f, 1.99999f, 0.70710677f}) {
      xs.push_back(std::ldexp(m, e) < std::numeric_limits<float>::max() ? std::ldexp(m, e) : 1.0f);
    }
  }
  while (xs.size() % 16 != 0) xs.push_back(1.0f);
  const std::vector<float> got = sixteen_at_a_time(xs, simd::log2_positive);
  double worst = 0;
  for (std::size_t j = 0; j < xs.size(); ++j) {
    const double exact = std::log2(double(xs[j]));
    // Relative to the result (an ulp of it is at least 2^-24 of it), or to 1 where |log2 x| < 1
    // and the table's rounding dominates.
    const double error = std::abs(double(got[j]) - exact) / std::max(std::abs(exact), 1.0);
    const double relative = std::abs(double(got[j]) - exact) / std::abs(exact);
    worst = std::max(worst, std::min(error, j < u.size() ? relative : error));
  }
  CHECK(worst < 2 * kUlp);
}

TEST_CASE("AVX-512 exp2 is within 2 ulps down to the smallest normal result, and 0 below") {
  std::vector<float> xs;
  for (int j = 0; j <= 126 * 4096; ++j) xs.push_back(-float(j) / 4096.0f);
  for (const float x : {-126.5f, -127.0f, -150.0f, -1e30f, -std::numeric_limits<float>::infinity(),
                        0.5f, 10.25f, 127.5f}) {
    xs.push_back(x);
  }
  while (xs.size() % 16 != 0) xs.push_back(0.0f);
  const std::vector<float> got = sixteen_at_a_time(xs, simd::exp2_flush);
  double worst = 0;
  for (std::size_t j = 0; j < xs.size(); ++j) {
    if (xs[j] < -126.0f) {
      CHECK(got[j] == 0.0f);
      continue;
    }
    const double exact = std::exp2(double(xs[j]));
    worst = std::max(worst, std::abs(double(got[j]) - exact) / exact);
  }
  CHECK(worst < 2 * kUlp);
  CHECK(got[0] == 1.0f);
}

TEST_CASE("AVX-512 Gumbel noise is -ln(-ln u) to a few ulps for every float uniform") {
  const std::vector<float> u = every_uniform();
  const std::vector<float> g = sixteen_at_a_time(u, simd::gumbel_from_uniform);
  double worst = 0;
  for (std::size_t j = 0; j < u.size(); ++j) {
    const double exact = -std::log(-std::log(double(u[j])));
    worst = std::max(worst, std::abs(double(g[j]) - exact) / std::max(std::abs(exact), 1.0));
  }
  // g ranges over [-2.8, 16.6]: three float ulps of max(|g|, 1).
  CHECK(worst < 3 * kUlp);
}

TEST_CASE("AVX-512 softmax of short rows equals the general row code, argmax included") {
  // Rows of 1 to 16 entries in blocks whose sizes are not multiples of the group of four;
  // a masked entry, ties, and a row of very different scale.
  Generator gen(12);
  for (const Index k : {Index{1}, Index{3}, Index{10}, Index{16}}) {
    for (const Index rows : {Index{1}, Index{5}, Index{204}}) {
      Matrix<float> block = gen.normal<float>(rows, k, 0.0f, 3.0f);
      if (k > 2) block(0, 1) = -std::numeric_limits<float>::infinity();
      if (rows > 2 && k > 2) block.row(2).head(2).setConstant(7.0f);
      block(rows - 1, 0) = 1e30f;
      Matrix<float> fused = block;
      Index fused_argmax[detail::kMaxBlockRows];
      REQUIRE(detail::avx512::softmax_short_rows<true>(fused.data(), rows, k, 2.0f, fused_argmax) <
              0);
      Matrix<float> general = block;
      Index general_argmax[detail::kMaxBlockRows];
      float general_max[detail::kMaxBlockRows];
      for (Index r = 0; r < rows; ++r) {
        general_argmax[r] = simd::row_argmax(general.data() + r * k, k);
        REQUIRE(general_argmax[r] >= 0);
        general_max[r] = general(r, general_argmax[r]);
      }
      detail::avx512::softmax_block(general.data(), rows, k, general_max, 2.0f);
      for (Index r = 0; r < rows; ++r) CHECK(fused_argmax[r] == general_argmax[r]);
      Index transposed_argmax[detail::kMaxBlockRows];
      REQUIRE(detail::block_argmax(block.data(), rows, k, transposed_argmax) < 0);
      for (Index r = 0; r < rows; ++r) CHECK(transposed_argmax[r] == general_argmax[r]);
      CHECK((fused - general).cwiseAbs().maxCoeff() < 4e-7f);
      // Without argmax wanted (the soft sampler), the same values.
      Matrix<float> soft_only = block;
      REQUIRE(detail::avx512::softmax_short_rows<false>(soft_only.data(), rows, k, 2.0f, nullptr) <
              0);
      CHECK(soft_only == fused);
      CHECK((fused.rowwise().sum().array() - 1.0f).abs().maxCoeff() < 4e-7f);
    }
  }
  // A NaN, a +inf and an all -inf row are reported by their index.
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Matrix<float> block = gen.normal<float>(9, 10);
    block(6, 3) = bad;
    Index argmax[detail::kMaxBlockRows];
    CHECK(detail::avx512::softmax_short_rows<true>(Matrix<float>(block).data(), 9, 10, 1.0f,
                                                   argmax) == 6);
    CHECK(detail::avx512::softmax_short_rows<false>(Matrix<float>(block).data(), 9, 10, 1.0f,
                                                    nullptr) == 6);
    CHECK(detail::avx512::argmax_short_rows(block.data(), 9, 10, argmax) == 6);
  }
  Matrix<float> block = gen.normal<float>(9, 10);
  block.row(5).setConstant(-std::numeric_limits<float>::infinity());
  Index argmax[detail::kMaxBlockRows];
  CHECK(detail::avx512::argmax_short_rows(block.data(), 9, 10, argmax) == 5);
  CHECK(detail::avx512::softmax_short_rows<true>(block.data(), 9, 10, 1.0f, argmax) == 5);
}

TEST_CASE("AVX-512 short-row softmax backward equals the row formula, assigning and adding") {
  Generator gen(21);
  for (const Index k : {Index{1}, Index{3}, Index{10}, Index{16}}) {
    for (const Index rows : {Index{1}, Index{6}, Index{203}}) {
      Matrix<float> s = gen.uniform<float>(rows, k, 0.01f, 1.0f);
      for (Index i = 0; i < rows; ++i) s.row(i) /= s.row(i).sum();
      const Matrix<float> dy = gen.normal<float>(rows, k);
      const Matrix<float> before = gen.normal<float>(rows, k);
      Matrix<float> expected(rows, k);
      for (Index i = 0; i < rows; ++i) {
        expected.row(i) = (s.row(i).array() * (dy.row(i).array() - dy.row(i).dot(s.row(i)))) * 0.5f;
      }
      Matrix<float> assigned = Matrix<float>::Constant(rows, k, 99.0f);
      detail::avx512::softmax_short_rows_backward(s.data(), dy.data(), assigned.data(), rows, k,
                                                  0.5f, true);
      CHECK((assigned - expected).cwiseAbs().maxCoeff() < 1e-6f);
      Matrix<float> added = before;
      detail::avx512::softmax_short_rows_backward(s.data(), dy.data(), added.data(), rows, k, 0.5f,
                                                  false);
      CHECK((added - before - expected).cwiseAbs().maxCoeff() < 1e-6f);
    }
  }
}

TEST_CASE("Gumbel noise straight from the generator's registers equals the two-step definition") {
  // gumbel_range maps uniforms to noise in registers, batch by batch; slices that start
  // mid-block and end mid-batch must give exactly the transform of uniform_range's values.
  const Generator gen(5, 9);
  const std::uint64_t first = (std::uint64_t{1} << 32) - 7;
  for (const Index begin : {Index{0}, Index{2}, Index{255}}) {
    for (const Index count : {Index{3}, Index{16}, Index{17}, Index{256}, Index{1000}}) {
      std::vector<float> u(static_cast<std::size_t>(count));
      gen.uniform_range(first, begin, count, u.data());
      while (u.size() % 16 != 0) u.push_back(0.5f);
      const std::vector<float> expected = sixteen_at_a_time(u, simd::gumbel_from_uniform);
      std::vector<float> g(static_cast<std::size_t>(count));
      gumbel_range(gen, first, begin, count, g.data());
      // perturbed_range adds the shifted logits in the same pass: exactly (l - offset) + g.
      std::vector<float> logits(static_cast<std::size_t>(count)), p(logits.size());
      for (std::size_t j = 0; j < logits.size(); ++j) logits[j] = 0.37f * float(j % 11) - 2.0f;
      const float offset = 1.25f;
      perturbed_range(gen, first, begin, count, logits.data(), offset, p.data());
      for (Index j = 0; j < count; ++j) {
        const auto e = static_cast<std::size_t>(j);
        REQUIRE(g[e] == expected[e]);
        REQUIRE(p[e] == (logits[e] - offset) + expected[e]);
      }
    }
  }
}

TEST_CASE("AVX-512 row argmax finds the first largest entry in one pass") {
  // The maximum planted in several lanes and vectors, -inf entries, and rows that end
  // mid-vector; each against a scalar search.
  Generator gen(21);
  const float inf = std::numeric_limits<float>::infinity();
  for (const Index k : {Index{1}, Index{7}, Index{16}, Index{17}, Index{40}, Index{1000}}) {
    for (int trial = 0; trial < 50; ++trial) {
      Matrix<float> row = gen.normal<float>(1, k);
      const Index a = (trial * 7) % k, b = (trial * 13 + 5) % k;
      if (trial % 3 == 0) row(0, a) = row(0, b) = 9.0f;  // a tie between two columns
      if (trial % 5 == 0) row(0, (trial * 3) % k) = -inf;
      Index expected = 0;
      for (Index j = 1; j < k; ++j) {
        if (row(0, j) > row(0, expected)) expected = j;
      }
      if (!std::isfinite(row(0, expected))) expected = -1;
      REQUIRE(simd::row_argmax(row.data(), k) == expected);
      float max = 0.0f;
      REQUIRE(detail::row_max(row.data(), k, max) == (expected >= 0));
      if (expected >= 0) CHECK(max == row(0, expected));
    }
    // No finite maximum: all -inf, a NaN or a +inf anywhere.
    Matrix<float> row = Matrix<float>::Constant(1, k, -inf);
    CHECK(simd::row_argmax(row.data(), k) == -1);
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), inf}) {
      row = gen.normal<float>(1, k);
      row(0, k - 1) = bad;
      CHECK(simd::row_argmax(row.data(), k) == -1);
      float max = 0.0f;
      CHECK_FALSE(detail::row_max(row.data(), k, max));
    }
  }
}

TEST_CASE("AVX-512 shift of short rows by their maximum equals the generic row code") {
  const float inf = std::numeric_limits<float>::infinity();
  for (Index k = 1; k <= 16; ++k) {
    CAPTURE(k);
    const Index rows = 37;  // two full groups of 16 and a partial one
    Matrix<float> block = Generator(40 + std::uint64_t(k)).normal<float>(rows, k) * 1e6f;
    block(3, k - 1) = -inf;          // a masked class
    block.row(5).setConstant(-inf);  // no finite entry: copied unshifted
    block(20, 0) = std::nanf("");    // NaN: copied unshifted
    block(33, k / 2) = inf;          // +inf: copied unshifted
    Matrix<float> fast(rows, k), generic(rows, k);
    simd::shift_short_rows_by_max(block.data(), rows, k, fast.data());
    for (Index r = 0; r < rows; ++r) {
      const float m = detail::finite_max_or_zero(block.data() + r * k, k);
      generic.row(r) = block.row(r).array() - m;
    }
    for (Index r = 0; r < rows; ++r) {
      for (Index j = 0; j < k; ++j) {
        const float a = fast(r, j), b = generic(r, j);
        INFO("row " << r << " column " << j << ": " << a << " against " << b);
        CHECK((a == b || (std::isnan(a) && std::isnan(b))));
      }
    }
  }
}

#endif
