// The tape's own behaviour: leaves, accumulation, clearing, grad mode.
#include "test_util.hpp"

using namespace gumbel;
using namespace test;

TEST_CASE_TEMPLATE("leaf gradients accumulate across backward calls, intermediates do not", T,
                   float, double) {
  Tape<T> tape;
  const auto x = tape.variable(Matrix<T>::Constant(2, 2, T(3)));
  const auto c = tape.constant(Matrix<T>::Constant(2, 2, T(5)));
  const auto y = mul(x, c);  // intermediate
  const auto loss = sum(y);
  tape.backward(loss);
  CHECK(x.grad() == Matrix<T>::Constant(2, 2, T(5)));
  CHECK(y.grad() == Matrix<T>::Constant(2, 2, T(1)));
  CHECK_FALSE(c.requires_grad());
  tape.backward(loss);
  CHECK(x.grad() == Matrix<T>::Constant(2, 2, T(10)));
  CHECK(y.grad() == Matrix<T>::Constant(2, 2, T(1)));
}

TEST_CASE("a variable used twice receives both contributions") {
  Tape<double> tape;
  const auto x = tape.variable(Md::Constant(1, 3, 2.0));
  tape.backward(sum(mul(x, x) + x));  // d/dx (x^2 + x) = 2x + 1
  CHECK(x.grad() == Md::Constant(1, 3, 5.0));
}

TEST_CASE("parameters accumulate until zero_grad and are read in place") {
  Parameter<double> p(Md::Constant(2, 1, 1.5), "p");
  for (int step = 0; step < 3; ++step) {
    Tape<double> tape;
    tape.backward(sum(square(tape.parameter(p))));
  }
  CHECK(p.grad == Md::Constant(2, 1, 9.0));  // 3 x 2p
  p.zero_grad();
  CHECK(p.grad.isZero());
  p.value(0, 0) = -1;
  Tape<double> tape;
  CHECK(tape.parameter(p).value()(0, 0) == -1);
}

TEST_CASE("clear() invalidates variables and the tape is reused without growing") {
  Tape<float> tape(1024);
  Parameter<float> w(Matrix<float>::Constant(16, 16, 0.01f), "w");
  const Matrix<float> input = Matrix<float>::Ones(32, 16);
  std::size_t reserved_after_warmup = 0;
  for (int step = 0; step < 5; ++step) {
    tape.clear();
    const auto x = tape.constant(input);
    const auto h = relu(linear(x, tape.parameter(w)));
    tape.backward(mean(square(h)));
    CHECK(tape.size() > 3);
    if (step == 1) reserved_after_warmup = tape.bytes_reserved();
    if (step > 1) CHECK(tape.bytes_reserved() == reserved_after_warmup);
  }
  const auto old = tape.scalar(1.0f);
  tape.clear();
  CHECK_FALSE(old.valid());
  CHECK(message_of<TapeError>([&] { (void)old.value(); }).find("cleared") != std::string::npos);
  CHECK(message_of<TapeError>([&] { (void)exp(old); }).find("gumbel::exp") != std::string::npos);
}

TEST_CASE("with gradients disabled nothing is recorded for backward") {
  Tape<double> tape;
  Parameter<double> p(Md::Ones(1, 2), "p");
  tape.set_grad_enabled(false);
  const auto y = sum(square(tape.parameter(p)));
  CHECK_FALSE(y.requires_grad());
  CHECK_THROWS_AS(tape.backward(y), TapeError);
  CHECK(y.item() == 2.0);
}
