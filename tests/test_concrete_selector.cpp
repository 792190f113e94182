// nn::ConcreteSelector: its value and gradient against the Gumbel-Softmax sample it draws, exact
// selection at test time, and training that finds the only informative features.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;

TEST_CASE_TEMPLATE(
    "ConcreteSelector: x M^T with M the Gumbel-Softmax sample; the argmax at test time", T, float,
    double) {
  Generator init(3);
  nn::ConcreteSelector<T> selector(9, 4, init);
  CHECK(selector.parameters() == ParameterList<T>{&selector.logits});
  CHECK(selector.named_parameters().at(0).first == "logits");
  CHECK(selector.logits.rows() == 4);
  CHECK(selector.logits.cols() == 9);
  const Matrix<T> x = test::normal(6, 9, 5).cast<T>();
  Tape<T> tape;
  Generator g1(11), g2(11);
  const Var<T> y = selector(tape.constant(x), T(0.5), g1, true);
  const Var<T> m = gumbel_softmax(tape.constant(selector.logits.value), T(0.5), g2);
  CHECK((y.value() - x * m.value().transpose()).cwiseAbs().maxCoeff() < T(1e-5));

  const Var<T> chosen = selector(tape.constant(x), T(0.5), g1, false);
  const IndexVector idx = selector.selected();
  for (Index j = 0; j < 4; ++j) {
    Index best = 0;
    selector.logits.value.row(j).maxCoeff(&best);
    CHECK(idx(j) == best);
    CHECK(chosen.value().col(j) == x.col(best));
  }
  CHECK(selector.mean_max_probability() > T(0));
  CHECK(selector.mean_max_probability() <= T(1));
}

TEST_CASE("ConcreteSelector gradients against finite differences, the noise held fixed") {
  Generator init(3);
  nn::ConcreteSelector<double> selector(7, 3, init);
  const Md x = test::normal(5, 7, 6);
  test::require_gradients(
      [](Tape<double>&, const test::Inputs& v) {
        Generator gen(17);
        return linear(v[0], gumbel_softmax(v[1], 0.7, gen));
      },
      {x, selector.logits.value});
  // The layer records exactly that: compare its gradient with the composition's.
  Tape<double> tape;
  Generator g1(17), g2(17);
  const Md w = test::normal(5, 3, 8);
  tape.backward(sum(mul(selector(tape.constant(x), 0.7, g1, true), tape.constant(w))));
  const Md layer_grad = selector.logits.grad;
  Tape<double> t2;
  const Var<double> l = t2.variable(selector.logits.value);
  t2.backward(sum(mul(linear(t2.constant(x), gumbel_softmax(l, 0.7, g2)), t2.constant(w))));
  CHECK((layer_grad - l.grad()).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("ConcreteSelector learns to keep the only informative features") {
  // 20 features; the target is features 2, 11 and 17. Three selectors and a linear decoder.
  Generator gen(2024);
  nn::ConcreteSelector<double> selector(20, 3, gen);
  nn::Linear<double> decoder(3, 3, gen);
  ParameterList<double> params = selector.parameters();
  for (auto* p : decoder.parameters()) params.push_back(p);
  optim::Adam<double> adam(params, {0.05});
  const ExponentialDecay schedule(2.0, 0.05, std::log(2.0 / 0.05) / 400.0);
  Tape<double> tape;
  for (int step = 0; step < 600; ++step) {
    const Md x = gen.normal<double>(64, 20, 0.0, 1.0);
    Md target(64, 3);
    target << x.col(2), x.col(11), x.col(17);
    tape.clear();
    for (auto* p : params) p->grad.setZero();
    const Var<double> y = decoder(selector(tape.constant(x), schedule(step), gen, true));
    tape.backward(mean(square(sub(y, tape.constant(target)))));
    adam.step();
  }
  const IndexVector idx = selector.selected();
  const std::set<Index> chosen(idx.data(), idx.data() + idx.size());
  CHECK(chosen == std::set<Index>{2, 11, 17});
  CHECK(selector.mean_max_probability() > 0.95);
}

TEST_CASE("ConcreteSelector: bad arguments are errors naming the layer and the shapes") {
  Generator gen(1);
  CHECK(test::message_of<ValueError>([&] {
          nn::ConcreteSelector<double>(0, 3, gen);
        }).find("nn::ConcreteSelector: inputs = 0 and k = 3 must be positive") !=
        std::string::npos);
  nn::ConcreteSelector<double> selector(5, 2, gen);
  Tape<double> tape;
  CHECK(test::message_of<ShapeError>([&] {
          selector(tape.constant(Md::Zero(3, 4)), 1.0, gen, true);
        }).find("input 3x4 has 4 features, the selector 5") != std::string::npos);
}
