// Fits y = 2x + 1 with one linear layer; exits non-zero unless it learned it.
#include <gumbel/gumbel.hpp>
#include <gumbel/version.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>

static_assert(GUMBEL_VERSION ==
                  GUMBEL_VERSION_MAJOR * 10000 + GUMBEL_VERSION_MINOR * 100 + GUMBEL_VERSION_PATCH,
              "GUMBEL_VERSION is assembled from its parts");

/// Instantiates the library's families in float, so that the strict warning flags the consumer
/// builds with see their code: returns the sum of a few outputs (finite when all is well).
static float exercise() {
  using namespace gumbel;
  Generator gen(2);
  Tape<float> tape;
  const Matrix<float> l = gen.normal<float>(8, 5, 0.0f, 1.0f);
  const auto v = tape.variable(l);
  nn::Sequential<float> seq;
  seq.add<nn::Linear<float>>(5, 4, gen);
  seq.add<nn::ReLU<float>>();
  nn::L0Gate<float> gate(4, gen);
  nn::ConcreteSelector<float> selector(5, 2, gen);
  const auto h = gate(seq(v), gen, true);
  auto total = sum(gumbel_softmax(v, 0.5f, gen)) + sum(gumbel_softmax(v, 0.5f, gen, true)) +
               sum(gumbel_rao(v, 0.5f, gen, 3)) + sum(reinmax(v, gen)) +
               sum(straight_through(v, gen)) + sum(relaxed_subset(v, 2, 0.5f, gen)) +
               sum(binary_concrete(v, 0.5f, gen)) + sum(hard_concrete(v, gen)) + sum(h) +
               sum(selector(v, 0.5f, gen, true)) + sum(logsumexp(v)) + sum(softplus(v)) +
               sum(clamp(v, -1.0f, 1.0f)) + kl_uniform(v) + gate.penalty(tape);
  IndexVector index(8);
  index.setZero();
  total = total + sum(categorical_log_prob(v, index)) + sum(embedding(v, index));
  tape.backward(total);
  optim::AdamW<float> adamw(seq.parameters());
  optim::CosineAnnealingLR<float> schedule(adamw, 10);
  optim::clip_grad_norm(seq.parameters(), 1.0);
  adamw.step();
  schedule.step();
  optim::Adam<float> adam(seq.parameters());
  const std::string file =
      (std::filesystem::temp_directory_path() / "gumbel_consumer_exercise.npz").string();
  io::save_checkpoint(file, seq, adam, {io::bytes_to_npy("note", "{}")});
  io::load_checkpoint(file, seq, adam, {"note"});
  io::save(adam, seq, file);
  io::load(adam, seq, file);
  io::save(seq, file);
  io::load(seq, file);
  std::filesystem::remove(file);
  return total.item();
}

int main() {
  if (!std::isfinite(exercise())) return 1;
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
