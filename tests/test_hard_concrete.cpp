// Hard Concrete gates: exact zeros and ones with the probabilities the paper derives, the
// closed-form L0 penalty, gradients, and a layer that learns which inputs matter.
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"

using namespace gumbel;
using test::logistic;
using test::Md;
using test::message_of;

TEST_CASE_TEMPLATE("hard_concrete: exact 0 and 1 with the closed-form probabilities", T, float,
                   double) {
  const HardConcreteOptions o;
  const std::vector<double> log_alpha = {-3.0, -0.5, 0.0, 0.8, 2.5};
  const Index draws = 100000;
  Matrix<T> la(draws, Index(log_alpha.size()));
  for (Index j = 0; j < la.cols(); ++j) la.col(j).setConstant(T(log_alpha[std::size_t(j)]));
  Tape<T> tape;
  Generator gen(4);
  const Var<T> z = hard_concrete(tape.constant(la), gen);
  CHECK((z.value().array() >= T(0) && z.value().array() <= T(1)).all());
  const Var<T> l0 = hard_concrete_l0(tape.constant(Matrix<T>(la.topRows(1))));
  for (Index j = 0; j < la.cols(); ++j) {
    const double a = log_alpha[std::size_t(j)];
    const double p0 = logistic(o.beta * std::log(-o.gamma / o.zeta) - a);
    const double p1 = logistic(a - o.beta * std::log((1 - o.gamma) / (o.zeta - 1)));
    const double f0 = double((z.value().col(j).array() == T(0)).count()) / double(draws);
    const double f1 = double((z.value().col(j).array() == T(1)).count()) / double(draws);
    INFO("log_alpha " << a << ": P(0) " << p0 << " freq " << f0 << ", P(1) " << p1 << " freq "
                      << f1);
    CHECK(std::abs(f0 - p0) < 5 * std::sqrt(p0 * (1 - p0) / double(draws)));
    CHECK(std::abs(f1 - p1) < 5 * std::sqrt(p1 * (1 - p1) / double(draws)));
    // The L0 penalty's term is P(z != 0).
    CHECK(double(l0.value()(0, j)) == doctest::Approx(1 - p0).epsilon(1e-5));
  }
}

TEST_CASE("hard_concrete: gradients of the sample, the penalty and the test-time gate") {
  // Points away from the clamps' kinks: the finite differences then see a smooth function.
  Md la(2, 3);
  la << -0.3, 0.4, 1.1, -1.0, 0.2, 0.6;
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) {
        Generator gen(12);
        return hard_concrete(v[0], gen);
      },
      {la});
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) { return hard_concrete_l0(v[0]); }, {la});
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) { return hard_concrete_gate(v[0]); }, {la});
  // A clamped gate passes no gradient; the deterministic gate is exact 0 and 1 far out.
  Tape<double> tape;
  Md far(1, 2);
  far << -8.0, 8.0;
  const Var<double> v = tape.variable(far);
  const Var<double> gate = hard_concrete_gate(v);
  CHECK(gate.value()(0, 0) == 0.0);
  CHECK(gate.value()(0, 1) == 1.0);
  tape.backward(sum(gate));
  CHECK(v.grad()(0, 0) == 0.0);
  CHECK(v.grad()(0, 1) == 0.0);
  // NaN propagates through the deterministic gate.
  Md nan(1, 1);
  nan(0, 0) = NAN;
  CHECK(std::isnan(hard_concrete_gate(tape.constant(nan)).value()(0, 0)));
}

TEST_CASE("nn::L0Gate learns which inputs matter under the L0 penalty") {
  // y = 2 x0 - 3 x3 + x7 from 10 inputs: the gates of the other 7 inputs should close.
  Generator gen(2);
  const Index n = 256, d = 10;
  const Md x = gen.normal<double>(n, d, 0.0, 1.0);
  Md y = 2.0 * x.col(0) - 3.0 * x.col(3) + x.col(7);
  nn::L0Gate<double> gate(d, gen);
  nn::Linear<double> fc(d, 1, gen);
  auto params = fc.parameters();
  params.push_back(&gate.log_alpha);
  optim::AdamOptions<double> adam_options;
  adam_options.lr = 0.02;
  optim::Adam<double> adam(params, adam_options);
  Generator noise(3);
  Tape<double> tape;
  for (int step = 0; step < 1500; ++step) {
    tape.clear();
    const Var<double> pred = fc(gate(tape.constant(x), noise, true));
    const Var<double> err = pred - tape.constant(y);
    const Var<double> loss = mean(mul(err, err)) + gate.penalty(tape) * 0.02;
    adam.backward_and_step(tape, loss);
  }
  const Md g = gate.gates();
  INFO("test-time gates " << g);
  for (Index j = 0; j < d; ++j) {
    if (j == 0 || j == 3 || j == 7) {
      CHECK(g(0, j) > 0.5);
    } else {
      CHECK(g(0, j) == 0.0);
    }
  }
  // At test time the gated model is deterministic and fits y.
  tape.clear();
  const Var<double> pred = fc(gate(tape.constant(x), noise, false));
  CHECK((pred.value() - y).norm() / y.norm() < 0.1);
}

TEST_CASE("hard_concrete: bad options and inputs are errors naming the op") {
  Tape<float> tape;
  Generator gen(1);
  const Var<float> la = tape.constant(Matrix<float>::Zero(2, 2));
  HardConcreteOptions bad;
  bad.gamma = 0.1;
  CHECK(message_of<ValueError>([&] {
          hard_concrete(la, gen, bad);
        }).find("hard_concrete: gamma = 0.1 must be negative") != std::string::npos);
  bad = {};
  bad.zeta = 1.0;
  CHECK(message_of<ValueError>([&] {
          hard_concrete_l0(la, bad);
        }).find("hard_concrete_l0: zeta = 1 must be finite and above 1") != std::string::npos);
  bad = {};
  bad.beta = 0;
  CHECK(message_of<ValueError>([&] {
          hard_concrete_gate(la, bad);
        }).find("hard_concrete_gate: beta = 0 must be positive") != std::string::npos);
  Matrix<float> nan = Matrix<float>::Zero(2, 2);
  nan(0, 1) = NAN;
  CHECK(message_of<ValueError>([&] {
          hard_concrete(tape.constant(nan), gen);
        }).find("log_alpha contains NaN") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          nn::L0Gate<float>(0, gen);
        }).find("features must be positive, got 0") != std::string::npos);
  nn::L0Gate<float> gate(3, gen);
  CHECK(message_of<ShapeError>([&] {
          gate(la, gen, true);
        }).find("input 2x2 has 2 features, the gate 3") != std::string::npos);
}

TEST_CASE(
    "hard_concrete: a beta with no finite inverse in float is refused there, kept in double") {
  HardConcreteOptions tiny;
  tiny.beta = 1e-40;  // 1 / beta = 1e40: finite in double, inf in float
  Generator gen(3);
  Tape<float> tape;
  const Var<float> la = tape.variable(Matrix<float>::Zero(2, 3));
  CHECK(message_of<ValueError>([&] {
          hard_concrete(la, gen, tiny);
        }).find("hard_concrete: beta = 1e-40 has no finite inverse in float") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          hard_concrete_l0(la, tiny);
        }).find("hard_concrete_l0: beta = 1e-40") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          nn::L0Gate<float>(3, gen, 0.5, tiny);
        }).find("nn::L0Gate: beta = 1e-40") != std::string::npos);
  Tape<double> dtape;
  const Var<double> dla = dtape.variable(Md::Constant(2, 3, 0.3));
  const Var<double> z = hard_concrete(dla, gen, tiny);
  dtape.backward(sum(z));
  CHECK(z.value().allFinite());
  CHECK(dla.grad().allFinite());
}
