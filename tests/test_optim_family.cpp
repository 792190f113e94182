// The optimizer family: parameter groups with their own rates, AdamW's decoupled decay, gradient
// clipping by the global norm, and the learning-rate schedules' values.
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;
using test::message_of;

namespace {

/// grad = 2 c p + 1 (a fixed function of p), for optimizer tests without a tape.
void set_gradients(const ParameterList<double>& params) {
  for (Parameter<double>* p : params) p->grad = (2.0 * p->value.array() + 1.0).matrix();
}

}  // namespace

TEST_CASE("parameter groups move at their own rates") {
  Parameter<double> a(Md::Constant(2, 2, 1.0)), b(Md::Constant(2, 2, 1.0)),
      c(Md::Constant(2, 2, 1.0));
  optim::Adam<double> adam({{{&a}, std::nullopt}, {{&b}, 0.0}, {{&c}, 0.5}}, {0.1});
  CHECK(adam.groups() == 3);
  CHECK(adam.lr(0) == 0.1);
  CHECK(adam.lr(1) == 0.0);
  CHECK(adam.lr(2) == 0.5);
  Parameter<double> ref_a(a.value), ref_c(c.value);
  optim::Adam<double> alone_a({&ref_a}, {0.1}), alone_c({&ref_c}, {0.5});
  for (int step = 0; step < 5; ++step) {
    set_gradients(adam.parameters());
    set_gradients({&ref_a, &ref_c});
    adam.step();
    alone_a.step();
    alone_c.step();
  }
  CHECK(a.value == ref_a.value);  // a group moves exactly as an optimizer of its own
  CHECK(c.value == ref_c.value);
  CHECK(b.value == Md::Constant(2, 2, 1.0));  // rate 0: never moves
  CHECK(message_of<ValueError>([&] {
          optim::Adam<double>({&a, &a});
        }).find("Adam: a parameter appears twice (1 and 0)") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          adam.set_lr(3, 0.1);
        }).find("group 3 does not exist (3 groups)") != std::string::npos);
  optim::SGD<double> sgd({{{&a}, 0.5}, {{&b}, std::nullopt}}, {});
  CHECK(sgd.lr(0) == 0.5);
  CHECK(sgd.lr(1) == 1e-2);
}

TEST_CASE("AdamW shrinks by 1 - lr wd, then takes the plain Adam step") {
  Parameter<double> p(test::normal(3, 4, 1)), ref(p.value);
  optim::AdamWOptions<double> wo;
  wo.lr = 0.05;
  wo.weight_decay = 0.1;
  optim::AdamW<double> adamw({&p}, wo);
  optim::Adam<double> adam({&ref}, {0.05});  // no decay
  for (int step = 0; step < 20; ++step) {
    set_gradients({&p});
    ref.grad = p.grad;  // the gradient at the AdamW iterate
    ref.value = (p.value.array() * (1 - 0.05 * 0.1)).matrix();
    adamw.step();
    adam.step();
    CHECK(p.value == ref.value);
    ref.value = p.value;
  }
  CHECK(optim::AdamWOptions<float>().weight_decay == doctest::Approx(1e-2));  // PyTorch's default
  // With a zero gradient AdamW shrinks a weight by exactly 1 - lr wd; coupled Adam instead feeds
  // g = wd p into its moments and takes a first step of about lr.
  Parameter<double> q(Md::Ones(1, 1)), r(Md::Ones(1, 1));
  optim::AdamW<double> w({&q}, wo);
  optim::AdamOptions<double> coupled;
  coupled.lr = 0.05;
  coupled.weight_decay = 0.1;
  optim::Adam<double> l2({&r}, coupled);
  w.step();
  l2.step();
  CHECK(q.value(0, 0) == doctest::Approx(1 - 0.005).epsilon(1e-15));
  CHECK(std::abs(r.value(0, 0) - (1 - 0.05)) < 1e-8);  // first step: lr g / (|g| + eps)
}

TEST_CASE("clip_grad_norm: the global norm, PyTorch's coefficient, nothing below the bound") {
  Parameter<double> a(Md::Zero(1, 2)), b(Md::Zero(2, 1));
  a.grad = Md{{3.0, 0.0}};
  b.grad = Md{{0.0}, {4.0}};
  CHECK(optim::clip_grad_norm<double>({&a, &b}, 10.0) == 5.0);
  CHECK(a.grad == Md{{3.0, 0.0}});  // below the bound: unchanged
  CHECK(optim::clip_grad_norm<double>({&a, &b}, 1.0) == 5.0);
  const double k = 1.0 / (5.0 + 1e-6);
  CHECK(a.grad(0, 0) == 3.0 * k);
  CHECK(b.grad(1, 0) == 4.0 * k);
  CHECK(std::abs(std::hypot(a.grad(0, 0), b.grad(1, 0)) - 1.0) < 1e-6);
  b.grad(0, 0) = NAN;
  CHECK(std::isnan(optim::clip_grad_norm<double>({&a, &b}, 1.0)));
  CHECK(message_of<ValueError>([&] {
          optim::clip_grad_norm<double>({&a}, -1.0);
        }).find("max_norm") != std::string::npos);
}

TEST_CASE("learning-rate schedules give PyTorch's rates, per group") {
  Parameter<double> a(Md::Zero(1, 1)), b(Md::Zero(1, 1));
  const auto rates = [](optim::LRScheduler<double>& s, int epochs, std::size_t group) {
    std::vector<double> out{s.lr(group)};
    for (int e = 0; e < epochs; ++e) {
      s.step();
      out.push_back(s.lr(group));
    }
    return out;
  };
  const auto close = [](const std::vector<double>& got, const std::vector<double>& expected) {
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("epoch " << i << ": " << got[i] << " vs " << expected[i]);
      CHECK(std::abs(got[i] - expected[i]) <= 1e-15 * std::abs(expected[i]) + 1e-18);
    }
  };
  {
    optim::SGD<double> sgd({{{&a}, 0.1}, {{&b}, 1.0}}, {});
    optim::StepLR<double> s(sgd, 2, 0.5);
    close(rates(s, 5, 0), {0.1, 0.1, 0.05, 0.05, 0.025, 0.025});
    CHECK(sgd.lr(1) == 0.25);  // the other group, from its own base 1.0
  }
  {
    optim::SGD<double> sgd({&a}, {1.0});
    optim::ExponentialLR<double> s(sgd, 0.9);
    close(rates(s, 3, 0), {1.0, 0.9, 0.81, 0.729});
  }
  {
    optim::SGD<double> sgd({&a}, {1.0});
    optim::CosineAnnealingLR<double> s(sgd, 4);
    close(rates(s, 4, 0), {1.0, 0.5 + 0.5 * std::sqrt(0.5), 0.5, 0.5 - 0.5 * std::sqrt(0.5), 0.0});
  }
  {
    optim::Adam<double> adam({&a}, {0.4});
    optim::LinearLR<double> s(adam, 0.25, 1.0, 3);
    close(rates(s, 4, 0), {0.1, 0.2, 0.3, 0.4, 0.4});
  }
  optim::SGD<double> sgd({&a}, {1.0});
  CHECK(message_of<ValueError>([&] {
          optim::StepLR<double>(sgd, 0);
        }).find("StepLR: step_size = 0 must be >= 1") != std::string::npos);
  CHECK(message_of<ValueError>([&] { optim::LinearLR<double>(sgd, 0.0); }).find("start_factor") !=
        std::string::npos);
}

TEST_CASE("clip_grad_norm refuses a null parameter pointer as the optimizers do") {
  Parameter<double> a(Md::Constant(1, 2, 1.0));
  a.grad = Md::Constant(1, 2, 3.0);
  CHECK(message_of<ValueError>([&] {
          optim::clip_grad_norm(ParameterList<double>{&a, nullptr}, 1.0);
        }).find("clip_grad_norm: parameter pointer 1 is null") != std::string::npos);
  CHECK(a.grad == Md::Constant(1, 2, 3.0));  // nothing clipped before the error
  CHECK(optim::clip_grad_norm(ParameterList<double>{}, 1.0) == 0.0);  // PyTorch: 0 for none
}

TEST_CASE_TEMPLATE("Adam keeps a subnormal second moment while the first is not 0 (eps = 0)", T,
                   float, double) {
  // g^2 is subnormal in float (1e-40) and a normal number in double; PyTorch moves the
  // parameter by lr in both (m / sqrt(v) = g / |g| on the first step).
  Parameter<T> p(Matrix<T>::Constant(1, 1, T(1)));
  optim::AdamOptions<T> options;
  options.lr = T(1e-3);
  options.eps = T(0);
  optim::Adam<T> adam({&p}, options);
  for (int step = 1; step <= 3; ++step) {
    p.grad = Matrix<T>::Constant(1, 1, T(1e-20));
    adam.step();
    INFO("step " << step);
    CHECK(std::isfinite(p.value(0, 0)));
    CHECK(std::abs(p.value(0, 0) - (T(1) - T(step) * T(1e-3))) < T(1e-5));
  }
  // A gradient that stays 0 after some steps: m reaches 0, then v is flushed (eps > 0 keeps
  // the update 0 either way), and the parameter stays finite and unmoved.
  Parameter<T> q(Matrix<T>::Constant(1, 1, T(1)));
  optim::Adam<T> decaying({&q}, optim::AdamOptions<T>{});
  q.grad = Matrix<T>::Constant(1, 1, T(1));
  decaying.step();
  const T after_one = q.value(0, 0);
  for (int step = 0; step < 8000; ++step) {  // 0.9^8000 is below double's smallest normal
    q.grad.setZero();
    decaying.step();
  }
  CHECK(decaying.first_moments()[0](0, 0) == T(0));
  CHECK(std::isfinite(q.value(0, 0)));
  CHECK(q.value(0, 0) <= after_one);
}

TEST_CASE("a schedule whose rate overflows the type names itself and changes nothing") {
  Parameter<float> p(gumbel::Matrix<float>::Constant(1, 1, 1.0f));
  optim::Adam<float> adam({&p}, {1.0f});
  optim::ExponentialLR<float> schedule(adam, 1e10);  // 1e10^4 > FLT_MAX
  for (int e = 0; e < 3; ++e) schedule.step();
  const float before = adam.lr();
  const std::string message = message_of<ValueError>([&] { schedule.step(); });
  INFO(message);
  CHECK(message.find("ExponentialLR: the learning rate of group 0 at epoch 4") !=
        std::string::npos);
  CHECK(message.find("Adam") == std::string::npos);  // the schedule, not the optimizer
  CHECK(schedule.epoch() == 3);
  CHECK(adam.lr() == before);
}
