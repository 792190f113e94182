// Every op's gradient against central finite differences, in double, on several shapes.
#include "test_util.hpp"

using namespace gumbel;
using namespace test;

namespace {

void for_each_shape(const std::function<void(Index, Index, std::uint64_t)>& body) {
  std::uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    body(s.rows, s.cols, seed++);
  }
}

}  // namespace

TEST_CASE("gradients of unary elementwise ops and activations") {
  for_each_shape([](Index r, Index c, std::uint64_t seed) {
    const Md x = normal(r, c, seed);
    const Md positive = uniform(r, c, seed, 0.2, 3.0);
    require_gradients([](Tape<double>&, const Inputs& v) { return exp(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return log(v[0]); }, {positive});
    require_gradients([](Tape<double>&, const Inputs& v) { return square(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return scale(v[0], -2.5); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return shift(v[0], 0.75); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return 1.0 - v[0] / 4.0; }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return relu(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return sigmoid(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return tanh(v[0]); }, {x});
  });
}

TEST_CASE("gradients of binary elementwise ops, with every broadcast") {
  for_each_shape([](Index r, Index c, std::uint64_t seed) {
    const Md a = normal(r, c, seed);
    const std::vector<Md> others = {
        uniform(r, c, seed + 1, 0.5, 2.0), uniform(1, c, seed + 2, 0.5, 2.0),
        uniform(r, 1, seed + 3, 0.5, 2.0), uniform(1, 1, seed + 4, 0.5, 2.0)};
    for (const Md& b : others) {
      CAPTURE(b.rows());
      CAPTURE(b.cols());
      require_gradients([](Tape<double>&, const Inputs& v) { return v[0] + v[1]; }, {a, b});
      require_gradients([](Tape<double>&, const Inputs& v) { return v[0] - v[1]; }, {a, b});
      require_gradients([](Tape<double>&, const Inputs& v) { return mul(v[0], v[1]); }, {a, b});
      require_gradients([](Tape<double>&, const Inputs& v) { return v[0] / v[1]; }, {a, b});
      // The broadcast operand on the left.
      require_gradients([](Tape<double>&, const Inputs& v) { return v[1] - v[0]; }, {a, b});
      require_gradients([](Tape<double>&, const Inputs& v) { return v[1] / v[0]; },
                        {uniform(r, c, seed + 5, 0.5, 2.0), b});
    }
  });
}

TEST_CASE("gradients of reductions") {
  for_each_shape([](Index r, Index c, std::uint64_t seed) {
    const Md x = normal(r, c, seed);
    require_gradients([](Tape<double>&, const Inputs& v) { return sum(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return mean(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return sum_rows(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return mean_rows(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return sum_cols(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return mean_cols(v[0]); }, {x});
  });
}

TEST_CASE("gradients of matmul and linear") {
  for_each_shape([](Index r, Index c, std::uint64_t seed) {
    const Md x = normal(r, c, seed);
    const Md w = normal(4, c, seed + 1);
    const Md b = normal(1, 4, seed + 2);
    require_gradients([](Tape<double>&, const Inputs& v) { return matmul(v[0], v[1]); },
                      {x, normal(c, 3, seed + 3)});
    require_gradients([](Tape<double>&, const Inputs& v) { return linear(v[0], v[1], v[2]); },
                      {x, w, b});
    require_gradients([](Tape<double>&, const Inputs& v) { return linear(v[0], v[1]); }, {x, w});
  });
}

TEST_CASE("gradients of softmax, log_softmax and reshape") {
  for_each_shape([](Index r, Index c, std::uint64_t seed) {
    const Md x = normal(r, c, seed, 2.0);
    require_gradients([](Tape<double>&, const Inputs& v) { return softmax(v[0]); }, {x});
    require_gradients([](Tape<double>&, const Inputs& v) { return log_softmax(v[0]); }, {x});
    // Reshape to a single row and back through an op that mixes elements of a row.
    const Index n = r * c;
    require_gradients([n](Tape<double>&, const Inputs& v) { return softmax(reshape(v[0], 1, n)); },
                      {x});
  });
  // The VAE's view: (B, N*K) -> (B*N, K).
  require_gradients(
      [](Tape<double>&, const Inputs& v) { return reshape(softmax(reshape(v[0], 12, 5)), 4, 15); },
      {normal(4, 15, 9)});
}

TEST_CASE("gradients of softmax and log_softmax with masked (-inf) classes stay finite") {
  Md x = normal(6, 5, 3);
  x(0, 1) = -INFINITY;
  x(3, 0) = -INFINITY;
  x(3, 4) = -INFINITY;
  for (const bool log_space : {false, true}) {
    Tape<double> tape;
    const Var<double> v = tape.variable(x);
    const Var<double> y = log_space ? log_softmax(v) : softmax(v);
    // Weight only finite outputs, as any sane downstream use of log-probabilities does.
    const Md w = (x.array() > -INFINITY).select(normal(6, 5, 4), 0.0);
    tape.backward(sum(mul(y, tape.constant(w))));
    CHECK(v.grad().allFinite());
    if (!log_space) CHECK(v.grad()(0, 1) == 0.0);
  }
}

TEST_CASE("gradients of the losses") {
  for_each_shape([](Index r, Index c, std::uint64_t seed) {
    const Md p = uniform(r, c, seed, 0.05, 0.95);
    const Md t = uniform(r, c, seed + 1, 0.0, 1.0);
    const Md x = normal(r, c, seed + 2, 3.0);
    for (const Reduction red : {Reduction::none, Reduction::sum, Reduction::mean}) {
      require_gradients(
          [red](Tape<double>&, const Inputs& v) { return binary_cross_entropy(v[0], v[1], red); },
          {p, t});
      require_gradients(
          [red](Tape<double>&, const Inputs& v) {
            return binary_cross_entropy_with_logits(v[0], v[1], red);
          },
          {x, t});
      require_gradients([red](Tape<double>&, const Inputs& v) { return kl_uniform(v[0], red); },
                        {x});
      require_gradients(
          [red](Tape<double>&, const Inputs& v) { return kl_categorical(v[0], v[1], red); },
          {x, normal(r, c, seed + 3, 2.0)});
    }
  });
}

TEST_CASE("gradient of a small network composed of many ops") {
  const Md x = uniform(8, 6, 1, 0.0, 1.0);
  const auto net = [x](Tape<double>& tape, const Inputs& v) {
    const Var<double> h = relu(linear(tape.constant(x), v[0], v[1]));
    const Var<double> logits = linear(h, v[2], v[3]);
    const Var<double> q = reshape(logits, 8 * 2, 3);
    const Var<double> recon = sigmoid(linear(reshape(softmax(q), 8, 6), v[4], v[5]));
    return binary_cross_entropy(recon, tape.constant(x), Reduction::sum) / 8.0 +
           kl_uniform(q, Reduction::sum) / 8.0;
  };
  require_gradients(net, {normal(5, 6, 2, 0.5), normal(1, 5, 3, 0.1), normal(6, 5, 4, 0.5),
                          normal(1, 6, 5, 0.1), normal(6, 6, 6, 0.5), normal(1, 6, 7, 0.1)});
}
