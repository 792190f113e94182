// Forward values against hand-computed cases, in float and double.
#include "test_util.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

using namespace gumbel;

namespace {

template <class T>
Matrix<T> mat(Index rows, Index cols, std::initializer_list<T> values) {
  Matrix<T> m(rows, cols);
  Index i = 0;
  for (T v : values) m(i / cols, i % cols) = v, ++i;
  return m;
}

template <class T>
constexpr T tol() {
  return std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
}

}  // namespace

TEST_CASE_TEMPLATE("arithmetic, broadcasting and reductions", T, float, double) {
  Tape<T> tape;
  const auto a = tape.constant(mat<T>(2, 3, {1, 2, 3, 4, 5, 6}));
  const auto row = tape.constant(mat<T>(1, 3, {10, 20, 30}));
  const auto col = tape.constant(mat<T>(2, 1, {2, 4}));
  CHECK((a + row).value() == mat<T>(2, 3, {11, 22, 33, 14, 25, 36}));
  CHECK((row - a).value() == mat<T>(2, 3, {9, 18, 27, 6, 15, 24}));
  CHECK(mul(a, col).value() == mat<T>(2, 3, {2, 4, 6, 16, 20, 24}));
  CHECK((a / col).value() == mat<T>(2, 3, {0.5, 1, 1.5, 1, 1.25, 1.5}));
  CHECK((a / tape.scalar(2)).value() == mat<T>(2, 3, {0.5, 1, 1.5, 2, 2.5, 3}));
  CHECK((T(1) - a).value() == mat<T>(2, 3, {0, -1, -2, -3, -4, -5}));
  CHECK((a * T(3)).value() == mat<T>(2, 3, {3, 6, 9, 12, 15, 18}));
  CHECK(sum(a).item() == T(21));
  CHECK(mean(a).item() == T(3.5));
  CHECK(sum_rows(a).value() == mat<T>(2, 1, {6, 15}));
  CHECK(mean_rows(a).value() == mat<T>(2, 1, {2, 5}));
  CHECK(sum_cols(a).value() == mat<T>(1, 3, {5, 7, 9}));
  CHECK(mean_cols(a).value() == mat<T>(1, 3, {2.5, 3.5, 4.5}));
  CHECK(square(a).value() == mat<T>(2, 3, {1, 4, 9, 16, 25, 36}));
  CHECK(std::abs(exp(tape.scalar(1)).item() - T(M_E)) < tol<T>() * 3);
  CHECK(std::abs(log(tape.scalar(T(M_E))).item() - T(1)) < tol<T>());
}

TEST_CASE_TEMPLATE("activations", T, float, double) {
  Tape<T> tape;
  const auto x = tape.constant(mat<T>(1, 4, {-2, 0, 0.5, 100}));
  CHECK(relu(x).value() == mat<T>(1, 4, {0, 0, 0.5, 100}));
  const auto s = sigmoid(x).value();
  CHECK(std::abs(s(0, 0) - T(1 / (1 + std::exp(2.0)))) < tol<T>());
  CHECK(s(0, 1) == T(0.5));
  CHECK(s(0, 3) == T(1));
  CHECK(sigmoid(tape.scalar(-1000)).item() == T(0));  // no overflow to NaN
  const auto t = tanh(x).value();
  CHECK(std::abs(t(0, 2) - T(std::tanh(0.5))) < tol<T>());
}

TEST_CASE_TEMPLATE("matmul and linear", T, float, double) {
  Tape<T> tape;
  const auto a = tape.constant(mat<T>(2, 3, {1, 2, 3, 4, 5, 6}));
  const auto b = tape.constant(mat<T>(3, 2, {1, 0, 0, 1, 1, 1}));
  CHECK(matmul(a, b).value() == mat<T>(2, 2, {4, 5, 10, 11}));
  const auto w = tape.constant(mat<T>(2, 3, {1, 0, 1, 0, 1, 0}));  // out x in
  const auto bias = tape.constant(mat<T>(1, 2, {0.5, -1}));
  CHECK(linear(a, w, bias).value() == mat<T>(2, 2, {4.5, 1, 10.5, 4}));
  CHECK(linear(a, w).value() == mat<T>(2, 2, {4, 2, 10, 5}));
}

TEST_CASE_TEMPLATE("softmax and log_softmax, including huge and -inf logits", T, float, double) {
  Tape<T> tape;
  const T inf = std::numeric_limits<T>::infinity();
  const auto x = tape.constant(mat<T>(3, 3, {1, 2, 3, T(1e30), T(-1e30), 0, -inf, 0, -inf}));
  const auto p = softmax(x).value();
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(std::abs(p(0, 0) - T(std::exp(1.0) / z)) < tol<T>());
  CHECK(std::abs(p(0, 2) - T(std::exp(3.0) / z)) < tol<T>());
  CHECK(p.row(1) == mat<T>(1, 3, {1, 0, 0}));
  CHECK(p.row(2) == mat<T>(1, 3, {0, 1, 0}));
  const auto lp = log_softmax(x).value();
  CHECK(std::abs(lp(0, 2) - T(3 - std::log(z))) < tol<T>() * 4);
  CHECK(lp(1, 0) == T(0));
  CHECK(lp(1, 1) == T(-2e30));
  CHECK(lp(2, 0) == -inf);
  CHECK(lp(2, 1) == T(0));
  CHECK(p.allFinite());
}

TEST_CASE_TEMPLATE("reshape is a view of the same row-major elements", T, float, double) {
  Tape<T> tape;
  const auto a = tape.variable(mat<T>(2, 6, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  const auto v = reshape(a, 4, 3);
  CHECK(v.value() == mat<T>(4, 3, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  CHECK(v.value().data() == a.value().data());
  tape.backward(sum(mul(v, tape.constant(mat<T>(4, 3, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})))));
  CHECK(a.grad() == mat<T>(2, 6, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST_CASE_TEMPLATE("binary cross-entropy, clamped and with logits", T, float, double) {
  Tape<T> tape;
  const auto p = tape.constant(mat<T>(1, 4, {0.25, 0.5, 0, 1}));
  const auto t = tape.constant(mat<T>(1, 4, {1, 0, 1, 0}));
  const auto terms = binary_cross_entropy(p, t, Reduction::none).value();
  CHECK(std::abs(terms(0, 0) - T(-std::log(0.25))) < tol<T>());
  CHECK(std::abs(terms(0, 1) - T(-std::log(0.5))) < tol<T>());
  CHECK(terms(0, 2) == T(100));  // log 0 clamped at -100, as PyTorch
  CHECK(terms(0, 3) == T(100));
  CHECK(std::abs(binary_cross_entropy(p, t, Reduction::sum).item() - terms.sum()) < tol<T>() * 100);
  CHECK(std::abs(binary_cross_entropy(p, t).item() - terms.sum() / 4) < tol<T>() * 100);

  const auto x = tape.constant(mat<T>(1, 4, {-3, 0.5, 80, -80}));
  const auto tl = tape.constant(mat<T>(1, 4, {0.2, 1, 0, 1}));
  const auto with_logits = binary_cross_entropy_with_logits(x, tl, Reduction::none).value();
  for (Index j = 0; j < 2; ++j) {
    const double xd = x.value()(0, j), td = tl.value()(0, j);
    const double s = 1 / (1 + std::exp(-xd));
    CHECK(std::abs(with_logits(0, j) - T(-(td * std::log(s) + (1 - td) * std::log(1 - s)))) <
          tol<T>() * 10);
  }
  CHECK(std::abs(with_logits(0, 2) - T(80)) < tol<T>() * 100);  // no overflow at |x| = 80
  CHECK(std::abs(with_logits(0, 3) - T(80)) < tol<T>() * 100);
}

TEST_CASE_TEMPLATE("KL divergences of categoricals", T, float, double) {
  Tape<T> tape;
  const T inf = std::numeric_limits<T>::infinity();
  // Uniform logits have zero divergence from the uniform prior; a near one-hot has ln K.
  const auto x = tape.constant(
      mat<T>(3, 4, {0.3, 0.3, 0.3, 0.3, 50, -50, -50, -50, 0, -inf, std::log(T(2)), -inf}));
  const auto kl = kl_uniform(x, Reduction::none).value();
  CHECK(std::abs(kl(0, 0)) < tol<T>());
  CHECK(std::abs(kl(1, 0) - std::log(T(4))) < tol<T>() * 10);
  // q = (1/3, 0, 2/3, 0): sum q ln q + ln 4.
  const double expected =
      (1.0 / 3) * std::log(1.0 / 3) + (2.0 / 3) * std::log(2.0 / 3) + std::log(4.0);
  CHECK(std::abs(kl(2, 0) - T(expected)) < tol<T>() * 10);
  CHECK(std::abs(kl_uniform(x, Reduction::sum).item() - kl.sum()) < tol<T>() * 10);
  CHECK(std::abs(kl_uniform(x).item() - kl.sum() / 3) < tol<T>() * 10);

  const auto q =
      tape.constant(mat<T>(1, 3, {std::log(T(0.5)), std::log(T(0.25)), std::log(T(0.25))}));
  const auto p =
      tape.constant(mat<T>(1, 3, {std::log(T(0.25)), std::log(T(0.25)), std::log(T(0.5))}));
  const double kl_qp = 0.5 * std::log(2.0) + 0.25 * std::log(0.5);
  CHECK(std::abs(kl_categorical(q, p).item() - T(kl_qp)) < tol<T>() * 10);
  CHECK(std::abs(kl_categorical(q, q).item()) < tol<T>());
}

#if GUMBEL_AVX512
TEST_CASE("the AVX-512 float product agrees with Eigen's at every edge") {
  // Tile edges: rows around the 8/10/12-row tiles, columns around the 32-column tile, depths
  // within and beyond one depth block; every transpose; alpha != 1 onto a nonzero output.
  Generator gen(12);
  const int threads_before = max_threads();
  set_threads(1);
  for (const Index m :
       {Index{1}, Index{6}, Index{9}, Index{12}, Index{13}, Index{100}, Index{203}}) {
    for (const Index n : {Index{1}, Index{16}, Index{17}, Index{32}, Index{33}, Index{300}}) {
      for (const Index k : {Index{1}, Index{31}, Index{784}, Index{1500}}) {
        const Matrix<float> a = gen.normal<float>(m, k);
        const Matrix<float> b = gen.normal<float>(k, n);
        const Matrix<float> at = a.transpose();
        const Matrix<float> bt = b.transpose();
        const Matrix<float> start = gen.normal<float>(m, n);
        for (int variant = 0; variant < 4; ++variant) {
          const auto lhs =
              variant & 1 ? detail::as_transposed<float>(at) : detail::as_operand<float>(a);
          const auto rhs =
              variant & 2 ? detail::as_transposed<float>(bt) : detail::as_operand<float>(b);
          Matrix<float> ours = start;
          Matrix<float> eigen = start;
          detail::gemm_serial<float>(ours.data(), n, lhs, rhs, 0.75f);
          detail::gemm_serial_eigen<float>(eigen.data(), n, lhs, rhs, 0.75f);
          INFO("m = ", m, ", n = ", n, ", k = ", k, ", variant = ", variant);
          // Both sum k products of unit normals: rounding grows like sqrt(k) eps per sum.
          const float bound = 8 * std::sqrt(float(k)) * 6e-8f * float(k);
          CHECK((ours - eigen).cwiseAbs().maxCoeff() <= bound);
          // Rows split between two threads: each element summed in the same order.
          Matrix<float> single = start;
          Matrix<float> split = start;
          detail::gemm_accumulate<float>(MatrixMap<float>(single.data(), m, n), lhs, rhs, 0.75f);
          set_threads(2);
          detail::gemm_accumulate<float>(MatrixMap<float>(split.data(), m, n), lhs, rhs, 0.75f);
          set_threads(1);
          CHECK((split - single).cwiseAbs().maxCoeff() == 0.0f);
          // Assigned over NaN: the bits of adding into zeros, the old contents never read.
          const float nan = std::numeric_limits<float>::quiet_NaN();
          Matrix<float> zeros = Matrix<float>::Zero(m, n);
          Matrix<float> assigned = Matrix<float>::Constant(m, n, nan);
          detail::gemm_accumulate<float>(MatrixMap<float>(zeros.data(), m, n), lhs, rhs, 0.75f);
          detail::gemm_assign<float>(MatrixMap<float>(assigned.data(), m, n), lhs, rhs, 0.75f);
          CHECK(std::memcmp(assigned.data(), zeros.data(), sizeof(float) * std::size_t(m * n)) ==
                0);
          if (variant == 2) {  // a x W^T, the product that can run transposed: the same bits
            const Index kc = detail::avx512::depth_block(k);
            const auto both_ways = [&](auto mr) {
              constexpr int Mr = decltype(mr)::value;
              Matrix<float> packed = start;
              Matrix<float> swapped = start;
              detail::avx512::product<Mr>(packed.data(), n, lhs, rhs, 0.75f, kc);
              detail::avx512::product_swapped<Mr>(swapped.data(), n, lhs, rhs, 0.75f, kc);
              CAPTURE(Mr);
              CHECK(swapped == packed);
              Matrix<float> packed_set = Matrix<float>::Constant(m, n, nan);
              Matrix<float> swapped_set = Matrix<float>::Constant(m, n, nan);
              detail::avx512::product<Mr>(packed_set.data(), n, lhs, rhs, 0.75f, kc, true);
              detail::avx512::product_swapped<Mr>(swapped_set.data(), n, lhs, rhs, 0.75f, kc, true);
              CHECK(packed_set == zeros);
              CHECK(swapped_set == zeros);
            };
            both_ways(std::integral_constant<int, 8>{});
            both_ways(std::integral_constant<int, 10>{});
            both_ways(std::integral_constant<int, 12>{});
          }
        }
      }
    }
  }
  set_threads(threads_before);
}
#endif

TEST_CASE_TEMPLATE("products agree with Eigen's for every transpose, on 1 and 2 threads", T, float,
                   double) {
  Generator gen(11);
  // Small enough for the coefficient-wise path, and large enough to pack and to split rows.
  for (const Index n : {Index{3}, Index{37}, Index{300}}) {
    const Matrix<T> a = gen.template normal<T>(n, n + 5);
    const Matrix<T> b = gen.template normal<T>(n + 5, n + 2);
    const Matrix<T> at = a.transpose();
    const Matrix<T> bt = b.transpose();
    const Matrix<T> start = gen.template normal<T>(n, n + 2);
    const Matrix<T> expected = start + T(0.5) * (a * b);
    for (const int threads : {1, 2}) {
      set_threads(threads);
      for (int variant = 0; variant < 4; ++variant) {
        Matrix<T> out = start;
        const bool ta = variant & 1;
        const bool tb = variant & 2;
        const auto lhs = ta ? detail::as_transposed<T>(at) : detail::as_operand<T>(a);
        const auto rhs = tb ? detail::as_transposed<T>(bt) : detail::as_operand<T>(b);
        detail::gemm_accumulate<T>(MatrixMap<T>(out.data(), out.rows(), out.cols()), lhs, rhs,
                                   T(0.5));
        INFO("n = ", n, ", threads = ", threads, ", variant = ", variant);
        CHECK((out - expected).cwiseAbs().maxCoeff() <=
              tol<T>() * T(n) * (T(1) + expected.cwiseAbs().maxCoeff()));
        // Assigned over NaN: the product alone, whatever the output held.
        Matrix<T> assigned = Matrix<T>::Constant(n, n + 2, std::numeric_limits<T>::quiet_NaN());
        detail::gemm_assign<T>(MatrixMap<T>(assigned.data(), n, n + 2), lhs, rhs, T(0.5));
        CHECK((assigned - (expected - start)).cwiseAbs().maxCoeff() <=
              tol<T>() * T(n) * (T(1) + expected.cwiseAbs().maxCoeff()));
      }
    }
  }
  set_threads(max_threads());
  // An empty sum (depth 0) assigns zeros and adds nothing.
  const Matrix<T> empty(4, 0);
  const Matrix<T> empty_t(0, 5);
  Matrix<T> out = Matrix<T>::Constant(4, 5, std::numeric_limits<T>::quiet_NaN());
  detail::gemm_assign<T>(MatrixMap<T>(out.data(), 4, 5), detail::as_operand<T>(empty),
                         detail::as_operand<T>(empty_t));
  CHECK(out == Matrix<T>::Zero(4, 5));
  out.setOnes();
  detail::gemm_accumulate<T>(MatrixMap<T>(out.data(), 4, 5), detail::as_operand<T>(empty),
                             detail::as_operand<T>(empty_t));
  CHECK(out == Matrix<T>::Ones(4, 5));
}

TEST_CASE_TEMPLATE("elementwise ops and whole sums share large operands among threads, same bits",
                   T, float, double) {
  // 301 x 200 elements, above the size at which rows are shared; 301 rows split unevenly.
  Generator gen(5);
  const Matrix<T> a0 = gen.template normal<T>(301, 200);
  const Matrix<T> b0 = gen.template normal<T>(301, 200);
  const Matrix<T> bias0 = gen.template normal<T>(1, 200);
  struct Result {
    Matrix<T> y, da, db, dbias;
  };
  const auto run = [&](int threads) {
    set_threads(threads);
    Tape<T> tape;
    Parameter<T> a(a0), b(b0), bias(bias0);
    const auto av = tape.parameter(a);
    const auto bv = tape.parameter(b);
    // a used twice (the second contribution adds to the first), a broadcast row, a unary op
    // and both whole sums.
    const auto y = exp(mul(av, av) * T(0.1) + (bv - tape.parameter(bias))) / (abs(bv) + T(1));
    tape.backward(sum(y) + mean(mul(y, bv)));
    return Result{y.value(), a.grad, b.grad, bias.grad};
  };
  const Result one = run(1);
  const Result two = run(2);
  set_threads(max_threads());
  CHECK(one.y == two.y);
  CHECK(one.da == two.da);
  CHECK(one.db == two.db);
  CHECK(one.dbias == two.dbias);
  // And the values themselves, from the formulas: y = e / (|b| + 1), e = exp(0.1 a^2 + b - c),
  // loss = sum(y) + mean(y b), dL/dy = 1 + b / n.
  const T n = T(a0.size());
  const auto c = bias0.replicate(301, 1).array();
  const auto e = (T(0.1) * a0.array().square() + b0.array() - c).exp();
  const Matrix<T> y = (e / (b0.array().abs() + T(1))).matrix();
  const auto dy = T(1) + b0.array() / n;
  const Matrix<T> da = (dy * y.array() * T(0.2) * a0.array()).matrix();
  const Matrix<T> dbias = -(dy * y.array()).matrix().colwise().sum();
  const T scale = T(1) + y.cwiseAbs().maxCoeff();
  CHECK((one.y - y).cwiseAbs().maxCoeff() <= tol<T>() * scale);
  CHECK((one.da - da).cwiseAbs().maxCoeff() <= tol<T>() * scale);
  CHECK((one.dbias - dbias).cwiseAbs().maxCoeff() <= T(301) * tol<T>() * scale);
}

namespace {

/// How many representable numbers lie between two positive finite values of T.
template <class T>
std::int64_t ulps_apart(T a, T b) {
  using Bits = std::conditional_t<std::is_same_v<T, float>, std::int32_t, std::int64_t>;
  Bits ia = 0, ib = 0;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  return std::abs(std::int64_t(ia) - std::int64_t(ib));
}

}  // namespace

TEST_CASE_TEMPLATE("sigmoid is within 4 ulp of the correctly rounded value over the whole range", T,
                   float, double) {
  // A dense grid from where the result is subnormal to where it rounds to 1 (2^21 points),
  // through the op, so both Eigen's packets and its scalar tails are checked.
  const T lo = std::is_same_v<T, float> ? T(-104) : T(-745);
  const T hi = std::is_same_v<T, float> ? T(18) : T(38);
  const Index n = Index(1) << 21;
  Matrix<T> m(1, n + 1);
  for (Index i = 0; i <= n; ++i) m(0, i) = T(lo + (long double)(hi - lo) * i / n);
  Tape<T> tape;
  const Matrix<T> y = sigmoid(tape.constant(m)).value();
  std::int64_t worst = 0;
  T worst_x = 0;
  for (Index i = 0; i < m.cols(); ++i) {
    const long double x = m(0, i);
    const T exact = T(1.0L / (1.0L + std::exp(-x)));
    const std::int64_t apart = ulps_apart(y(0, i), exact);
    if (apart > worst) worst = apart, worst_x = m(0, i);
  }
  INFO("the worst of " << m.cols() << " points is " << worst << " ulp, at x = " << worst_x);
  CHECK(worst <= 4);
}
