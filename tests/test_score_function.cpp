// Score-function estimators against the exact gradient of E[f(z)] on a categorical small enough
// to enumerate: unbiased (within 4 standard errors on 100,000 draws), and RLOO's leave-one-out
// baseline lowering the variance.
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;
using test::message_of;

namespace {

constexpr Index kK = 4;
const double kF[kK] = {10.3, 9.1, 11.6, 10.0};  // a loss with a large common offset

gumbel::Matrix<double> problem_logits() {
  gumbel::Matrix<double> l(1, kK);
  l << 0.4, -0.2, 0.1, -0.9;
  return l;
}

/// grad_l E_q[f] = sum_z q(z) f(z) (e_z - q), exactly.
Eigen::RowVectorXd exact_gradient() {
  const Eigen::RowVectorXd l = problem_logits().row(0);
  const Eigen::RowVectorXd q = l.array().exp() / l.array().exp().sum();
  Eigen::RowVectorXd g = Eigen::RowVectorXd::Zero(kK);
  for (Index z = 0; z < kK; ++z) {
    Eigen::RowVectorXd e = -q;
    e(z) += 1;
    g += q(z) * kF[z] * e;
  }
  return g;
}

struct Estimate {
  Eigen::RowVectorXd mean, se, var;
};

/// Mean, standard error and variance over the rows of per-draw gradient estimates.
Estimate summarise(const Eigen::MatrixXd& per_draw) {
  Estimate e;
  const double n = double(per_draw.rows());
  e.mean = per_draw.colwise().mean();
  e.var = (per_draw.rowwise() - e.mean).array().square().colwise().sum() / (n - 1);
  e.se = (e.var.array() / n).sqrt();
  return e;
}

/// Per-example gradient estimates of `examples` examples with `s` samples each, from the
/// surrogate `make(log_prob (examples x s), f (examples x s))`.
template <class Make>
Eigen::MatrixXd estimates(Index examples, Index s, std::uint64_t seed, Make&& make) {
  Tape<double> tape;
  const Var<double> l = tape.variable(problem_logits().replicate(examples * s, 1));
  Generator gen(seed);
  const IndexVector z = gumbel_max(l.value(), gen);
  Md f(examples, s);
  for (Index i = 0; i < examples * s; ++i) f(i / s, i % s) = kF[z(i)];
  const Var<double> lp = reshape(categorical_log_prob(l, z), examples, s);
  tape.backward(make(lp, f));
  // The surrogate averages over examples * s entries: example b's estimate is examples times
  // the sum of its s rows' gradients.
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(examples, kK);
  for (Index i = 0; i < examples * s; ++i) out.row(i / s) += double(examples) * l.grad().row(i);
  return out;
}

}  // namespace

TEST_CASE("categorical_log_prob and bernoulli_log_prob: values and finite-difference gradients") {
  const Md l = test::normal(5, 6, 3, 2.0);
  IndexVector idx(5);
  idx << 0, 5, 2, 2, 3;
  Tape<double> tape;
  const Var<double> lp = categorical_log_prob(tape.constant(l), idx);
  const Var<double> full = log_softmax(tape.constant(l));
  for (Index i = 0; i < 5; ++i) CHECK(lp.value()(i, 0) == doctest::Approx(full.value()(i, idx(i))));
  test::require_gradients(
      [idx](Tape<double>&, const test::Inputs& v) { return categorical_log_prob(v[0], idx); }, {l});
  Md masked = l;
  masked(1, 0) = -INFINITY;  // a masked class that was not drawn
  test::require_gradients(
      [idx](Tape<double>&, const test::Inputs& v) { return categorical_log_prob(v[0], idx); },
      {masked});

  const Md value = (test::uniform(5, 6, 4, 0.0, 1.0).array() < 0.5).cast<double>();
  const Var<double> blp = bernoulli_log_prob(tape.constant(l), tape.constant(value));
  const Eigen::ArrayXXd p = 1.0 / (1.0 + (-l.array()).exp());
  const Eigen::ArrayXXd expected =
      value.array() * p.log() + (1.0 - value.array()) * (1.0 - p).log();
  CHECK((blp.value().array() - expected).abs().maxCoeff() < 1e-12);
}

TEST_CASE_TEMPLATE("categorical_log_prob in float and double: huge logits and masks stay finite", T,
                   float, double) {
  gumbel::Matrix<T> l(3, 4);
  l << T(1e30), T(-1e30), T(0), T(5),          //
      T(-INFINITY), T(2), T(1), T(-INFINITY),  //
      T(0.5), T(-0.25), T(3), T(1);
  IndexVector idx(3);
  idx << 0, 2, 3;
  Tape<T> tape;
  const Var<T> v = tape.variable(l);
  const Var<T> lp = categorical_log_prob(v, idx);
  CHECK(lp.value()(0, 0) == T(0));
  const double lse1 = std::log(std::exp(2.0) + std::exp(1.0));
  CHECK(double(lp.value()(1, 0)) == doctest::Approx(1.0 - lse1).epsilon(1e-6));
  tape.backward(sum(lp));
  CHECK(v.grad().allFinite());
  CHECK(v.grad()(1, 0) == T(0));
  CHECK(double(v.grad()(1, 2)) == doctest::Approx(1.0 - std::exp(1.0 - lse1)).epsilon(1e-6));
}

TEST_CASE("REINFORCE and RLOO are unbiased; RLOO's baseline lowers the variance") {
  const Eigen::RowVectorXd exact = exact_gradient();
  INFO("exact gradient " << exact);
  // Plain REINFORCE, one sample per draw: 100,000 draws.
  const Estimate plain = summarise(
      estimates(100000, 1, 1, [](const Var<double>& lp, const Md& f) { return reinforce(lp, f); }));
  INFO("REINFORCE " << plain.mean << " se " << plain.se);
  CHECK(((plain.mean - exact).array().abs() < 4 * plain.se.array()).all());

  // RLOO with S = 4: 25,000 examples (100,000 draws).
  const Estimate loo = summarise(
      estimates(25000, 4, 2, [](const Var<double>& lp, const Md& f) { return rloo(lp, f); }));
  INFO("RLOO " << loo.mean << " se " << loo.se);
  CHECK(((loo.mean - exact).array().abs() < 4 * loo.se.array()).all());

  // The same 4 samples per example without a baseline: RLOO's variance must be far lower (the
  // loss's common offset of about 10 drives plain REINFORCE's).
  const Estimate plain4 = summarise(
      estimates(25000, 4, 3, [](const Var<double>& lp, const Md& f) { return reinforce(lp, f); }));
  INFO("REINFORCE, 4 samples, variance " << plain4.var << "; RLOO " << loo.var);
  CHECK((loo.var.array() < 0.1 * plain4.var.array()).all());

  // A moving-average baseline from earlier batches keeps the estimate unbiased.
  MovingAverageBaseline baseline(0.9);
  Eigen::MatrixXd per_draw(0, kK);
  for (int batch = 0; batch < 100; ++batch) {
    const Eigen::MatrixXd e =
        estimates(1000, 1, 100 + std::uint64_t(batch),
                  [&](const Var<double>& lp, const Md& f) { return reinforce(lp, f, baseline); });
    per_draw.conservativeResize(per_draw.rows() + e.rows(), kK);
    per_draw.bottomRows(e.rows()) = e;
  }
  const Estimate moving = summarise(per_draw);
  INFO("moving-average baseline " << moving.mean << " se " << moving.se << ", b "
                                  << baseline.value());
  CHECK(((moving.mean - exact).array().abs() < 4 * moving.se.array()).all());
  CHECK(std::abs(baseline.value() - 10.3) < 1.0);  // near E[f]
  CHECK((moving.var.array() < 0.1 * plain.var.array()).all());
}

TEST_CASE("score-function helpers: bad arguments are errors naming the op and the values") {
  Tape<double> tape;
  const Var<double> l = tape.constant(Md::Zero(3, 4));
  IndexVector idx(3);
  idx << 0, 4, 1;
  CHECK(message_of<ValueError>([&] {
          categorical_log_prob(l, idx);
        }).find("categorical_log_prob: index 4 in row 1 is outside [0, 4)") != std::string::npos);
  CHECK(message_of<ShapeError>([&] {
          categorical_log_prob(l, IndexVector::Zero(2));
        }).find("index has 2 entries for logits 3x4") != std::string::npos);
  const Var<double> lp = tape.constant(Md::Zero(3, 1));
  CHECK(message_of<ValueError>([&] {
          rloo(lp, Md::Zero(3, 1));
        }).find("rloo: needs at least 2 samples per row, got 1") != std::string::npos);
  CHECK(message_of<ShapeError>([&] {
          reinforce(lp, Md::Zero(2, 1));
        }).find("reinforce: log_prob 3x1 and f 2x1 differ in shape") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          MovingAverageBaseline(1.0);
        }).find("decay = 1 must lie in [0, 1)") != std::string::npos);
}

TEST_CASE("score-function surrogates refuse an empty batch instead of averaging nothing") {
  Tape<double> tape;
  MovingAverageBaseline baseline(0.9);
  for (const std::pair<Index, Index>& shape : {std::pair<Index, Index>{0, 3}, {4, 0}, {0, 0}}) {
    const Index rows = shape.first, cols = shape.second;  // lambdas capture no bindings in C++17
    const Var<double> lp = tape.constant(Md::Zero(rows, cols));
    const Md f = Md::Zero(rows, cols);
    INFO(rows << "x" << cols);
    CHECK(message_of<ShapeError>([&] {
            reinforce(lp, f, baseline);
          }).find("reinforce: an empty batch") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { reinforce(lp, f); }).find("reinforce: an empty batch") !=
          std::string::npos);
  }
  CHECK_FALSE(baseline.started());  // the refused batches did not feed the baseline
  const Var<double> lp = tape.constant(Md::Zero(0, 3));
  CHECK(message_of<ShapeError>([&] {
          rloo(lp, Md::Zero(0, 3));
        }).find("rloo: an empty batch: log_prob and f are 0x3") != std::string::npos);
}
