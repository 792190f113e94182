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

TEST_CASE_TEMPLATE("intermediate gradients: first writer assigns, others add, unreached are zero",
                   T, float, double) {
  // Intermediate gradients are not zeroed before backward; this pins the bookkeeping that
  // replaces the zeroing: fan-out, one op using a node twice, a reshape sharing the gradient,
  // both operands of kl_categorical being one node, a branch the loss does not use, and a
  // second backward over the same tape.
  Tape<T> tape;
  Matrix<T> x0(2, 3);
  x0 << T(0.1), T(-0.2), T(0.3), T(0.4), T(-0.5), T(0.6);
  const auto x = tape.variable(x0);
  const auto h = exp(x);
  const auto unused = exp(h);
  const auto loss = sum(mul(h, h)) + sum(scale(h, T(3))) + sum(reshape(h, 3, 2)) +
                    sum(kl_categorical(h, h, Reduction::none));
  const Matrix<T> hv = x0.array().exp().matrix();
  const Matrix<T> dh = (T(2) * hv.array() + T(4)).matrix();  // d/dh (h^2 + 3h + h + 0)
  const Matrix<T> dx = (dh.array() * hv.array()).matrix();
  const T rel = std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
  for (int pass = 1; pass <= 2; ++pass) {
    CAPTURE(pass);
    tape.backward(loss);
    CHECK(h.grad().isApprox(dh, rel));
    CHECK(x.grad().isApprox(T(pass) * dx, rel));
    CHECK(unused.grad().isZero(0));
  }
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

TEST_CASE("the arena keeps every allocation aligned and intact across a merge") {
  // Small blocks first, then one of 4 MB (a block of its own, on huge pages where the system
  // allows); after reset() the spilled blocks merge and the same pass fits in one block.
  Arena arena(1024);
  const std::size_t sizes[] = {10, 3000, std::size_t{1} << 20, 7};
  const auto pass = [&] {
    float* arrays[4];
    for (int a = 0; a < 4; ++a) {
      arrays[a] = arena.allocate_array<float>(sizes[a]);
      CHECK(reinterpret_cast<std::uintptr_t>(arrays[a]) % Arena::alignment == 0);
      for (std::size_t j = 0; j < sizes[a]; ++j) arrays[a][j] = float(j % 1000 + sizes[a]);
    }
    std::size_t overwritten = 0;  // by another allocation
    for (int a = 0; a < 4; ++a) {
      for (std::size_t j = 0; j < sizes[a]; ++j) {
        overwritten += arrays[a][j] != float(j % 1000 + sizes[a]);
      }
    }
    CHECK(overwritten == 0);
  };
  pass();
  arena.reset();
  const std::size_t merged = arena.capacity();
  CHECK(merged >= (std::size_t{4} << 20) + 3017 * sizeof(float));
  pass();
  arena.reset();
  pass();
  CHECK(arena.capacity() == merged);  // the merged block served both later passes
}
