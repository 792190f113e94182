// nn::Module and nn::Sequential: hierarchical names, the order of parameters(), modules that can
// be neither copied nor moved, train/eval reaching every layer, and a Sequential that trains.
#include <doctest/doctest.h>

#include <type_traits>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;

namespace {

struct Encoder : nn::Module<double> {
  nn::Linear<double> fc1, fc2;
  explicit Encoder(Generator& gen) : fc1(4, 8, gen), fc2(8, 3, gen, false) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
};

struct Model : nn::Module<double> {
  Encoder encoder;
  nn::Linear<double> head;
  Parameter<double> scale{Md::Ones(1, 1)};
  explicit Model(Generator& gen) : encoder(gen), head(3, 2, gen) {
    register_module("encoder", encoder);
    register_module("head", head);
    register_parameter("scale", scale);
  }
};

}  // namespace

static_assert(!std::is_copy_constructible_v<nn::Linear<float>>);
static_assert(!std::is_move_constructible_v<nn::Linear<float>>);
static_assert(!std::is_copy_assignable_v<nn::Sequential<float>>);
static_assert(!std::is_move_assignable_v<nn::L0Gate<float>>);
static_assert(!std::is_move_constructible_v<Model>);

TEST_CASE("named_parameters: dotted names, depth first in registration order") {
  Generator gen(1);
  Model model(gen);
  const auto named = model.named_parameters();
  std::vector<std::string> names;
  for (const auto& n : named) names.push_back(n.first);
  CHECK(names == std::vector<std::string>{"scale", "encoder.fc1.weight", "encoder.fc1.bias",
                                          "encoder.fc2.weight", "head.weight", "head.bias"});
  CHECK(named[1].second == &model.encoder.fc1.weight);
  CHECK(named[3].second == &model.encoder.fc2.weight);
  const ParameterList<double> params = model.parameters();
  REQUIRE(params.size() == 6);
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(params[i] == named[i].second);
  CHECK(model.children().size() == 2);
  model.encoder.fc1.weight.grad.setOnes();
  model.zero_grad();
  CHECK(model.encoder.fc1.weight.grad.isZero());
}

TEST_CASE("the library's layers register their parameters") {
  Generator gen(9);
  nn::L0Gate<float> gate(5, gen);
  nn::ConcreteSelector<float> selector(6, 2, gen);
  nn::Linear<float> no_bias(3, 2, gen, false);
  CHECK(gate.named_parameters().at(0).first == "log_alpha");
  CHECK(gate.parameters() == ParameterList<float>{&gate.log_alpha});
  CHECK(selector.parameters() == ParameterList<float>{&selector.logits});
  CHECK(no_bias.parameters() == ParameterList<float>{&no_bias.weight});
}

TEST_CASE("Sequential: PyTorch's names, the composed forward, train and eval everywhere") {
  Generator gen(2), noise(3);
  nn::Sequential<double> seq;
  auto& fc1 = seq.add<nn::Linear<double>>(5, 7, gen);
  seq.add<nn::ReLU<double>>();
  seq.add<nn::Dropout<double>>(0.5, noise);
  auto& fc2 = seq.add<nn::Linear<double>>(7, 2, gen);
  seq.add<nn::Tanh<double>>();
  std::vector<std::string> names;
  for (const auto& n : seq.named_parameters()) names.push_back(n.first);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"});
  CHECK(seq.size() == 5);

  const Md x = test::normal(6, 5, 4);
  Tape<double> tape;
  seq.eval();
  CHECK(!fc1.is_training());
  const Md y = seq(tape.constant(x)).value();
  const Md expected = tanh(fc2(relu(fc1(tape.constant(x))))).value();
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-15);
  seq.train();
  CHECK(seq[2].is_training());
  const Md dropped = seq(tape.constant(x)).value();
  CHECK((dropped - expected).cwiseAbs().maxCoeff() > 1e-3);  // dropout is active again
}

TEST_CASE("a Sequential trains through its parameters()") {
  Generator gen(5);
  nn::Sequential<double> seq;
  seq.add<nn::Linear<double>>(2, 16, gen);
  seq.add<nn::Tanh<double>>();
  seq.add<nn::Linear<double>>(16, 1, gen);
  optim::Adam<double> adam(seq.parameters(), {0.02});
  const Md x = gen.uniform<double>(64, 2, -1.0, 1.0);
  const Md target = (x.col(0).array() * x.col(1).array()).matrix();  // xor-like
  Tape<double> tape;
  double first = 0, last = 0;
  for (int step = 0; step < 400; ++step) {
    tape.clear();
    seq.zero_grad();
    const Var<double> loss = mean(square(seq(tape.constant(x)) - tape.constant(target)));
    tape.backward(loss);
    adam.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.05 * first);
}

TEST_CASE("registering: names must be unique, non-empty and without dots") {
  struct Bad : nn::Module<double> {
    Parameter<double> a{Md::Zero(1, 1)}, b{Md::Zero(1, 1)};
    void add(const std::string& name, Parameter<double>& p) { register_parameter(name, p); }
  };
  Bad bad;
  bad.add("a", bad.a);
  CHECK(test::message_of<ValueError>([&] {
          bad.add("a", bad.b);
        }).find("register_parameter: name 'a' is already registered") != std::string::npos);
  CHECK(test::message_of<ValueError>([&] {
          bad.add("x.y", bad.b);
        }).find("must be non-empty and without a dot") != std::string::npos);
  nn::Sequential<double> empty;
  Tape<double> tape;
  CHECK(test::message_of<ValueError>([&] {
          empty(tape.constant(Md::Zero(1, 1)));
        }).find("nn::Sequential: has no layers") != std::string::npos);
}
