// Relaxed subset sampling: the hard k-hot is Gumbel-top-k's sample, the soft one a k-hot
// relaxation (rows sum to k, k = 1 is Gumbel-Softmax), gradients against finite differences with
// the noise held fixed, and finite values and gradients at low temperatures in float.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;

TEST_CASE_TEMPLATE("relaxed_subset(hard) is the k-hot of gumbel_top_k from the same generator", T,
                   float, double) {
  Matrix<T> l = test::normal(50, 9, 2, 1.5).cast<T>();
  l(4, 1) = -INFINITY;
  l(4, 7) = -INFINITY;
  l(6, 3) = T(1e30);
  for (const Index k : {1, 3, 7}) {
    for (const bool grad : {false, true}) {
      Tape<T> tape;
      Generator g1(5), g2(5);
      const Var<T> v = grad ? tape.variable(l) : tape.constant(l);
      const Var<T> y = relaxed_subset(v, k, T(0.5), g1, true);
      const auto top = gumbel_top_k(l, k, g2);
      Matrix<T> expected = Matrix<T>::Zero(l.rows(), l.cols());
      for (Index i = 0; i < l.rows(); ++i) {
        for (Index j = 0; j < k; ++j) expected(i, top(i, j)) = T(1);
      }
      CHECK(y.value() == expected);
      CHECK(g1.offset() == g2.offset());
    }
  }
}

namespace {

/// Xie & Ermon's algorithm written out plainly in double on given perturbed logits r:
/// alpha = r; for each step, p = softmax(alpha / tau), y += p, alpha += ln(1 - p).
Md reference_subset(const Md& r, Index k, double tau) {
  Md y = Md::Zero(r.rows(), r.cols());
  for (Index i = 0; i < r.rows(); ++i) {
    Eigen::ArrayXd alpha = r.row(i).transpose().array();
    for (Index j = 0; j < k; ++j) {
      Eigen::ArrayXd p = ((alpha - alpha.maxCoeff()) / tau).exp();
      p /= p.sum();
      y.row(i) += p.matrix().transpose();
      alpha += (1 - p).log();
    }
  }
  return y;
}

}  // namespace

TEST_CASE_TEMPLATE("relaxed_subset against the algorithm written out; k = 1 is Gumbel-Softmax", T,
                   float, double) {
  const Matrix<T> l = test::normal(200, 12, 3, 2.0).cast<T>();
  const double eps = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  Tape<T> tape;
  for (const double tau : {0.3, 0.7, 2.0}) {
    for (const Index k : {1, 2, 5, 12}) {
      INFO("tau = " << tau << ", k = " << k);
      Generator gen(8), same(8);
      const Var<T> y = relaxed_subset(tape.constant(l), k, T(tau), gen);
      const Md r = perturb_logits(l, same).template cast<double>();
      const Md expected = reference_subset(r, k, tau);
      CHECK((y.value().template cast<double>() - expected).cwiseAbs().maxCoeff() < eps * double(k));
      CHECK(((y.value().rowwise().sum().array() - T(k)).abs() < T(eps * double(k) * 12)).all());
    }
  }
  Generator g1(8), g2(8);
  const Var<T> one = relaxed_subset(tape.constant(l), 1, T(0.7), g1);
  const Var<T> gs = gumbel_softmax(tape.constant(l), T(0.7), g2);
  CHECK((one.value() - gs.value()).cwiseAbs().maxCoeff() < T(eps * 10));
}

TEST_CASE(
    "relaxed_subset at tau = 0.01 is the hard k-hot wherever the k + 1 largest perturbed "
    "logits are 0.1 apart") {
  const Md l = test::normal(300, 12, 3, 2.0);
  constexpr Index k = 4;
  Tape<double> tape;
  Generator g1(8), g2(8), g3(8);
  const Var<double> soft = relaxed_subset(tape.constant(l), k, 0.01, g1);
  const Var<double> hard = relaxed_subset(tape.constant(l), k, 0.01, g2, true);
  Md r = perturb_logits(l, g3);
  Index separated = 0;
  for (Index i = 0; i < l.rows(); ++i) {
    Eigen::RowVectorXd sorted = r.row(i);
    std::sort(sorted.data(), sorted.data() + sorted.size(), std::greater<>());
    if ((sorted.head(k) - sorted.segment(1, k)).minCoeff() < 0.1) continue;
    ++separated;
    // Each step leaks at most (K - 1) e^(-gap / tau) = 11 e^-10 outside the k-hot.
    CHECK((soft.value().row(i) - hard.value().row(i)).cwiseAbs().maxCoeff() < 4 * 11 * 5e-5);
  }
  CHECK(separated > 100);
}

TEST_CASE("relaxed_subset gradients against finite differences, the noise held fixed") {
  Md l = test::normal(4, 6, 4, 1.5);
  Md masked = l;
  masked(1, 2) = -INFINITY;
  masked(3, 0) = -INFINITY;
  for (const double tau : {0.3, 1.0, 3.0}) {
    for (const Index k : {1, 2, 4}) {
      INFO("tau = " << tau << ", k = " << k);
      const auto f = [tau, k](Tape<double>&, const test::Inputs& v) {
        Generator gen(13);
        return relaxed_subset(v[0], k, tau, gen);
      };
      test::require_gradients(f, {l});
      test::require_gradients(f, {masked});
    }
  }
  // The hard form's gradient is the soft form's.
  Tape<double> tape;
  const Var<double> a = tape.variable(l), b = tape.variable(l);
  Generator g1(3), g2(3);
  const Md w = test::normal(4, 6, 5);
  tape.backward(add(sum(mul(relaxed_subset(a, 3, 0.5, g1), tape.constant(w))),
                    sum(mul(relaxed_subset(b, 3, 0.5, g2, true), tape.constant(w)))));
  CHECK(a.grad() == b.grad());
}

TEST_CASE_TEMPLATE("relaxed_subset stays finite at low tau, huge logits and masks", T, float,
                   double) {
  Matrix<T> l = test::normal(64, 20, 6, 30.0).cast<T>();
  l(0, 0) = T(1e30);
  l(1, 4) = T(-1e30);
  l(2, 5) = -INFINITY;
  l(3, 1) = T(1e30);
  l(3, 2) = T(1e30);
  for (const double tau : {1e-3, 1e-2, 1.0, 1e3}) {
    for (const Index k : {1, 5, 19}) {
      Tape<T> tape;
      Generator gen(4);
      const Var<T> v = tape.variable(l);
      const Var<T> y = relaxed_subset(v, k, T(tau), gen);
      tape.backward(sum(mul(y, tape.constant(test::normal(64, 20, 7).cast<T>()))));
      INFO("tau = " << tau << ", k = " << k);
      CHECK(y.value().allFinite());
      CHECK(v.grad().allFinite());
    }
  }
}

TEST_CASE("relaxed_subset: bad arguments are errors naming the op and the values") {
  Tape<double> tape;
  Generator gen(1);
  Md l = Md::Zero(3, 4);
  l(2, 0) = -INFINITY;
  l(2, 1) = -INFINITY;
  const Var<double> v = tape.variable(l);
  CHECK(test::message_of<ValueError>([&] {
          relaxed_subset(v, 0, 1.0, gen);
        }).find("relaxed_subset: k = 0 must lie in [1, 4] for logits of 3x4") != std::string::npos);
  CHECK(test::message_of<ValueError>([&] {
          relaxed_subset(v, 5, 1.0, gen, true);
        }).find("relaxed_subset(hard): k = 5") != std::string::npos);
  CHECK(test::message_of<ValueError>([&] {
          relaxed_subset(v, 3, 1.0, gen);
        }).find("row 2 has 2 unmasked classes, fewer than k = 3") != std::string::npos);
  CHECK_THROWS_AS(relaxed_subset(v, 2, 0.0, gen), ValueError);
  Md bad = Md::Zero(3, 4);
  bad(1, 3) = NAN;
  CHECK(test::message_of<ValueError>([&] {
          relaxed_subset(tape.variable(bad), 2, 1.0, gen);
        }).find("relaxed_subset: row 1") != std::string::npos);
}
