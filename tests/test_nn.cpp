#include "test_util.hpp"

#include <cmath>

using namespace gumbel;
using namespace test;

TEST_CASE_TEMPLATE("nn::Linear uses PyTorch's default initialisation", T, float, double) {
  Generator gen(3);
  nn::Linear<T> layer(400, 300, gen);
  CHECK(layer.weight.rows() == 300);
  CHECK(layer.weight.cols() == 400);
  CHECK(layer.bias.rows() == 1);
  CHECK(layer.bias.cols() == 300);
  const double bound = 1 / std::sqrt(400.0);
  const Eigen::ArrayXd w = layer.weight.value.template cast<double>().reshaped().array();
  CHECK(w.abs().maxCoeff() <= bound);
  // U(-b, b) has mean 0 and variance b^2 / 3; allow 5 standard errors.
  const double n = double(w.size());
  CHECK(std::abs(w.mean()) < 5 * bound / std::sqrt(3 * n));
  const double var = w.square().mean();
  // Var of x^2 for U(-b, b) is 4 b^4 / 45.
  CHECK(std::abs(var - bound * bound / 3) < 5 * std::sqrt(4.0 / 45 / n) * bound * bound);
  CHECK(layer.bias.value.cwiseAbs().maxCoeff() <= T(bound));
  CHECK(layer.parameters().size() == 2);
  CHECK(layer.weight.grad.isZero());
  CHECK(nn::Linear<T>(4, 3, gen, false).parameters().size() == 1);
  CHECK_THROWS_AS(nn::Linear<T>(0, 3, gen), ValueError);
}

TEST_CASE("a small MLP learns XOR with Adam") {
  Generator gen(11);
  nn::Linear<double> l1(2, 8, gen), l2(8, 1, gen);
  ParameterList<double> params = l1.parameters();
  for (auto* p : l2.parameters()) params.push_back(p);
  optim::AdamOptions<double> options;
  options.lr = 0.05;
  optim::Adam<double> adam(params, options);
  const Md x{{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  const Md t{{0}, {1}, {1}, {0}};
  Tape<double> tape;
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    tape.clear();
    adam.zero_grad();
    const auto logits = l2(tanh(l1(tape.constant(x))));
    const auto loss = binary_cross_entropy_with_logits(logits, tape.constant(t));
    tape.backward(loss);
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(last < 0.05);
  CHECK(last < first);
}
