// The kernels of core/simd: the generic twins' accuracy against double-precision references,
// every AVX-512 kernel against its generic twin bit for bit (when compiled in), and whole samplers
// run with the vector kernels on and off.
#include "test_util.hpp"

#include <gumbel/core/simd/dispatch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

using namespace gumbel;
namespace generic = gumbel::detail::generic;

namespace {

constexpr double kUlp = 1.0 / (1 << 23);  // float's ulp of 1
constexpr float kInf = std::numeric_limits<float>::infinity();

/// All 2^23 open uniforms of uniform_open_float, in order.
std::vector<float> every_uniform() {
  std::vector<float> u(std::size_t{1} << 23);
  for (std::uint32_t k = 0; k < (1u << 23); ++k) u[k] = random::uniform_open_float(k << 9);
  return u;
}

template <class F>
std::vector<float> each(const std::vector<float>& xs, F f) {
  std::vector<float> out(xs.size());
  for (std::size_t j = 0; j < xs.size(); ++j) out[j] = f(xs[j]);
  return out;
}

/// Arguments for log2: every uniform, minus their log2 (0 to 24), and values in every binade.
std::vector<float> log2_arguments() {
  std::vector<float> xs = every_uniform();
  const std::size_t n = xs.size();
  for (std::size_t j = 0; j < n; ++j) xs.push_back(-generic::log2_positive(xs[j]));
  for (int e = -125; e < 128; ++e) {
    for (const float m : {1.0f, 1.1f, 1.3333f, 1.5f, 1.99999f, 0.70710677f}) {
      xs.push_back(std::ldexp(m, e) < std::numeric_limits<float>::max() ? std::ldexp(m, e) : 1.0f);
    }
  }
  return xs;
}

/// Arguments for exp2: [-126, 0] in steps of 1/4096, below the flush, specials and positives.
std::vector<float> exp2_arguments() {
  std::vector<float> xs;
  for (int j = 0; j <= 126 * 4096; ++j) xs.push_back(-float(j) / 4096.0f);
  for (const float x : {-126.5f, -127.0f, -150.0f, -1e30f, -kInf, 0.5f, 10.25f, 127.5f, 127.75f,
                        128.0f, std::numeric_limits<float>::quiet_NaN()}) {
    xs.push_back(x);
  }
  return xs;
}

/// True when a and b hold the same bits (NaNs of either sign and payload count as equal).
bool same_bits(const float* a, const float* b, Index n, Index* where = nullptr) {
  for (Index j = 0; j < n; ++j) {
    const bool equal = std::isnan(a[j]) ? std::isnan(b[j]) : std::memcmp(a + j, b + j, 4) == 0;
    if (!equal) {
      if (where) *where = j;
      return false;
    }
  }
  return true;
}

/// f applied to xs Width at a time, through a vector set's load and store (the tail padded
/// with 1).
template <std::size_t Width, class Load, class Store, class F>
std::vector<float> in_vectors(std::vector<float> xs, Load load, Store store, F f) {
  const std::size_t n = xs.size();
  while (xs.size() % Width != 0) xs.push_back(1.0f);
  std::vector<float> out(xs.size());
  for (std::size_t j = 0; j < xs.size(); j += Width) store(out.data() + j, f(load(xs.data() + j)));
  out.resize(n);
  return out;
}

/// A vector set's log2, exp2 and Gumbel transform against the generic ones, bit for bit, over
/// all their test arguments; vectorised(xs, f) applies one of the set's functions to xs.
template <class Apply, class F>
void check_math_twins(Apply vectorised, F log2, F exp2, F gumbel) {
  Index at = -1;
  const std::vector<float> lx = log2_arguments();
  CHECK_MESSAGE(same_bits(each(lx, generic::log2_positive).data(), vectorised(lx, log2).data(),
                          Index(lx.size()), &at),
                "log2 differs at ", at);
  const std::vector<float> ex = exp2_arguments();
  CHECK_MESSAGE(same_bits(each(ex, generic::exp2_flush).data(), vectorised(ex, exp2).data(),
                          Index(ex.size()), &at),
                "exp2 differs at ", at);
  const std::vector<float> u = every_uniform();
  CHECK_MESSAGE(same_bits(each(u, generic::gumbel_from_uniform).data(),
                          vectorised(u, gumbel).data(), Index(u.size()), &at),
                "Gumbel noise differs at ", at);
}

/// A vector set's Gumbel noise from uniforms against the generic one, with and without a shift,
/// at every tail length up to 40.
template <class F>
void check_noise_twins(F vector_noise) {
  Generator gen(3);
  for (Index count = 0; count <= 40; ++count) {
    const Matrix<float> u = gen.uniform<float>(1, std::max<Index>(count, 1));
    const Matrix<float> shift = gen.normal<float>(1, std::max<Index>(count, 1), 0.0f, 5.0f);
    for (const bool shifted : {false, true}) {
      Matrix<float> a = u, b = u;
      const float* s = shifted ? shift.data() : nullptr;
      generic::gumbel_from_uniforms(a.data(), count, s, 1.25f);
      vector_noise(b.data(), count, s, 1.25f);
      CAPTURE(count);
      CHECK(same_bits(a.data(), b.data(), a.size()));
    }
  }
}

/// A vector set's batch of Philox blocks against the generic one, at counters whose low word
/// wraps inside a set of lanes and at the top of the counter range.
template <class F>
void check_philox_twins(F vector_philox) {
  const detail::PhiloxKey key{0xa4093822u, 0x299f31d0u};
  for (const std::uint64_t first : {std::uint64_t{0}, std::uint64_t{0xFFFFFFD5u},
                                    std::uint64_t{0xFFFFFFF9u}, ~std::uint64_t{0} - 40}) {
    detail::PhiloxBatchWords a{}, b{};
    generic::philox4x32_10_batch(first, 0xfedcba9876543210u, key, a);
    vector_philox(first, 0xfedcba9876543210u, key, b);
    CHECK(std::memcmp(a, b, sizeof a) == 0);
  }
}

#if GUMBEL_AVX2 || GUMBEL_AVX512  // what the vector sets' twin tests share

/// Rows with a masked class, a tie for the maximum, tiny and huge entries.
Matrix<float> awkward_block(Generator& gen, Index rows, Index k) {
  Matrix<float> block = gen.normal<float>(rows, k, 0.0f, 3.0f);
  if (k > 2) block(0, 1) = -kInf;
  if (rows > 2 && k > 2) block.row(2).head(2).setConstant(7.0f);
  if (rows > 3) block.row(3) *= 1e-30f;
  block(rows - 1, 0) = 1e30f;
  return block;
}

/// A vector set's softmax against the generic kernels, bit for bit: softmax_block given the
/// maxima (16-lane sums for every k), softmax_rows through the dispatch with `set` in use and
/// with the generic set (soft and with one-hot rows), and unusable rows reported by the same
/// index.
template <class Block>
void check_softmax_twins(simd::KernelSet set, Block vector_block) {
  Generator gen(12);
  for (const Index k : {Index{1}, Index{3}, Index{8}, Index{10}, Index{16}, Index{17}, Index{23},
                        Index{24}, Index{33}, Index{100}}) {
    for (const Index rows : {Index{1}, Index{5}, Index{16}, Index{37}}) {
      CAPTURE(k);
      CAPTURE(rows);
      const Matrix<float> block = awkward_block(gen, rows, k);
      for (const float inv_tau : {1.0f, 2.0f, 0.1f, 30.0f}) {
        float max[detail::kMaxBlockRows];
        for (Index r = 0; r < rows; ++r) REQUIRE(generic::row_max(block.data() + r * k, k, max[r]));
        Matrix<float> a = block, b = block;
        generic::softmax_block(a.data(), rows, k, max, inv_tau);
        vector_block(b.data(), rows, k, max, inv_tau);
        CHECK(same_bits(a.data(), b.data(), a.size()));
        for (const bool with_one_hot : {false, true}) {
          Matrix<float> ga = block, gb = block;
          Matrix<float> ha = Matrix<float>::Constant(rows, k, 5.0f), hb = ha;
          REQUIRE(simd::use_kernel_set(simd::KernelSet::generic));
          const Index bad_a = detail::kernels::softmax_rows(ga.data(), rows, k, inv_tau,
                                                            with_one_hot ? ha.data() : nullptr);
          REQUIRE(simd::use_kernel_set(set));
          const Index bad_b = detail::kernels::softmax_rows(gb.data(), rows, k, inv_tau,
                                                            with_one_hot ? hb.data() : nullptr);
          REQUIRE(bad_a == -1);
          REQUIRE(bad_b == -1);
          CHECK(same_bits(ga.data(), gb.data(), ga.size()));
          CHECK(ha == hb);
        }
      }
    }
  }
  for (const Index k : {Index{10}, Index{40}}) {
    for (const float bad : {std::nanf(""), kInf, -kInf}) {
      Matrix<float> block = gen.normal<float>(9, k);
      if (bad == -kInf)
        block.row(6).setConstant(bad);
      else
        block(6, 3) = bad;
      Matrix<float> hot(9, k);
      for (const simd::KernelSet s : {simd::KernelSet::generic, set}) {
        REQUIRE(simd::use_kernel_set(s));
        CHECK(detail::kernels::softmax_rows(Matrix<float>(block).data(), 9, k, 1.0f) == 6);
        CHECK(detail::kernels::softmax_rows(Matrix<float>(block).data(), 9, k, 1.0f, hot.data()) ==
              6);
      }
    }
  }
  simd::use_vector_kernels(true);
}
#endif

}  // namespace

// ---- The generic twins against double-precision references -----------------------------------

TEST_CASE("generic m c - 1 is rounded once, with or without FMA hardware") {
  // Every table scale against mantissas across [2/3, 4/3), each compared with std::fma.
  Index differ = 0;
  for (std::uint32_t bits = 0x3F2AAAABu; bits < 0x3FAAAAABu; bits += 61) {
    const float m = generic::bits_float(bits);
    for (const float c : detail::kLog2Table.scale) {
      if (m * c < 0.5f || m * c > 2.0f) continue;
      const float want = std::fma(m, c, -1.0f);
      const float got = generic::product_minus_one(m, c);
      if (!same_bits(&want, &got, 1)) ++differ;
    }
  }
  CHECK(differ == 0);
}

TEST_CASE("generic log2 is within 2 ulps of log2, near 1 and across all binades") {
  const std::vector<float> xs = log2_arguments();
  const std::vector<float> got = each(xs, generic::log2_positive);
  const std::size_t uniforms = std::size_t{1} << 23;
  double worst = 0;
  for (std::size_t j = 0; j < xs.size(); ++j) {
    const double exact = std::log2(double(xs[j]));
    // Relative to the result for the uniforms (log2 tiny near 1 - 2^-24 needs relative
    // accuracy); relative to max(|log2 x|, 1) elsewhere, where the table's rounding dominates.
    const double error = std::abs(double(got[j]) - exact);
    worst = std::max(
        worst, j < uniforms ? error / std::abs(exact) : error / std::max(std::abs(exact), 1.0));
  }
  CHECK(worst < 2 * kUlp);
}

TEST_CASE("generic exp2 is within 2 ulps down to the smallest normal result, 0 below, NaN kept") {
  const std::vector<float> xs = exp2_arguments();
  const std::vector<float> got = each(xs, generic::exp2_flush);
  double worst = 0;
  for (std::size_t j = 0; j < xs.size(); ++j) {
    if (std::isnan(xs[j])) {
      CHECK(std::isnan(got[j]));
    } else if (xs[j] < -126.0f) {
      CHECK(got[j] == 0.0f);
    } else if (xs[j] < 128.0f) {
      const double exact = std::exp2(double(xs[j]));
      worst = std::max(worst, std::abs(double(got[j]) - exact) / exact);
    }
  }
  CHECK(worst < 2 * kUlp);
  CHECK(got[0] == 1.0f);
  CHECK(generic::exp2_flush(128.0f) == kInf);  // 2^128 overflows, as it must
  CHECK(generic::exp2_flush(129.0f) == kInf);
}

TEST_CASE("generic Gumbel noise is -ln(-ln u) to a few ulps for every float uniform") {
  const std::vector<float> u = every_uniform();
  const std::vector<float> g = each(u, generic::gumbel_from_uniform);
  double worst = 0;
  for (std::size_t j = 0; j < u.size(); ++j) {
    const double exact = -std::log(-std::log(double(u[j])));
    worst = std::max(worst, std::abs(double(g[j]) - exact) / std::max(std::abs(exact), 1.0));
  }
  // g ranges over [-2.8, 16.6]: three float ulps of max(|g|, 1).
  CHECK(worst < 3 * kUlp);
}

TEST_CASE("generic short-row softmax sums left to right, long rows in 16 lanes") {
  // Each order checked against a sum written out by hand.
  std::vector<float> row(40);
  for (std::size_t j = 0; j < row.size(); ++j) row[j] = 1.0f / float(j + 3);
  float left = 0.0f;
  for (Index j = 0; j < 7; ++j) left += row[std::size_t(j)];
  CHECK(generic::sequential_row_sum(row.data(), 7) == left);
  float lanes[16] = {};
  for (std::size_t j = 0; j < 40; ++j) lanes[j % 16] += row[j];
  float h[8];
  for (int i = 0; i < 8; ++i) h[i] = lanes[i] + lanes[i + 8];
  const float by_hand = ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]));
  CHECK(generic::lane_row_sum(row.data(), 40) == by_hand);
}

// ---- Every AVX-512 kernel against its generic twin, bit for bit ------------------------------

#if GUMBEL_AVX512
namespace avx = gumbel::detail::avx512;

TEST_CASE("AVX-512 twins: log2, exp2 and the Gumbel transform give the same bits") {
  const auto sixteen = [](const std::vector<float>& xs, auto f) {
    return in_vectors<16>(
        xs, [](const float* p) { return _mm512_loadu_ps(p); },
        [](float* p, __m512 v) { _mm512_storeu_ps(p, v); }, f);
  };
  check_math_twins(sixteen, avx::log2_positive, avx::exp2_flush, avx::gumbel_from_uniform);
}

TEST_CASE("AVX-512 twins: Philox batches, Gumbel noise from uniforms") {
  check_philox_twins(avx::philox4x32_10_batch);
  check_noise_twins(avx::gumbel_from_uniforms);
}

namespace {
/// Blocks of rows with the cases the kernels branch on: masked classes, ties, huge and tiny
/// scales, and (when `bad`) one unusable row of each kind.
}  // namespace

TEST_CASE("AVX-512 twins: row maximum, argmax and block argmax") {
  Generator gen(8);
  for (const Index k :
       {Index{1}, Index{2}, Index{7}, Index{16}, Index{17}, Index{40}, Index{1000}}) {
    for (const Index rows : {Index{1}, Index{5}, Index{37}}) {
      Matrix<float> block = awkward_block(gen, rows, k);
      if (rows > 4) block(4, k - 1) = std::nanf("");
      for (Index r = 0; r < rows; ++r) {
        float ma = 0, mb = 0;
        const bool oa = generic::row_max(block.data() + r * k, k, ma);
        const bool ob = avx::row_max(block.data() + r * k, k, mb);
        CHECK(oa == ob);
        if (oa) CHECK(ma == mb);
        CHECK(generic::row_argmax(block.data() + r * k, k) ==
              avx::row_argmax(block.data() + r * k, k));
      }
      if (k <= 16) {
        Index a[detail::kMaxBlockRows], b[detail::kMaxBlockRows];
        const Index bad = generic::block_argmax(block.data(), rows, k, a);
        CHECK(bad == avx::argmax_short_rows(block.data(), rows, k, b));
        if (bad < 0) {
          for (Index r = 0; r < rows; ++r) CHECK(a[r] == b[r]);
        }
      }
    }
  }
}

TEST_CASE(
    "AVX-512 twins: softmax of blocks of rows, long and short, with and without one-hot rows") {
  check_softmax_twins(simd::KernelSet::avx512, avx::softmax_block);
}

TEST_CASE("AVX-512 twins: one-hot rows, shifts by the row maximum, short-row softmax backward") {
  Generator gen(21);
  for (Index k = 1; k <= 16; ++k) {
    for (const Index rows : {Index{1}, Index{6}, Index{37}}) {
      CAPTURE(k);
      CAPTURE(rows);
      Index argmax[detail::kMaxBlockRows];
      for (Index r = 0; r < rows; ++r) argmax[r] = (r * 7 + 3) % k;
      Matrix<float> a = Matrix<float>::Constant(rows, k, 9.0f), b = a;
      generic::write_one_hot(a.data(), rows, k, argmax);
      avx::one_hot_short_rows(b.data(), rows, k, argmax);
      CHECK(a == b);

      Matrix<float> block = awkward_block(gen, rows, k) * 1e6f;
      if (rows > 5) block.row(5).setConstant(-kInf);  // copied unshifted
      if (rows > 20) block(20, 0) = std::nanf("");
      Matrix<float> sa(rows, k), sb(rows, k);
      generic::shift_rows_by_max(block.data(), rows, k, sa.data());
      avx::shift_short_rows_by_max(block.data(), rows, k, sb.data());
      CHECK(same_bits(sa.data(), sb.data(), sa.size()));

      Matrix<float> s = gen.uniform<float>(rows, k, 0.01f, 1.0f);
      for (Index i = 0; i < rows; ++i) s.row(i) /= s.row(i).sum();
      const Matrix<float> dy = gen.normal<float>(rows, k);
      const Matrix<float> before = gen.normal<float>(rows, k);
      for (const bool assign : {true, false}) {
        Matrix<float> da = before, db = before;
        generic::softmax_short_rows_backward(s.data(), dy.data(), da.data(), rows, k, 0.5f, assign);
        avx::softmax_short_rows_backward(s.data(), dy.data(), db.data(), rows, k, 0.5f, assign);
        // Assigning: the same bits. Adding: the compiler may fuse the vector kernel's multiply
        // and add into one rounding; then within an ulp of the sum.
        if (assign) {
          CHECK(same_bits(da.data(), db.data(), da.size()));
        } else {
          CHECK(((da - db).array().abs() <= 2e-7f * (1.0f + da.array().abs())).all());
        }
      }
    }
  }
}
#else
TEST_CASE("no AVX-512 kernels in this build") {
  MESSAGE(
      "built without AVX-512 (or with GUMBEL_NO_SIMD): every kernel is the generic one, and "
      "the twin comparisons run in the native build");
  CHECK(simd::kernel_set() == simd::kWidest);
  CHECK_FALSE(simd::use_kernel_set(simd::KernelSet::avx512));
}
#endif

// ---- Every AVX2 kernel against its generic twin, bit for bit ---------------------------------

#if GUMBEL_AVX2

TEST_CASE("AVX2 twins: log2, exp2 and the Gumbel transform") {
  namespace v2 = gumbel::detail::avx2;
  const auto eight = [](const std::vector<float>& xs, auto f) {
    return in_vectors<8>(
        xs, [](const float* p) { return _mm256_loadu_ps(p); },
        [](float* p, __m256 v) { _mm256_storeu_ps(p, v); }, f);
  };
  check_math_twins(eight, v2::log2_positive, v2::exp2_flush, v2::gumbel_from_uniform);
}

TEST_CASE("AVX2 twins: row maximum and argmax, unusable rows included") {
  namespace v2 = gumbel::detail::avx2;
  Generator gen(8);
  for (const Index k : {Index{1}, Index{2}, Index{7}, Index{8}, Index{9}, Index{15}, Index{16},
                        Index{17}, Index{24}, Index{40}, Index{1000}}) {
    for (const Index rows : {Index{1}, Index{5}, Index{37}}) {
      CAPTURE(k);
      Matrix<float> block = awkward_block(gen, rows, k);
      if (rows > 4) block(4, k - 1) = std::nanf("");
      if (rows > 5) block(5, k / 2) = kInf;
      if (rows > 6) block.row(6).setConstant(-kInf);
      if (rows > 7) block(7, k - 1) = block.row(7).maxCoeff();  // a tie with the last entry
      for (Index r = 0; r < rows; ++r) {
        CAPTURE(r);
        float ma = 0, mb = 0;
        const bool oa = generic::row_max(block.data() + r * k, k, ma);
        const bool ob = v2::row_max(block.data() + r * k, k, mb);
        CHECK(oa == ob);
        if (oa) CHECK(ma == mb);
        CHECK(generic::row_argmax(block.data() + r * k, k) ==
              v2::row_argmax(block.data() + r * k, k));
      }
    }
  }
}

TEST_CASE("AVX2 twins: softmax of blocks of rows, long and short, with and without one-hot rows") {
  check_softmax_twins(simd::KernelSet::avx2, gumbel::detail::avx2::softmax_block);
}

TEST_CASE("AVX2 twins: Philox batches, their uniform floats, Gumbel noise from uniforms") {
  namespace v2 = gumbel::detail::avx2;
  check_philox_twins(v2::philox4x32_10_batch);
  check_noise_twins(v2::gumbel_from_uniforms);
  detail::PhiloxBatchWords words{};
  generic::philox4x32_10_batch(12345, 6789, {1u, 2u}, words);
  float a[4 * detail::kPhiloxBatch], b[4 * detail::kPhiloxBatch];
  generic::uniform_floats(words, a);
  v2::uniform_floats(words, b);
  CHECK(same_bits(a, b, 4 * detail::kPhiloxBatch));
  for (int e = 0; e < 4 * detail::kPhiloxBatch; ++e) {
    REQUIRE(a[e] == random::uniform_open_float(words[e % 4][e / 4]));
  }
}
#endif

// ---- Whole samplers with every kernel set ---------------------------------------

TEST_CASE("float samples are the same bits with every compiled kernel set") {
  const auto sample_all = [](simd::KernelSet set) {
    REQUIRE(simd::use_kernel_set(set));
    std::vector<Matrix<float>> out;
    for (const Index k : {Index{2}, Index{10}, Index{16}, Index{17}, Index{100}, Index{1000}}) {
      Tape<float> tape;
      Generator gen(77, std::uint64_t(k));
      Matrix<float> l = Generator(5).normal<float>(64, k, 0.0f, 2.0f);
      l(1, 0) = -kInf;
      l(2, k - 1) = 1e6f;  // a block that takes the shift by the row maximum
      auto logits = tape.variable(l);
      out.push_back(sample_gumbel<float>(gen, 7, k));
      auto soft = gumbel_softmax(logits, 0.5f, gen);
      auto hard = gumbel_softmax(logits, 0.5f, gen, true);
      auto st = straight_through(logits, gen);
      out.push_back(soft.value());
      out.push_back(hard.value());
      out.push_back(st.value());
      out.push_back(gumbel_softmax_log(logits, 0.5f, gen).value());
      out.push_back(gumbel_rao(logits, 0.5f, gen, 4).value());
      Matrix<float> w = Generator(9).normal<float>(64, k);
      tape.backward(sum(mul(soft, tape.constant(w))) + sum(mul(hard, tape.constant(w))));
      out.push_back(logits.grad());
    }
    simd::use_vector_kernels(true);
    return out;
  };
  const std::vector<Matrix<float>> generic_run = sample_all(simd::KernelSet::generic);
  int sets = 0;
  for (const simd::KernelSet set : {simd::KernelSet::avx2, simd::KernelSet::avx512}) {
    if (!simd::compiled(set)) continue;
    ++sets;
    const std::vector<Matrix<float>> vector_run = sample_all(set);
    REQUIRE(generic_run.size() == vector_run.size());
    for (std::size_t i = 0; i < generic_run.size(); ++i) {
      CAPTURE(simd::name(set));
      CAPTURE(i);
      REQUIRE(generic_run[i].rows() == vector_run[i].rows());
      CHECK(same_bits(generic_run[i].data(), vector_run[i].data(), generic_run[i].size()));
    }
  }
  if (sets == 0) MESSAGE("only the generic kernels in this build: compared with themselves");
}
