// Optimizers against trajectories computed by PyTorch 1.13 (torch.optim, float64) on the same
// problem: loss = sum(c * p^2) + 0.1 (sum p)^3 for five steps from the same start.
#include "test_util.hpp"

using namespace gumbel;
using namespace test;

namespace {

template <class Optimizer, class Options>
Md run_five_steps(Options options) {
  Parameter<double> p(Md{{0.5, -1.5}, {2.0, 0.1}}, "p");
  Optimizer opt({&p}, options);
  const Md c{{1, 2}, {3, 4}};
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    Tape<double> tape;
    const auto v = tape.parameter(p);
    const auto s = sum(v);
    tape.backward(sum(mul(tape.constant(c), square(v))) + mul(mul(s, s), s) * 0.1);
    opt.step();
  }
  return p.value;
}

void check_close(const Md& got, std::initializer_list<double> torch_values) {
  const Md expected = Eigen::Map<const Md>(torch_values.begin(), 2, 2);
  INFO("got " << got << "\nexpected " << expected);
  CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-12);
}

}  // namespace

TEST_CASE("Adam follows PyTorch's trajectory") {
  optim::AdamOptions<double> wd;
  wd.lr = 0.1;
  wd.weight_decay = 0.01;
  check_close(run_five_steps<optim::Adam<double>>(wd), {0.030923865452866656, -1.0034494852249292,
                                                        1.5033757424344485, -0.07554157133217568});
  optim::AdamOptions<double> betas;
  betas.lr = 0.05;
  betas.beta1 = 0.5;
  betas.beta2 = 0.9;
  betas.eps = 1e-3;
  check_close(run_five_steps<optim::Adam<double>>(betas),
              {0.2657895145563605, -1.253000861962316, 1.7531974982008178, -0.0476507358392008});
}

TEST_CASE("Adam's step_and_zero_grad is step then zero_grad, bit for bit") {
  Generator gen(4);
  // Larger than one chunk of the fused loop, with a ragged end.
  const Matrix<float> start = gen.normal<float>(70, 50);
  Parameter<float> a(start), b(start);
  optim::Adam<float> fused({&a}), separate({&b});
  for (int step = 0; step < 3; ++step) {
    const Matrix<float> g = gen.normal<float>(70, 50);
    a.grad = g;
    b.grad = g;
    fused.step_and_zero_grad();
    separate.step();
    separate.zero_grad();
    CHECK(a.value == b.value);
    CHECK(a.grad.isZero(0.0f));
  }
}

TEST_CASE("Adam's backward_and_step is backward then step_and_zero_grad, bit for bit") {
  // Traps for updating a parameter while backward still needs it: w2 is recorded twice, and
  // a consumer of its first node lies between the two nodes; v is on the tape but the loss
  // does not reach it; u is not on the tape at all (its moments still move it).
  struct Model {
    Parameter<float> w1, b1, w2, v, u;
    explicit Model(Generator& gen)
        : w1(gen.normal<float>(8, 5)),
          b1(gen.normal<float>(1, 8)),
          w2(gen.normal<float>(3, 8)),
          v(gen.normal<float>(2, 2)),
          u(gen.normal<float>(4, 1)) {}
    ParameterList<float> list() { return {&w1, &b1, &w2, &v, &u}; }
    Var<float> loss(Tape<float>& tape, const Matrix<float>& x) {
      const auto input = tape.constant(x);
      const auto w2_first = tape.parameter(w2);
      const auto early = linear(tanh(tape.constant(Matrix<float>::Ones(4, 8))), w2_first);
      const auto h = relu(linear(input, tape.parameter(w1), tape.parameter(b1)));
      const auto unused = square(tape.parameter(v));
      const auto late = linear(h, tape.parameter(w2));
      (void)unused;
      return sum(square(late)) + sum(mul(early, late));
    }
  };
  Generator init(9);
  Model fused(init);
  Generator init_again(9);
  Model separate(init_again);
  optim::Adam<float> fused_adam(fused.list()), separate_adam(separate.list());
  Generator data(10);
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    const Matrix<float> x = data.normal<float>(4, 5);
    Tape<float> a, b;
    fused_adam.backward_and_step(a, fused.loss(a, x));
    b.backward(separate.loss(b, x));
    separate_adam.step_and_zero_grad();
    const auto pf = fused.list();
    const auto ps = separate.list();
    for (std::size_t i = 0; i < pf.size(); ++i) {
      CAPTURE(i);
      CHECK(pf[i]->value == ps[i]->value);
      CHECK(pf[i]->grad.isZero(0.0f));
    }
  }
}

TEST_CASE("SGD, with momentum, dampening, weight decay and Nesterov, follows PyTorch") {
  optim::SGDOptions<double> plain;
  plain.lr = 0.01;
  check_close(run_five_steps<optim::SGD<double>>(plain),
              {0.4393577746896112, -1.2350822764533267, 1.4563390859130243, 0.054969150382960165});
  optim::SGDOptions<double> momentum = plain;
  momentum.momentum = 0.9;
  momentum.dampening = 0.1;
  momentum.weight_decay = 0.01;
  check_close(run_five_steps<optim::SGD<double>>(momentum),
              {0.3518660186560124, -0.8549804811433025, 0.6856055053853639, -0.0076269144532818});
  optim::SGDOptions<double> nesterov = plain;
  nesterov.momentum = 0.9;
  nesterov.nesterov = true;
  check_close(run_five_steps<optim::SGD<double>>(nesterov),
              {0.3139669581012682, -0.6714638507629817, 0.4018498180820799, -0.017760824906969157});
}

TEST_CASE("invalid hyper-parameters say which and why") {
  Parameter<float> p(Matrix<float>::Zero(1, 1), "p");
  const auto adam_error = [&](auto mutate) {
    optim::AdamOptions<float> o;
    mutate(o);
    return message_of<ValueError>([&] { optim::Adam<float>({&p}, o); });
  };
  CHECK(adam_error([](auto& o) { o.lr = -1; }).find("gumbel::Adam: lr = -1") != std::string::npos);
  CHECK(adam_error([](auto& o) { o.beta1 = 1; }).find("beta1") != std::string::npos);
  CHECK(adam_error([](auto& o) { o.beta2 = NAN; }).find("beta2") != std::string::npos);
  CHECK(adam_error([](auto& o) { o.eps = -1e-8f; }).find("eps") != std::string::npos);
  CHECK(adam_error([](auto& o) { o.weight_decay = -0.1f; }).find("weight_decay") !=
        std::string::npos);
  optim::SGDOptions<float> s;
  s.nesterov = true;
  CHECK(message_of<ValueError>([&] { optim::SGD<float>({&p}, s); }).find("nesterov") !=
        std::string::npos);
  CHECK(message_of<ValueError>([&] { optim::SGD<float>({nullptr}); }).find("null") !=
        std::string::npos);
  optim::Adam<float> adam({&p});
  CHECK_THROWS_AS(adam.set_lr(-0.5f), ValueError);
  CHECK(adam.options().lr == doctest::Approx(1e-3));
}
