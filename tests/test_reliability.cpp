// Hostile inputs: sizes that overflow, NaN that must propagate, temperatures whose inverse
// overflows, samples at huge logits, logarithms of subnormal numbers, and errors that name the
// op the user called.
#include "test_util.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>

// The sanitizers' allocators abort on a request larger than they support instead of throwing
// std::bad_alloc: the tests of honest allocation failures skip there.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GUMBEL_TEST_SANITIZED_ALLOCATOR 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GUMBEL_TEST_SANITIZED_ALLOCATOR 1
#endif

using namespace gumbel;
using namespace test;

namespace {

/// The message of the gumbel::Error thrown by f, which must be of type E.
template <class E, class F>
std::string error_of(F&& f) {
  const std::string msg = message_of<E>(std::forward<F>(f));
  INFO(msg);
  CHECK_FALSE(msg.empty());
  return msg;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// |frequency - p| within 5 standard errors of a binomial proportion over n draws.
void check_frequency(double hits, double n, double p) {
  const double frequency = hits / n;
  const double tolerance = 5 * std::sqrt(p * (1 - p) / n);
  CAPTURE(frequency);
  CAPTURE(p);
  CHECK(std::abs(frequency - p) < tolerance);
}

/// Row-wise index of the largest entry.
template <class M>
Eigen::Matrix<Index, Eigen::Dynamic, 1> argmax_rows(const M& m) {
  Eigen::Matrix<Index, Eigen::Dynamic, 1> out(m.rows());
  for (Index i = 0; i < m.rows(); ++i) m.row(i).maxCoeff(&out(i));
  return out;
}

}  // namespace

// ---- 1. Sizes ---------------------------------------------------------------------------------

TEST_CASE("sizes whose element or byte count overflows are errors of the op, never a wrap") {
  Tape<float> tape;
  Generator gen(1);
  const Index big = Index(1) << 31;
  CHECK(contains(error_of<ShapeError>([&] { gumbel_noise(tape, big, big, gen); }),
                 "gumbel::gumbel_noise"));
  CHECK(contains(error_of<ShapeError>([&] { gumbel_noise(tape, Index(1) << 62, 4, gen); }),
                 "gumbel::gumbel_noise"));
  CHECK(contains(error_of<ShapeError>([&] { gumbel_noise(tape, -1, 3, gen); }),
                 "gumbel::gumbel_noise"));
  const auto empty = tape.variable(Matrix<float>(1, 0));
  const std::string msg =
      error_of<ShapeError>([&] { reshape(empty, Index(1) << 32, Index(1) << 32); });
  CHECK(contains(msg, "gumbel::reshape"));
  CHECK(contains(msg, "4294967296x4294967296"));
  CHECK_THROWS_AS(reshape(empty, std::numeric_limits<Index>::max(), 2), ShapeError);
  // The tape stays usable after a refused op.
  CHECK(gumbel_noise(tape, 3, 4, gen).value().allFinite());

  const auto logits = tape.variable(Matrix<float>::Zero(4, 3));
  CHECK(contains(error_of<ValueError>([&] { gumbel_rao(logits, 1.0f, gen, Index(1) << 62); }),
                 "gumbel::gumbel_rao"));
#if !defined(GUMBEL_TEST_SANITIZED_ALLOCATOR)
  // 2^40 draws of 12 floats fit the address space but not the machine: an honest bad_alloc.
  CHECK_THROWS_AS(gumbel_rao(logits, 1.0f, gen, Index(1) << 40), std::bad_alloc);
#endif
  const Eigen::Matrix<Index, Eigen::Dynamic, 1> classes = Eigen::Matrix<Index, 3, 1>(0, 1, 0);
  CHECK(contains(error_of<ShapeError>([&] { one_hot<float>(classes, -2); }), "gumbel::one_hot"));
  CHECK_THROWS_AS(sample_gumbel<float>(gen, big, big), ShapeError);
  CHECK_THROWS_AS(sample_gumbel<float>(gen, -2, 2), ShapeError);
  CHECK_THROWS_AS(gen.uniform<float>(-1, 2), ShapeError);
  CHECK_THROWS_AS(gen.normal<double>(big, big), ShapeError);
}

TEST_CASE(
    "the arena refuses byte counts that overflow, and reports an honest failure as "
    "bad_alloc") {
  Arena arena;
  CHECK_THROWS_AS(arena.allocate(std::numeric_limits<std::size_t>::max() - 3), std::bad_alloc);
  CHECK_THROWS_AS(arena.allocate_array<double>(std::numeric_limits<std::size_t>::max() / 4),
                  std::bad_alloc);
  CHECK(arena.allocate(100) != nullptr);  // still usable
#if !defined(GUMBEL_TEST_SANITIZED_ALLOCATOR)
  Tape<float> tape;
  Generator gen(1);
  // 2^40 floats, 4 TiB: a size that fits the types but not the machine.
  CHECK_THROWS_AS(gumbel_noise(tape, Index(1) << 20, Index(1) << 20, gen), std::bad_alloc);
  CHECK(tape.constant(Matrix<float>::Ones(2, 2)).value().sum() == 4.0f);
#endif
}

// ---- 2. NaN ------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("NaN propagates through every elementwise op, on scalar and vector paths", T,
                   float, double) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const Index cols : {Index(1), Index(8), Index(37)}) {
    CAPTURE(cols);
    Matrix<T> x = Matrix<T>::Constant(1, cols, T(0.5));
    const Index at = cols / 2;
    x(0, at) = nan;
    Tape<T> tape;
    const auto v = tape.variable(x);
    const auto w = tape.constant(Matrix<T>::Constant(1, cols, T(2)));
    const std::vector<std::pair<const char*, Var<T>>> outputs = {
        {"exp", exp(v)},
        {"log", log(v)},
        {"square", square(v)},
        {"sigmoid", sigmoid(v)},
        {"tanh", tanh(v)},
        {"relu", relu(v)},
        {"scale", v * T(3)},
        {"shift", v + T(1)},
        {"add", v + w},
        {"sub", w - v},
        {"mul", mul(v, w)},
        {"div", w / v},
        {"sum", sum(v)},
        {"mean", mean(v)},
        {"sum_rows", sum_rows(v)},
        {"bce_logits", binary_cross_entropy_with_logits(v, w, Reduction::none)},
        {"matmul", matmul(v, tape.constant(Matrix<T>::Ones(cols, 3)))}};
    for (const auto& output : outputs) {
      const char* name = output.first;
      const Var<T>& y = output.second;
      CAPTURE(name);
      const Index j = y.cols() == cols ? at : 0;
      CHECK(std::isnan(y.value()(0, j)));
    }
    // exp of -inf is still exactly 0 and exp of a large negative number flushes to 0.
    Matrix<T> low = Matrix<T>::Constant(1, cols, -std::numeric_limits<T>::infinity());
    low(0, 0) = T(-1e4);
    CHECK(exp(tape.constant(low)).value().isZero());
  }
}

TEST_CASE("the AVX-512 base-2 exponential propagates NaN and keeps its flush to zero") {
#if GUMBEL_AVX512
  alignas(64) float in[16] = {};
  in[3] = std::numeric_limits<float>::quiet_NaN();
  in[4] = -std::numeric_limits<float>::infinity();
  in[5] = -200.0f;
  in[6] = 1.0f;
  alignas(64) float out[16];
  _mm512_store_ps(out, detail::avx512::exp2_flush(_mm512_load_ps(in)));
  CHECK(std::isnan(out[3]));
  CHECK(out[4] == 0.0f);
  CHECK(out[5] == 0.0f);
  CHECK(out[6] == doctest::Approx(2.0f).epsilon(1e-6));
  CHECK(out[0] == 1.0f);
#else
  MESSAGE("no AVX-512 on this build: the generic exponential is covered by the elementwise test");
#endif
}

// ---- 3. Temperatures ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE("a temperature whose inverse overflows is an error with the reason", T, float,
                   double) {
  const T tiny = std::is_same_v<T, float> ? T(1e-40) : T(1e-310);
  REQUIRE(tiny > T(0));
  REQUIRE_FALSE(std::isfinite(T(1) / tiny));
  Tape<T> tape;
  Generator gen(4);
  const auto l = tape.variable(Matrix<T>::Zero(3, 4));
  const auto tau = tape.variable(Matrix<T>::Constant(1, 1, tiny));
  for (const bool hard : {false, true}) {
    const std::string msg = error_of<ValueError>([&] { gumbel_softmax(l, tiny, gen, hard); });
    CHECK(contains(msg, "gumbel::gumbel_softmax"));
    CHECK(contains(msg, "1/tau"));
    CHECK_THROWS_AS(gumbel_softmax(l, tau, gen, hard), ValueError);
  }
  CHECK_THROWS_AS(gumbel_softmax_log(l, tiny, gen), ValueError);
  CHECK_THROWS_AS(gumbel_rao(l, tiny, gen), ValueError);
  // A temperature just above the bound still gives finite samples on the simplex.
  const T smallest = T(4) / std::numeric_limits<T>::max();
  REQUIRE(std::isfinite(T(1) / smallest));
  const auto y = gumbel_softmax(l, smallest, gen);
  CHECK(y.value().allFinite());
  CHECK((y.value().rowwise().sum().array() - T(1)).abs().maxCoeff() < T(1e-5));
}

// ---- 5. Messages name the op the user called ---------------------------------------------------

TEST_CASE("errors name the op the user called") {
  Generator gen(5);
  Matrix<double> nan_logits = Matrix<double>::Zero(3, 4);
  nan_logits(1, 2) = NAN;
  CHECK(contains(error_of<ValueError>([&] { gumbel_max(nan_logits, gen); }), "gumbel::gumbel_max"));
  CHECK(contains(error_of<ValueError>([&] { gumbel_top_k(nan_logits, 2, gen); }),
                 "gumbel::gumbel_top_k"));
  Tape<double> tape;
  const auto none = tape.variable(Matrix<double>(0, 3));
  CHECK(contains(error_of<ShapeError>([&] { kl_uniform(none); }), "gumbel::kl_uniform"));
  CHECK(contains(error_of<ShapeError>([&] { kl_categorical(none, none); }),
                 "gumbel::kl_categorical"));
  CHECK(contains(error_of<ShapeError>([&] { binary_cross_entropy(none, none); }),
                 "gumbel::binary_cross_entropy"));
  CHECK(contains(error_of<ShapeError>([&] { binary_cross_entropy_with_logits(none, none); }),
                 "gumbel::binary_cross_entropy_with_logits"));
  // The sums of empty terms are 0, as in PyTorch.
  CHECK(kl_uniform(none, Reduction::sum).item() == 0.0);
}

TEST_CASE("optimizers refuse an empty parameter list, as documented") {
  CHECK(contains(error_of<ValueError>([] { optim::Adam<float>({}); }), "gumbel::Adam"));
  CHECK(contains(error_of<ValueError>([] { optim::SGD<double>({}); }), "gumbel::SGD"));
}

TEST_CASE("set_threads refuses counts outside [1, max_thread_count]") {
  const int before = max_threads();
  CHECK(contains(error_of<ValueError>([] { set_threads(100000); }), "gumbel::set_threads"));
  CHECK_THROWS_AS(set_threads(0), ValueError);
  CHECK_THROWS_AS(set_threads(-3), ValueError);
  CHECK(max_threads() == before);
  set_threads(before);
}

// ---- 6. Exact samples at large logits ----------------------------------------------------------

namespace {

/// Class-0 frequency of every sampler over `rows` copies of `row` (padded with masked classes
/// to `k` columns), against the softmax probability p0.
template <class T>
void check_samplers_at(const std::vector<T>& row, Index k, double p0, Index rows) {
  Matrix<T> logits = Matrix<T>::Constant(rows, k, -std::numeric_limits<T>::infinity());
  for (std::size_t j = 0; j < row.size(); ++j) logits.col(Index(j)).setConstant(row[j]);
  Generator gen(11);
  const auto count0 = [&](const auto& index) { return double((index.array() == 0).count()); };
  check_frequency(count0(gumbel_max(logits, gen)), double(rows), p0);
  const auto top = gumbel_top_k(logits.leftCols(Index(row.size())), 1, gen);
  check_frequency(count0(top.col(0)), double(rows), p0);
  for (const bool hard : {false, true}) {
    for (const bool grad : {false, true}) {
      CAPTURE(hard);
      CAPTURE(grad);
      Tape<T> tape;
      const auto l = grad ? tape.variable(logits) : tape.constant(logits);
      const auto y = gumbel_softmax(l, T(0.5), gen, hard);
      check_frequency(count0(argmax_rows(y.value())), double(rows), p0);
    }
  }
  Tape<T> tape;
  const auto l = tape.variable(logits);
  check_frequency(count0(argmax_rows(gumbel_softmax_log(l, T(0.5), gen).value())), double(rows),
                  p0);
  check_frequency(count0(argmax_rows(gumbel_rao(l, T(0.5), gen, 3).value())), double(rows), p0);
}

}  // namespace

TEST_CASE("samples stay exact for logits far from zero (float)") {
  const Index rows = 400000;
  for (const Index k : {Index(3), Index(20)}) {
    CAPTURE(k);
    check_samplers_at<float>({1e6f, 1e6f - 1}, k, 1 / (1 + std::exp(-1.0)), rows);
    check_samplers_at<float>({-3e7f, -3e7f - 2}, k, 1 / (1 + std::exp(-2.0)), rows / 4);
    check_samplers_at<float>({1e30f, 1e30f}, k, 0.5, rows / 4);
  }
}

TEST_CASE("samples stay exact for logits far from zero (double)") {
  const Index rows = 200000;
  for (const Index k : {Index(3), Index(20)}) {
    CAPTURE(k);
    check_samplers_at<double>({1e15, 1e15 - 1}, k, 1 / (1 + std::exp(-1.0)), rows);
    check_samplers_at<double>({1e16, 1e16 - 2}, k, 1 / (1 + std::exp(-2.0)), rows);
    check_samplers_at<double>({1e300, 1e300, 0.0}, k, 0.5, rows / 4);
  }
}

TEST_CASE("a block mixing small and huge logits samples both kinds of rows exactly") {
  // Small rows alone add the noise directly; a huge row in their block makes the whole block take
  // the shifted path. Both must give softmax's frequencies.
  const Index rows = 200000;
  Matrix<float> logits(rows, 2);
  for (Index i = 0; i < rows; ++i) {
    if (i % 2 == 0) {
      logits.row(i) << 1e6f, 1e6f - 1;
    } else {
      logits.row(i) << 0.5f, -0.5f;
    }
  }
  Generator gen(21);
  const auto index = gumbel_max(logits, gen);
  Tape<float> tape;
  const auto hard = argmax_rows(gumbel_softmax(tape.variable(logits), 0.7f, gen, true).value());
  const double p0 = 1 / (1 + std::exp(-1.0));
  for (const auto* sample : {&index, &hard}) {
    double even = 0, odd = 0;
    for (Index i = 0; i < rows; ++i) (i % 2 == 0 ? even : odd) += (*sample)(i) == 0 ? 1 : 0;
    check_frequency(even, double(rows / 2), p0);
    check_frequency(odd, double(rows / 2), p0);
  }
}

// ---- 6. Logarithms of subnormal numbers --------------------------------------------------------

TEST_CASE_TEMPLATE("log and binary cross-entropy are exact for subnormal inputs", T, float,
                   double) {
  const T denorm_min = std::numeric_limits<T>::denorm_min();
  const T min_normal = std::numeric_limits<T>::min();
  for (const Index cols : {Index(1), Index(8), Index(33)}) {
    CAPTURE(cols);
    // Subnormals spread over their whole range, and the normals next to them.
    Matrix<T> x(1, cols);
    for (Index j = 0; j < cols; ++j) {
      x(0, j) = j % 3 == 2
                    ? min_normal * T(1 + j)
                    : denorm_min * std::pow(T(2), T(j % (std::numeric_limits<T>::digits - 1)));
    }
    Tape<T> tape;
    const auto y = log(tape.constant(x));
    const auto bce = binary_cross_entropy(tape.constant(x), tape.constant(Matrix<T>::Ones(1, cols)),
                                          Reduction::none);
    for (Index j = 0; j < cols; ++j) {
      CAPTURE(x(0, j));
      const T expected = std::log(x(0, j));
      CHECK(std::abs(y.value()(0, j) - expected) <=
            4 * std::numeric_limits<T>::epsilon() * std::abs(expected));
      const T clamped = std::min(-expected, T(100));
      CHECK(std::abs(bce.value()(0, j) - clamped) <=
            4 * std::numeric_limits<T>::epsilon() * clamped);
    }
    CHECK(log(tape.constant(Matrix<T>::Zero(1, cols))).value()(0, 0) ==
          -std::numeric_limits<T>::infinity());
    CHECK(std::isnan(log(tape.constant(Matrix<T>::Constant(1, cols, T(-1)))).value()(0, 0)));
  }
  // The figures: float log(1e-40) = -92.103, double log(1e-310) = -713.8.
  Tape<T> tape;
  const T probe = std::is_same_v<T, float> ? T(1e-40) : T(1e-310);
  const auto y = log(tape.constant(Matrix<T>::Constant(1, 8, probe)));
  CHECK(y.value()(0, 7) == doctest::Approx(double(std::log(probe))).epsilon(1e-6));
}

TEST_CASE("binary cross-entropy of sigmoid(x) at x near -90 in float matches the double value") {
  Tape<float> tape;
  const Matrix<float> x = Eigen::RowVectorXf::LinSpaced(16, -95.0f, -85.0f);
  const auto p = sigmoid(tape.constant(x));
  const auto bce =
      binary_cross_entropy(p, tape.constant(Matrix<float>::Ones(1, 16)), Reduction::none);
  for (Index j = 0; j < 16; ++j) {
    const double pj = double(p.value()(0, j));
    CAPTURE(x(0, j));
    REQUIRE(pj > 0);
    CHECK(double(bce.value()(0, j)) == doctest::Approx(-std::log(pj)).epsilon(1e-6));
  }
}
