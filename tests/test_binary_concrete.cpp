// Binary Concrete (relaxed Bernoulli): its distribution, its gradients and its log-density.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "test_util.hpp"

using namespace gumbel;
using test::logistic;
using test::Md;
using test::message_of;

TEST_CASE_TEMPLATE("binary_concrete: hard samples are Bernoulli(sigmoid(l)), at any logit", T,
                   float, double) {
  // One column per logit, many rows of draws: the frequency of 1 in each column.
  const std::vector<double> logits = {-3.0, -0.4, 0.0, 1.2, 5.0, 15.9, -16.5, 20.0, 1e30, -1e30};
  const Index draws = 100000;
  Matrix<T> l(draws, Index(logits.size()));
  for (Index j = 0; j < l.cols(); ++j) l.col(j).setConstant(T(logits[std::size_t(j)]));
  l(0, 0) = -INFINITY;  // masked entries are certain outcomes
  l(0, 1) = INFINITY;
  Tape<T> tape;
  Generator gen(2024);
  const Var<T> y = binary_concrete(tape.constant(l), T(0.5), gen, true);
  CHECK((y.value().array() == T(0) || y.value().array() == T(1)).all());
  CHECK(y.value()(0, 0) == T(0));
  CHECK(y.value()(0, 1) == T(1));
  for (Index j = 0; j < l.cols(); ++j) {
    const double p = logistic(logits[std::size_t(j)]);
    const double freq = double(y.value().col(j).bottomRows(draws - 1).sum()) / double(draws - 1);
    const double se = std::sqrt(std::max(p * (1 - p), 1e-12) / double(draws - 1));
    INFO("logit " << logits[std::size_t(j)] << ": frequency " << freq << ", p " << p);
    CHECK(std::abs(freq - p) <= 5 * se + 1e-12);
  }
}

TEST_CASE_TEMPLATE("binary_concrete: soft samples follow the Binary Concrete CDF", T, float,
                   double) {
  // P(Y <= y) = sigmoid(tau logit(y) - l) for Y = sigmoid((l + L) / tau).
  const double logit_value = 0.7, tau = 0.6;
  const Index draws = 200000;
  Tape<T> tape;
  Generator gen(9);
  const Var<T> y =
      binary_concrete(tape.constant(Matrix<T>::Constant(draws, 1, T(logit_value))), T(tau), gen);
  CHECK((y.value().array() >= T(0) && y.value().array() <= T(1)).all());
  for (const double q : {0.05, 0.3, 0.5, 0.8, 0.97}) {
    const double cdf = logistic(tau * std::log(q / (1 - q)) - logit_value);
    const double freq = double((y.value().array() <= T(q)).count()) / double(draws);
    const double se = std::sqrt(cdf * (1 - cdf) / double(draws));
    INFO("y <= " << q << ": frequency " << freq << ", CDF " << cdf);
    CHECK(std::abs(freq - cdf) < 5 * se);
  }
  // The hard value is the soft sample rounded at 1/2, for the same noise.
  Generator again(9);
  const Var<T> hard = binary_concrete(tape.constant(Matrix<T>::Constant(draws, 1, T(logit_value))),
                                      T(tau), again, true);
  CHECK(((y.value().array() > T(0.5)) == (hard.value().array() == T(1))).all());
}

TEST_CASE("binary_concrete: gradients in the logits and a learnable temperature") {
  const Md l = test::normal(5, 4, 31, 2.0);
  const auto sample = [](bool hard) {
    return [hard](Tape<double>&, const test::Inputs& v) {
      Generator gen(77);  // the same noise for every evaluation
      return binary_concrete(v[0], v[1], gen, hard);
    };
  };
  test::require_gradients(sample(false), {l, Md::Constant(1, 1, 0.7)});
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) {
        Generator gen(78);
        return binary_concrete(v[0], 0.3, gen);
      },
      {l});
  // Straight-through: the hard node's gradients are the soft sample's, bit for bit.
  for (const bool tau_learned : {false, true}) {
    Md grad_l[2], grad_tau[2];
    for (int hard = 0; hard < 2; ++hard) {
      Tape<double> tape;
      const Var<double> lv = tape.variable(l);
      const Var<double> tv = tape.variable(Md::Constant(1, 1, 0.45));
      Generator gen(5);
      const Var<double> y = tau_learned ? binary_concrete(lv, tv, gen, hard == 1)
                                        : binary_concrete(lv, 0.45, gen, hard == 1);
      const Var<double> loss = sum(mul(y, tape.constant(test::normal(5, 4, 6))));
      tape.backward(loss);
      grad_l[hard] = lv.grad();
      grad_tau[hard] = tv.grad();
    }
    CHECK(grad_l[0] == grad_l[1]);
    CHECK(grad_tau[0] == grad_tau[1]);
    CHECK(grad_l[0].norm() > 0);
  }
  // Saturated entries (masked logits) get a zero gradient, not NaN, also for tau.
  Tape<double> tape;
  Md masked = l;
  masked(0, 0) = -INFINITY;
  masked(1, 1) = INFINITY;
  const Var<double> lv = tape.variable(masked);
  const Var<double> tv = tape.variable(Md::Constant(1, 1, 0.5));
  Generator gen(3);
  tape.backward(sum(binary_concrete(lv, tv, gen)));
  CHECK(lv.grad().allFinite());
  CHECK(lv.grad()(0, 0) == 0.0);
  CHECK(lv.grad()(1, 1) == 0.0);
  CHECK(std::isfinite(tv.grad()(0, 0)));
}

TEST_CASE(
    "binary_concrete_log_prob: a density (integrates to 1) with finite-difference gradients") {
  // The integral over (0, 1) with y = sigmoid(x): int p(y) dy = int p(sigmoid(x)) y (1 - y) dx,
  // taken over x < 0 for l and (p_l(y) = p_-l(1 - y)) for -l, where y is far from 1 and
  // represented exactly enough.
  for (const double l : {-2.0, 0.3, 4.0}) {
    for (const double tau : {0.2, 0.7, 1.5}) {
      const Index n = 40001;
      const double lo = -400.0, h = -lo / double(n - 1);
      Md y(1, n);
      for (Index i = 0; i < n; ++i) y(0, i) = 1.0 / (1.0 + std::exp(-(lo + h * double(i))));
      double integral = 0, mean = 0;
      const auto trapezoid = [h](const Eigen::ArrayXXd& f) {
        return h * (f.sum() - 0.5 * (f(0, 0) + f(0, f.cols() - 1)));
      };
      for (const double sign : {1.0, -1.0}) {
        Tape<double> tape;
        const Var<double> lp = binary_concrete_log_prob(tape.constant(Md::Constant(1, n, sign * l)),
                                                        tau, tape.constant(y));
        const Eigen::ArrayXXd f = lp.value().array().exp() * y.array() * (1.0 - y.array());
        integral += trapezoid(f);
        const Eigen::ArrayXXd value =
            sign > 0 ? Eigen::ArrayXXd(y.array()) : Eigen::ArrayXXd(1.0 - y.array());
        mean += trapezoid(f * value);
      }
      INFO("l " << l << " tau " << tau << ": integral " << integral << ", mean " << mean);
      CHECK(integral == doctest::Approx(1.0).epsilon(1e-6));
      // The density's mean is the sampler's: the two agree within 5 standard errors.
      const Index draws = 200000;
      Tape<double> tape;
      Generator gen(std::uint64_t(100 * tau + l + 50));
      const Md samples =
          binary_concrete(tape.constant(Md::Constant(draws, 1, l)), tau, gen).value();
      const double sample_mean = samples.mean();
      const double sd = std::sqrt((samples.array() - sample_mean).square().mean());
      CHECK(std::abs(sample_mean - mean) < 5 * sd / std::sqrt(double(draws)));
    }
  }
  const Md l = test::normal(3, 4, 12, 1.5);
  const Md y = test::uniform(3, 4, 13, 0.05, 0.95);
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) {
        return binary_concrete_log_prob(v[0], v[1], v[2]);
      },
      {l, Md::Constant(1, 1, 0.8), y});
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) {
        return binary_concrete_log_prob(v[0], 0.4, v[1]);
      },
      {l, y});
}

TEST_CASE("binary_concrete_log_prob equals PyTorch's RelaxedBernoulli.log_prob (float64)") {
  if (!test::have_torch()) return;
  const Md l = test::normal(2, 5, 41, 2.0);
  const Md y = test::uniform(2, 5, 42, 0.01, 0.99);
  const double tau = 0.37;
  std::ofstream script("relaxed_bernoulli_check.py");
  script.precision(17);
  script << "import torch\nl = torch.tensor([";
  for (Index i = 0; i < l.size(); ++i) script << l.data()[i] << ",";
  script << "], dtype=torch.float64)\ny = torch.tensor([";
  for (Index i = 0; i < y.size(); ++i) script << y.data()[i] << ",";
  script << "], dtype=torch.float64)\n"
         << "d = torch.distributions.RelaxedBernoulli(torch.tensor(" << tau
         << ", dtype=torch.float64), logits=l)\n"
         << "for v in d.log_prob(y).tolist(): print(repr(v))\n";
  script.close();
  REQUIRE(std::system("/usr/bin/python3 relaxed_bernoulli_check.py > relaxed_bernoulli.txt") == 0);
  std::ifstream in("relaxed_bernoulli.txt");
  Tape<double> tape;
  const Var<double> lp = binary_concrete_log_prob(tape.constant(l), tau, tape.constant(y));
  for (Index i = 0; i < l.size(); ++i) {
    double expected = 0;
    REQUIRE(static_cast<bool>(in >> expected));
    CHECK(lp.value().data()[i] == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("binary_concrete: samples do not depend on the thread count") {
  const Matrix<float> l = test::normal(300, 200, 8).cast<float>();
  Matrix<float> one;
  for (const int threads : {1, 2}) {
    set_threads(threads);
    Tape<float> tape;
    Generator gen(10);
    const Var<float> y = binary_concrete(tape.constant(l), 0.5f, gen);
    if (threads == 1) {
      one = y.value();
    } else {
      CHECK(y.value() == one);
    }
  }
  set_threads(1);
}

TEST_CASE("binary_concrete: bad arguments are errors naming the op") {
  Tape<double> tape;
  Generator gen(1);
  const Var<double> l = tape.constant(Md::Zero(2, 3));
  CHECK(message_of<ValueError>([&] {
          binary_concrete(l, 0.0, gen);
        }).find("binary_concrete: temperature tau = 0") != std::string::npos);
  Md nan = Md::Zero(2, 3);
  nan(1, 2) = NAN;
  CHECK(message_of<ValueError>([&] {
          binary_concrete(tape.constant(nan), 1.0, gen, true);
        }).find("binary_concrete(hard): logits contain NaN") != std::string::npos);
  CHECK(message_of<ShapeError>([&] {
          binary_concrete_log_prob(l, 1.0, tape.constant(Md::Constant(3, 2, 0.5)));
        }).find("logits 2x3 and y 3x2 differ in shape") != std::string::npos);
  Md outside = Md::Constant(2, 3, 0.5);
  outside(1, 0) = 1.0;
  CHECK(message_of<ValueError>([&] {
          binary_concrete_log_prob(l, 1.0, tape.constant(outside));
        }).find("y(1, 0) = 1 lies outside (0, 1)") != std::string::npos);
}
