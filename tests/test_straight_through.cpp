// Plain straight-through and ReinMax: the forward sample, the gradient each defines (checked
// against finite differences of the function whose Jacobian it uses), and ReinMax's smaller bias
// against the exact gradient of a problem small enough to enumerate.
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;

TEST_CASE_TEMPLATE("straight_through and reinmax show the one-hot that hard Gumbel-Softmax shows",
                   T, float, double) {
  Matrix<T> l = test::normal(40, 7, 11, 2.0).cast<T>();
  l(3, 2) = -INFINITY;
  l(5, 0) = T(1e30);
  for (const bool grad : {false, true}) {
    Tape<T> tape;
    const Var<T> v = grad ? tape.variable(l) : tape.constant(l);
    Generator g1(9), g2(9), g3(9);
    const Var<T> st = straight_through(v, g1, T(0.7));
    const Var<T> rm = reinmax(v, g2, T(1.3));
    const Var<T> gs = gumbel_softmax(v, T(0.7), g3, true);
    CHECK(st.value() == gs.value());
    CHECK(rm.value() == gs.value());
    CHECK(g1.offset() == g3.offset());
    CHECK(g2.offset() == g3.offset());
    CHECK(st.value()(3, 2) == T(0));
    if (grad) {  // huge and masked logits: the gradient stays finite, 0 at the mask
      const Matrix<T> w = test::normal(40, 7, 12).cast<T>();
      tape.backward(sum(mul(add(st, rm), tape.constant(w))));
      CHECK(v.grad().allFinite());
      CHECK(v.grad()(3, 2) == T(0));
    }
  }
}

namespace {

/// The gradient of <w, estimator(l)> on a fresh tape, and the one-hot it showed.
template <class Make>
std::pair<Md, Md> estimator_gradient(const Md& l, const Md& w, Make&& make) {
  Tape<double> tape;
  const Var<double> v = tape.variable(l);
  Generator gen(21);
  const Var<double> y = make(v, gen);
  tape.backward(sum(mul(y, tape.constant(w))));
  return {v.grad(), y.value()};
}

}  // namespace

TEST_CASE("the straight-through and ReinMax gradients against finite differences") {
  const Md l = test::normal(6, 5, 3, 1.5);
  const Md w = test::normal(6, 5, 4);
  for (const double tau : {0.5, 1.0, 2.0}) {
    INFO("tau = " << tau);
    // Plain: the gradient of <w, softmax(l / tau)>.
    const Md st = estimator_gradient(l, w, [tau](const Var<double>& v, Generator& gen) {
                    return straight_through(v, gen, tau);
                  }).first;
    Tape<double> t2;
    const Var<double> v2 = t2.variable(l);
    t2.backward(sum(mul(softmax(scale(v2, 1 / tau)), t2.constant(w))));
    CHECK((st - v2.grad()).cwiseAbs().maxCoeff() < 1e-12);

    // ReinMax: the gradient of <w, 2 softmax(c + l) - softmax(l) / 2> with c held at
    // ln pi1 - l, pi1 = (D + softmax(l / tau)) / 2, by central differences in l.
    const auto [rm, d] = estimator_gradient(
        l, w, [tau](const Var<double>& v, Generator& gen) { return reinmax(v, gen, tau); });
    Md sm_tau = (l / tau).array().exp();
    sm_tau = sm_tau.array().colwise() / sm_tau.rowwise().sum().array();
    const Md c = ((d + sm_tau) / 2).array().log() - l.array();
    const auto surrogate = [&](const Md& x) {
      Md a = (c + x).array().exp();
      a = a.array().colwise() / a.rowwise().sum().array();
      Md b = x.array().exp();
      b = b.array().colwise() / b.rowwise().sum().array();
      return (w.array() * (2 * a - b / 2).array()).sum();
    };
    double worst = 0;
    for (Index i = 0; i < l.rows(); ++i) {
      for (Index j = 0; j < l.cols(); ++j) {
        Md up = l, down = l;
        up(i, j) += 1e-6;
        down(i, j) -= 1e-6;
        const double numeric = (surrogate(up) - surrogate(down)) / 2e-6;
        worst = std::max(worst, std::abs(numeric - rm(i, j)));
      }
    }
    CHECK(worst < 1e-7);
  }
}

namespace {

/// The examples' harness problem: 4 categorical latents of 5 classes, f(z) = (sum of the chosen
/// classes - 6)^2, theta ~ N(0, 0.5^2) per logit. The exact gradient of E[f] by enumeration.
struct Harness {
  static constexpr Index kL = 4, kC = 5;
  Md theta = test::normal(kL, kC, 7, 0.5);

  Md exact_gradient() const {
    Md q = theta.array().exp();
    q = q.array().colwise() / q.rowwise().sum().array();
    Md g = Md::Zero(kL, kC);
    for (Index code = 0; code < 625; ++code) {
      Index z[kL];
      double p = 1, total = 0;
      for (Index l = 0, rest = code; l < kL; ++l, rest /= kC) {
        z[l] = rest % kC;
        p *= q(l, z[l]);
        total += double(z[l]);
      }
      const double f = (total - 6) * (total - 6);
      for (Index l = 0; l < kL; ++l) {  // d p / d theta_l = p (e_{z_l} - q_l)
        g.row(l) -= p * f * q.row(l);
        g(l, z[l]) += p * f;
      }
    }
    return g;
  }

  /// Mean and standard error of an estimator over n draws (one batch of n copies of theta).
  template <class Make>
  std::pair<Md, Md> estimate(Index n, Make&& make) const {
    Tape<double> tape;
    const Var<double> v = tape.variable(theta.replicate(n, 1));
    Generator gen(31);
    const Var<double> z = make(v, gen);
    Md values(1, kC);
    for (Index c = 0; c < kC; ++c) values(0, c) = double(c);
    // Per draw d (rows d L .. d L + L - 1): f = (sum z . values - 6)^2.
    const Var<double> s = reshape(matmul(z, tape.constant(values.transpose())), n, kL);
    const Var<double> f = square(shift(matmul(s, tape.constant(Md::Ones(kL, 1))), -6.0));
    tape.backward(sum(f));
    Md sum_g = Md::Zero(kL, kC), sum_sq = Md::Zero(kL, kC);
    for (Index d = 0; d < n; ++d) {
      const Md g = v.grad().middleRows(d * kL, kL);
      sum_g += g;
      sum_sq += g.cwiseProduct(g);
    }
    const Md mean = sum_g / double(n);
    const Md var = (sum_sq / double(n) - mean.cwiseProduct(mean)) * (double(n) / double(n - 1));
    return {mean, (var / double(n)).cwiseSqrt()};
  }
};

}  // namespace

TEST_CASE("ReinMax's bias is below plain straight-through's at tau = 1 on the harness problem") {
  const Harness h;
  const Md exact = h.exact_gradient();
  constexpr Index n = 20000;
  const auto [st, st_se] =
      h.estimate(n, [](const Var<double>& v, Generator& g) { return straight_through(v, g); });
  const auto [rm, rm_se] =
      h.estimate(n, [](const Var<double>& v, Generator& g) { return reinmax(v, g); });
  const double st_bias = (st - exact).norm();
  const double rm_bias = (rm - exact).norm();
  // The Monte Carlo error of a bias estimate: the norm of the standard errors.
  const double noise = st_se.norm() + rm_se.norm();
  INFO("exact |g| " << exact.norm() << ", straight-through bias " << st_bias << ", ReinMax bias "
                    << rm_bias << ", Monte Carlo error " << noise);
  CHECK(rm_bias + 4 * noise < st_bias);
}

TEST_CASE("straight_through and reinmax: bad arguments are errors naming the op") {
  Tape<double> tape;
  Generator gen(1);
  const Var<double> l = tape.variable(Md::Zero(2, 3));
  CHECK(test::message_of<ValueError>([&] {
          straight_through(l, gen, 0.0);
        }).find("straight_through") != std::string::npos);
  CHECK(test::message_of<ValueError>([&] { reinmax(l, gen, -1.0); }).find("reinmax") !=
        std::string::npos);
  Md bad = Md::Zero(2, 3);
  bad(1, 1) = NAN;
  CHECK(test::message_of<ValueError>([&] {
          reinmax(tape.variable(bad), gen);
        }).find("reinmax: row 1") != std::string::npos);
  CHECK_THROWS_AS(straight_through(tape.variable(Md::Zero(2, 0)), gen), ShapeError);
}
