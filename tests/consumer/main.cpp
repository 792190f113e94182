// Fits y = 2x + 1 with one linear layer; exits non-zero unless it learned it.
#include <gumbel/gumbel.hpp>
#include <gumbel/version.hpp>

#include <cmath>
#include <iostream>

static_assert(GUMBEL_VERSION == GUMBEL_VERSION_MAJOR * 10000 + GUMBEL_VERSION_MINOR * 100 +
                                    GUMBEL_VERSION_PATCH,
              "GUMBEL_VERSION is assembled from its parts");

int main() {
  std::cout << "consumer: gumbel " << GUMBEL_VERSION_STRING << "\n";
  gumbel::Generator gen(1);
  gumbel::nn::Linear<double> layer(1, 1, gen);
  gumbel::optim::SGDOptions<double> options;
  options.lr = 0.1;
  gumbel::optim::SGD<double> sgd(layer.parameters(), options);
  const gumbel::Matrix<double> x = gen.uniform<double>(16, 1, -1.0, 1.0);
  const gumbel::Matrix<double> y = (2 * x.array() + 1).matrix();
  gumbel::Tape<double> tape;
  for (int step = 0; step < 500; ++step) {
    tape.clear();
    sgd.zero_grad();
    const auto loss = gumbel::mean(gumbel::square(layer(tape.constant(x)) - tape.constant(y)));
    tape.backward(loss);
    sgd.step();
  }
  const double w = layer.weight.value(0, 0), b = layer.bias.value(0, 0);
  std::cout << "consumer: learned w = " << w << ", b = " << b << "\n";
  return std::abs(w - 2) < 1e-3 && std::abs(b - 1) < 1e-3 ? 0 : 1;
}
