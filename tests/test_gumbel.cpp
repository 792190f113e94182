// The Gumbel family: noise statistics, sampling frequencies, straight-through, log space,
// Concrete density, top-k, Gumbel-Rao, masking, robustness and reproducibility.
#include "test_util.hpp"

#include <cmath>
#include <cstring>
#include <limits>

using namespace gumbel;
using namespace test;

namespace {

constexpr double kEulerGamma = 0.57721566490153286;
constexpr double kPi = 3.14159265358979324;

/// Upper-tail z-score of a chi-square statistic by the Wilson-Hilferty cube-root transform;
/// z < 3.72 is a p-value above 1e-4.
double chi_square_z(double statistic, double dof) {
  const double v = 2.0 / (9.0 * dof);
  return (std::cbrt(statistic / dof) - (1.0 - v)) / std::sqrt(v);
}

/// Pearson chi-square of observed counts against probabilities.
double chi_square(const Eigen::ArrayXd& counts, const Eigen::ArrayXd& probs) {
  const double n = counts.sum();
  return ((counts - n * probs).square() / (n * probs)).sum();
}

Eigen::ArrayXd softmax_of(const Eigen::ArrayXd& logits) {
  const Eigen::ArrayXd e = (logits - logits.maxCoeff()).exp();
  return e / e.sum();
}

}  // namespace

TEST_CASE_TEMPLATE("Gumbel noise has mean gamma, variance pi^2/6 and the Gumbel CDF", T, float,
                   double) {
  const Index n = 1000000;
  Generator gen(2024);
  const Matrix<T> g = sample_gumbel<T>(gen, 1000, n / 1000);
  const Eigen::ArrayXd x = g.template cast<double>().reshaped().array();
  REQUIRE(x.allFinite());
  const double var = kPi * kPi / 6;
  const double mean = x.mean();
  const double sample_var = (x - mean).square().sum() / double(n - 1);
  CHECK(std::abs(mean - kEulerGamma) < 5 * std::sqrt(var / n));
  // The Gumbel's fourth central moment is 5.4 var^2, so Var(s^2) ~ 4.4 var^2 / n.
  CHECK(std::abs(sample_var - var) < 5 * std::sqrt(4.4 / n) * var);

  // Kolmogorov-Smirnov on the first 100000 values: P(D > d) ~ 2 exp(-2 n d^2) = 1e-4.
  std::vector<double> sorted(x.data(), x.data() + 100000);
  std::sort(sorted.begin(), sorted.end());
  double d = 0;
  const double m = double(sorted.size());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const double cdf = std::exp(-std::exp(-sorted[i]));
    d = std::max({d, std::abs(cdf - double(i) / m), std::abs(cdf - double(i + 1) / m)});
  }
  CHECK(d < std::sqrt(std::log(2e4) / (2 * m)));
}

TEST_CASE("gumbel_max frequencies match softmax(logits): chi-square, K = 10 and K = 1000") {
  for (const Index k : {Index(10), Index(1000)}) {
    CAPTURE(k);
    const Md logits = uniform(1, k, 17 + std::uint64_t(k), -1.0, 1.0);
    const Eigen::ArrayXd probs = softmax_of(logits.row(0).transpose().array());
    Eigen::ArrayXd counts = Eigen::ArrayXd::Zero(k);
    Generator gen(99);
    const Index batch = 5000;
    const Index batches = k == 10 ? 20 : 40;  // >= 50 expected per class at K = 1000
    const Md tiled = logits.replicate(batch, 1);
    for (Index b = 0; b < batches; ++b) {
      const auto idx = gumbel_max(tiled, gen);
      for (Index i = 0; i < idx.size(); ++i) counts(idx(i)) += 1;
    }
    const double z = chi_square_z(chi_square(counts, probs), double(k - 1));
    CAPTURE(z);
    CHECK(z < 3.72);
  }
}

TEST_CASE_TEMPLATE("hard samples are the exact one-hot of the soft argmax, with the soft gradient",
                   T, float, double) {
  Tape<T> tape;
  Generator g1(5), g2(5);
  const auto logits = tape.variable(Generator(1).normal<T>(64, 7));
  const auto soft = gumbel_softmax(logits, T(0.5), g1);
  const auto hard = gumbel_softmax(logits, T(0.5), g2, true);
  for (Index i = 0; i < 64; ++i) {
    Index arg = 0;
    soft.value().row(i).maxCoeff(&arg);
    CHECK(hard.value().row(i).sum() == T(1));
    CHECK(hard.value()(i, arg) == T(1));
  }
  const Matrix<T> w = Generator(3).normal<T>(64, 7);
  tape.backward(sum(mul(soft, tape.constant(w))));
  const Matrix<T> soft_grad = logits.grad();
  logits.grad_mut().setZero();
  tape.backward(sum(mul(hard, tape.constant(w))));
  CHECK(logits.grad() == soft_grad);
}

TEST_CASE_TEMPLATE("a hard sample without gradient is the same one-hot, and checks its rows", T,
                   float, double) {
  // Without a backward the straight-through node skips the soft sample; its value and the
  // generator's position must not change. Short rows (one transpose per 16) and long ones.
  for (const Index k : {Index{7}, Index{16}, Index{40}, Index{1000}}) {
    CAPTURE(k);
    Matrix<T> l = Generator(k).normal<T>(70, k);
    l(9, k / 2) = -std::numeric_limits<T>::infinity();
    Tape<T> tape;
    Generator with_grad(5), without_grad(5), disabled(5);
    const auto trained = gumbel_softmax(tape.variable(l), T(0.5), with_grad, true);
    const auto fixed = gumbel_softmax(tape.constant(l), T(0.5), without_grad, true);
    tape.set_grad_enabled(false);
    const auto no_grad = gumbel_softmax(tape.variable(l), T(0.5), disabled, true);
    tape.set_grad_enabled(true);
    CHECK_FALSE(fixed.requires_grad());
    CHECK_FALSE(no_grad.requires_grad());
    CHECK(fixed.value() == trained.value());
    CHECK(no_grad.value() == trained.value());
    CHECK((trained.value().rowwise().sum().array() == T(1)).all());
    CHECK(with_grad.uniform<T>(1, 1)(0, 0) == without_grad.uniform<T>(1, 1)(0, 0));
    l.row(3).setConstant(std::numeric_limits<T>::quiet_NaN());
    const std::string msg = message_of<ValueError>(
        [&] { gumbel_softmax(tape.constant(l), T(0.5), without_grad, true); });
    CHECK(msg.find("gumbel::gumbel_softmax(hard): row 3") != std::string::npos);
  }
}

TEST_CASE("Gumbel-Softmax gradients against finite differences") {
  for (const Shape& s : kShapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    const Md l = normal(s.rows, s.cols, 8);
    require_gradients(
        [](Tape<double>&, const Inputs& v) {
          Generator gen(21);
          return gumbel_softmax(v[0], 0.7, gen);
        },
        {l});
    require_gradients(
        [](Tape<double>&, const Inputs& v) {
          Generator gen(22);
          return gumbel_softmax_log(v[0], 0.3, gen);
        },
        {l});
    // A learnable temperature: gradients reach tau too.
    require_gradients(
        [](Tape<double>&, const Inputs& v) {
          Generator gen(23);
          return gumbel_softmax(v[0], v[1], gen);
        },
        {l, Md::Constant(1, 1, 0.8)});
    require_gradients(
        [](Tape<double>&, const Inputs& v) {
          Generator gen(24);
          return gumbel_softmax_log(v[0], v[1], gen);
        },
        {l, Md::Constant(1, 1, 1.3)});
  }
}

TEST_CASE("Concrete log-density: closed form, gradients, and it integrates to 1 for K = 2") {
  const Index k = 4;
  const Md logits = normal(3, k, 31);
  Tape<double> tape;
  Generator gen(32);
  const auto y = gumbel_softmax(tape.constant(logits), 0.6, gen);
  const auto lp = concrete_log_prob(y, tape.constant(logits), 0.6).value();
  for (Index i = 0; i < 3; ++i) {
    // ln (K-1)! + (K-1) ln tau + sum_k (l_k - (tau + 1) ln y_k) - K ln sum_k e^l_k y_k^-tau
    const double tau = 0.6;
    double acc = std::lgamma(double(k)) + (k - 1) * std::log(tau);
    double denom = 0;
    for (Index j = 0; j < k; ++j) {
      acc += logits(i, j) - (tau + 1) * std::log(y.value()(i, j));
      denom += std::exp(logits(i, j)) * std::pow(y.value()(i, j), -tau);
    }
    acc -= double(k) * std::log(denom);
    CHECK(std::abs(lp(i, 0) - acc) < 1e-10 * std::max(1.0, std::abs(acc)));
  }

  const Md sample = uniform(3, k, 33, 0.1, 1.0);
  const Md simplex = (sample.array().colwise() / sample.rowwise().sum().array()).matrix();
  require_gradients(
      [](Tape<double>&, const Inputs& v) { return concrete_log_prob(v[0], v[1], v[2]); },
      {simplex, logits, Md::Constant(1, 1, 0.7)});
  require_gradients(
      [](Tape<double>&, const Inputs& v) { return exp_concrete_log_prob(v[0], v[1], v[2]); },
      {simplex.array().log().matrix(), logits, Md::Constant(1, 1, 0.4)});

  // K = 2: integrate p(t, 1 - t) over t in (0, 1). The substitution t = u^2 / 2 (and its mirror)
  // removes the t^(tau - 1) endpoint singularity; composite Simpson on each half.
  for (const double tau : {0.5, 1.0, 2.5}) {
    CAPTURE(tau);
    const Md l2{{0.3, -0.4}};
    Tape<double> tp;
    const auto density = [&](double t, bool mirror) {  // at (t, 1 - t), or (1 - t, t)
      tp.clear();
      const Md point = mirror ? Md{{1 - t, t}} : Md{{t, 1 - t}};
      return std::exp(concrete_log_prob(tp.constant(point), tp.constant(l2), tau).item());
    };
    const int n = 4000;
    double total = 0;
    for (const bool mirror : {false, true}) {
      double acc = 0;
      for (int j = 0; j <= n; ++j) {
        // u in [0, 1], t = u^2 / 2, dt = u du; at u = 0 the integrand is a finite limit,
        // taken at u = 1e-9.
        const double u = std::max(double(j) / n, 1e-9);
        const double t = 0.5 * u * u;
        const double f = u * density(t, mirror);
        acc += f * (j == 0 || j == n ? 1 : (j % 2 ? 4 : 2));
      }
      total += acc / (3.0 * n);
    }
    CHECK(std::abs(total - 1.0) < 1e-6);
  }
}

TEST_CASE("Gumbel-top-k inclusion frequencies match the exact probabilities") {
  const Md logits{{1.0, 0.0, -0.5, 0.7}};
  const Eigen::ArrayXd p = softmax_of(logits.row(0).transpose().array());
  // P(i among the first two) = p_i + sum_{j != i} p_j p_i / (1 - p_j).
  Eigen::ArrayXd exact(4);
  for (Index i = 0; i < 4; ++i) {
    exact(i) = p(i);
    for (Index j = 0; j < 4; ++j) {
      if (j != i) exact(i) += p(j) * p(i) / (1 - p(j));
    }
  }
  Generator gen(41);
  const Index n = 200000;
  const auto top = gumbel_top_k(logits.replicate(n, 1), 2, gen);
  Eigen::ArrayXd counts = Eigen::ArrayXd::Zero(4);
  for (Index i = 0; i < n; ++i) {
    CHECK_FALSE(top(i, 0) == top(i, 1));
    counts(top(i, 0)) += 1;
    counts(top(i, 1)) += 1;
  }
  for (Index i = 0; i < 4; ++i) {
    const double freq = counts(i) / double(n);
    CHECK(std::abs(freq - exact(i)) < 5 * std::sqrt(exact(i) * (1 - exact(i)) / double(n)));
  }
  CHECK_THROWS_AS(gumbel_top_k(Md{{0.0, -INFINITY, -INFINITY}}, 2, gen), ValueError);
}

TEST_CASE("Gumbel-Rao: ST's forward value, ST itself with one sample, same mean, less variance") {
  const Md logits{{0.5, -0.3, 1.2, 0.0, -1.0}};
  const Md w{{1.0, -2.0, 0.5, 3.0, -1.0}};  // loss = <w, one-hot sample>
  Tape<double> tape;  // one tape, cleared per draw, as a training loop uses it
  const auto gradient = [&](bool rao, Index samples, std::uint64_t seed, Md* value) {
    tape.clear();
    Generator gen(seed);
    const auto l = tape.variable(logits);
    const auto y = rao ? gumbel_rao(l, 0.5, gen, samples) : gumbel_softmax(l, 0.5, gen, true);
    if (value != nullptr) *value = y.value();
    tape.backward(sum(mul(y, tape.constant(w))));
    return Md(l.grad());
  };
  Md st_value, rao_value;
  CHECK(gradient(true, 1, 7, &rao_value) == gradient(false, 1, 7, &st_value));
  CHECK(rao_value == st_value);
  gradient(true, 16, 7, &rao_value);
  CHECK(rao_value == st_value);

  const int n = 20000;
  Eigen::ArrayXXd st(n, 5), gr(n, 5);
  for (int t = 0; t < n; ++t) {
    st.row(t) = gradient(false, 1, 1000 + std::uint64_t(t), nullptr).row(0).array();
    gr.row(t) = gradient(true, 16, 1000 + std::uint64_t(t), nullptr).row(0).array();
  }
  const Eigen::ArrayXd st_mean = st.colwise().mean().transpose();
  const Eigen::ArrayXd gr_mean = gr.colwise().mean().transpose();
  const Eigen::ArrayXd st_var =
      (st.rowwise() - st_mean.transpose()).square().colwise().sum() / (n - 1);
  const Eigen::ArrayXd gr_var =
      (gr.rowwise() - gr_mean.transpose()).square().colwise().sum() / (n - 1);
  // Means agree within 5 standard errors of their difference (conservatively, as independent).
  for (Index j = 0; j < 5; ++j) {
    CHECK(std::abs(st_mean(j) - gr_mean(j)) < 5 * std::sqrt((st_var(j) + gr_var(j)) / n));
  }
  const double ratio = st_var.sum() / gr_var.sum();
  MESSAGE("Gumbel-Rao (M = 16) variance reduction over straight-through: " << ratio << "x");
  CHECK(ratio > 1.5);
}

TEST_CASE_TEMPLATE(
    "masked classes are never sampled and give no NaN, an all-masked row is an error", T, float,
    double) {
  const T inf = std::numeric_limits<T>::infinity();
  Matrix<T> l = Generator(2).normal<T>(500, 6);
  l.col(1).setConstant(-inf);
  l(7, 4) = -inf;
  Tape<T> tape;
  Generator gen(3);
  const auto v = tape.variable(l);
  for (const bool hard : {false, true}) {
    const auto y = gumbel_softmax(v, T(0.5), gen, hard);
    CHECK(y.value().col(1).isZero());
    CHECK(y.value()(7, 4) == T(0));
    tape.backward(sum(mul(y, tape.constant(Generator(4).normal<T>(500, 6)))));
    CHECK(v.grad().allFinite());
    CHECK(v.grad().col(1).isZero());
  }
  const auto idx = gumbel_max(l, gen);
  CHECK((idx.array() != 1).all());
  l.row(3).setConstant(-inf);
  const std::string msg =
      message_of<ValueError>([&] { gumbel_softmax(tape.constant(l), T(1), gen); });
  CHECK(msg.find("gumbel::gumbel_softmax: row 3") != std::string::npos);
  CHECK_THROWS_AS(gumbel_max(l, gen), ValueError);
  CHECK_THROWS_AS(gumbel_rao(tape.constant(l), T(1), gen), ValueError);
}

TEST_CASE_TEMPLATE("no NaN or inf for logits up to 1e30, masks, and tau from 1e-3 to 1e3", T, float,
                   double) {
  const T inf = std::numeric_limits<T>::infinity();
  Matrix<T> l(4, 5);
  l << T(1e30), T(-1e30), T(0), T(3), -inf,              //
      T(-1e30), T(-1e30), T(-1e30), T(-1e30), T(-1e30),  //
      T(1e30), T(1e30), T(-2), -inf, T(1),               //
      T(0.1), T(0.2), T(0.3), T(0.4), T(0.5);
  for (const T tau : {T(1e-3), T(1), T(1e3)}) {
    CAPTURE(tau);
    Tape<T> tape;
    Generator gen(8);
    const auto v = tape.variable(l);
    const auto t = tape.variable(Matrix<T>::Constant(1, 1, tau));
    const Matrix<T> w = Generator(9).normal<T>(4, 5);
    const std::vector<Var<T>> outputs = {gumbel_softmax(v, t, gen), gumbel_softmax(v, t, gen, true),
                                         gumbel_rao(v, tau, gen, 4)};
    for (const auto& y : outputs) {
      CHECK(y.value().allFinite());
      tape.backward(sum(mul(y, tape.constant(w))));
      CHECK(v.grad().allFinite());
      CHECK(t.grad().allFinite());
    }
    const auto ls = gumbel_softmax_log(v, t, gen);
    CHECK((ls.value().array() < inf).all());
    CHECK_FALSE(ls.value().hasNaN());
    // Weight only the unmasked outputs of the log-sample.
    const Matrix<T> finite_w = (l.array() > -inf).select(w, T(0));
    tape.backward(sum(mul(exp(ls), tape.constant(finite_w))));
    CHECK(v.grad().allFinite());
    CHECK(t.grad().allFinite());
  }
}

TEST_CASE("sampling is reproducible and identical for 1 and 2 threads") {
  const Md logits = normal(3000, 17, 51);
  const Matrix<float> lf = logits.cast<float>();
  const auto run = [&](int threads) {
    set_threads(threads);
    Tape<float> tape;
    Generator gen(77);
    const auto v = tape.constant(lf);
    Matrix<float> out(3000, 17 * 4 + 1);
    out.leftCols(17) = gumbel_softmax(v, 0.5f, gen).value();
    out.middleCols(17, 17) = gumbel_softmax(v, 0.5f, gen, true).value();
    out.middleCols(34, 17) = gumbel_softmax_log(v, 0.5f, gen).value();
    out.middleCols(51, 17) = sample_gumbel<float>(gen, 3000, 17);
    out.col(68) = gumbel_max(lf, gen).cast<float>();
    return out;
  };
  const Matrix<float> one = run(1);
  const Matrix<float> two = run(2);
  set_threads(max_threads());
  CHECK(one == two);
  CHECK(one == run(1));
  Generator other(78);
  Tape<float> tape;
  CHECK(gumbel_softmax(tape.constant(lf), 0.5f, other).value() != one.leftCols(17));
}

TEST_CASE("temperature schedules") {
  const ExponentialDecay decay(1.0, 0.5, 3e-5);
  CHECK(decay(0) == 1.0);
  CHECK(std::abs(decay(10000) - std::exp(-0.3)) < 1e-15);
  CHECK(decay(1000000) == 0.5);
  // Updated every 1000 steps: constant within each interval, equal to the plain decay at its start.
  const ExponentialDecay stepped(1.0, 0.5, 1e-4, 1000);
  CHECK(stepped(999) == 1.0);
  CHECK(stepped(1000) == doctest::Approx(std::exp(-0.1)).epsilon(1e-15));
  CHECK(stepped(1999) == doctest::Approx(std::exp(-0.1)).epsilon(1e-15));
  CHECK(stepped(2500) == ExponentialDecay(1.0, 0.5, 1e-4)(2000));
  CHECK(message_of<ValueError>([] { ExponentialDecay(1.0, 0.5, 1e-4, 0); }).find("interval = 0") !=
        std::string::npos);
  CHECK(ConstantTemperature(0.7)(123) == 0.7);

  // The articles' loop, run literally: after batch b with b % 100 == 1, tau = max(...).
  const EpochRestartDecay articles(1.0, 0.5, 3e-5);
  double tau = 1.0;
  for (std::int64_t b = 0; b < 600; ++b) {
    CHECK(articles(b) == doctest::Approx(tau).epsilon(1e-15));
    if (b % 100 == 1) tau = std::max(0.5, tau * std::exp(-3e-5 * double(b)));
  }
  CHECK_THROWS_AS(ExponentialDecay(0.0, 0.5, 1e-3), ValueError);
  CHECK_THROWS_AS(ExponentialDecay(1.0, 2.0, 1e-3), ValueError);
  CHECK_THROWS_AS(ExponentialDecay(1.0, 0.5, -1.0), ValueError);
  Tape<float> tape;
  Generator gen(1);
  const std::string msg = message_of<ValueError>(
      [&] { gumbel_softmax(tape.constant(Matrix<float>::Zero(2, 3)), 0.0f, gen); });
  CHECK(msg.find("tau = 0") != std::string::npos);
}

TEST_CASE("the sampler's backward shares rows among threads: the same bits as one thread") {
  // Short rows (K = 10, the row kernel) and long rows (K = 1000, row by row), both above the
  // size at which rows are shared, soft and hard, assigning and adding into the gradient.
  for (const Index k : {Index{10}, Index{1000}}) {
    const Index rows = k == 10 ? 4001 : 45;
    const Matrix<float> l0 = normal(rows, k, 61).cast<float>();
    const Matrix<float> w = normal(rows, k, 62).cast<float>();
    for (const bool hard : {false, true}) {
      const auto run = [&](int threads, Matrix<float>* sample) {
        set_threads(threads);
        Tape<float> tape;
        Generator gen(5);
        Parameter<float> logits(l0);
        const auto v = tape.parameter(logits);
        const auto y = gumbel_softmax(v, 0.7f, gen, hard);
        // Two uses of the logits: the sampler's contribution is added to the first.
        tape.backward(sum(mul(y, tape.constant(w))) + sum(v) * 0.5f);
        // The soft sample behind y (hard: recomputed from the same noise).
        Generator again(5);
        *sample = gumbel_softmax(tape.constant(l0), 0.7f, again).value();
        return Matrix<float>(logits.grad);
      };
      Matrix<float> s1, s2;
      const Matrix<float> one = run(1, &s1);
      const Matrix<float> two = run(2, &s2);
      set_threads(max_threads());
      INFO("K = ", k, ", hard = ", hard);
      CHECK(std::memcmp(one.data(), two.data(), sizeof(float) * std::size_t(one.size())) == 0);
      // d/dl of sum(y w) + sum(l) / 2: y (w - <w, y>) / tau per row, plus 1/2.
      const Md s = s1.cast<double>();
      const Md wd = w.cast<double>();
      const Md dot = (s.array() * wd.array()).rowwise().sum().matrix();
      const Md expected = (s.array() * (wd.colwise() - dot.col(0)).array() / 0.7 + 0.5).matrix();
      CHECK((one.cast<double>() - expected).cwiseAbs().maxCoeff() <= 1e-5);
    }
  }
}
