// Counts heap allocations: a warm tape must record and run a training step without any.
// (Its own binary, because it interposes malloc.)
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "support/alloc_counter.hpp"
#include "test_util.hpp"

using namespace gumbel;

TEST_CASE("a steady-state training step allocates nothing") {
  Generator gen(5);
  nn::Linear<float> l1(12, 16, gen), l2(16, 12, gen);
  ParameterList<float> params = l1.parameters();
  for (auto* p : l2.parameters()) params.push_back(p);
  optim::Adam<float> adam(params);
  const Matrix<float> x = gen.uniform<float>(8, 12);
  Tape<float> tape;
  long during_step = -1;
  for (int step = 0; step < 4; ++step) {
    const long before = alloc_counter::count();
    tape.clear();
    adam.zero_grad();
    const auto input = tape.constant(x);
    const auto q = reshape(l1(input), 32, 4);
    const auto z = reshape(softmax(q), 8, 16);
    const auto logits = l2(relu(z));
    const auto loss = binary_cross_entropy_with_logits(logits, input, Reduction::sum) / 8.0f +
                      kl_uniform(q, Reduction::sum) / 8.0f;
    tape.backward(loss);
    adam.step();
    during_step = alloc_counter::count() - before;
  }
  CHECK(during_step == 0);
}

TEST_CASE("the toolbox's estimators allocate nothing in a steady-state step") {
  Generator gen(6);
  nn::Linear<float> enc(12, 20, gen);
  nn::ConcreteSelector<float> selector(12, 3, gen);
  nn::L0Gate<float> gate(20, gen);
  ParameterList<float> params = enc.parameters();
  params.push_back(&selector.logits);
  params.push_back(&gate.log_alpha);
  optim::Adam<float> adam(params);
  const Matrix<float> x = gen.uniform<float>(8, 12);
  IndexVector index(16);
  for (Index i = 0; i < 16; ++i) index(i) = i % 5;
  const Matrix<float> f = gen.uniform<float>(4, 4);
  MovingAverageBaseline baseline;
  Tape<float> tape;
  long during_step = -1;
  for (int step = 0; step < 4; ++step) {
    const long before = alloc_counter::count();
    tape.clear();
    adam.zero_grad();
    const auto input = tape.constant(x);
    const auto h = gate(enc(input), gen, true);
    const auto logits = reshape(h, 32, 5);
    const auto picked = selector(input, 0.5f, gen, true);
    const auto a = straight_through(logits, gen, 1.0f);
    const auto b = reinmax(logits, gen, 1.0f);
    const auto c = relaxed_subset(logits, 2, 0.5f, gen, step % 2 == 1);
    const auto lp = reshape(categorical_log_prob(reshape(h, 16, 10), index), 4, 4);
    const auto loss = sum(a) + sum(b) + sum(c) + sum(picked) + reinforce(lp, f, baseline) +
                      rloo(lp, f) + gate.penalty(tape);
    tape.backward(loss);
    adam.step();
    during_step = alloc_counter::count() - before;
  }
  CHECK(during_step == 0);
}

// Three layers of the VAE's sizes and their Adam.
struct VaeSizedModel {
  Generator gen{6};
  nn::Linear<float> encoder{784, 512, gen}, latent{512, 300, gen}, decoder{300, 784, gen};
  ParameterList<float> params = all_parameters();
  optim::Adam<float> adam{params};
  const Matrix<float> x = gen.uniform<float>(100, 784);

  ParameterList<float> all_parameters() {
    ParameterList<float> out;
    for (auto* layer : {&encoder, &latent, &decoder}) {
      for (auto* p : layer->parameters()) out.push_back(p);
    }
    return out;
  }
};

// Products this large used to make Eigen allocate its packing buffers on every call, and a
// serial OpenMP region made libgomp allocate a team.
static long allocations_in_vae_sized_step(int threads) {
  set_threads(threads);
  VaeSizedModel m;
  auto& encoder = m.encoder;
  auto& latent = m.latent;
  auto& decoder = m.decoder;
  auto& adam = m.adam;
  const Matrix<float>& x = m.x;
  Generator noise(7);
  Tape<float> tape;
  long during_step = -1;
  for (int step = 0; step < 3; ++step) {
    const long before = alloc_counter::count();
    tape.clear();
    const auto input = tape.constant(x);
    const auto q = reshape(latent(relu(encoder(input))), 3000, 10);
    const auto z = reshape(gumbel_softmax(q, 0.7f, noise), 100, 300);
    const auto loss = binary_cross_entropy_with_logits(decoder(z), input, Reduction::sum) / 100.0f +
                      kl_uniform(q, Reduction::sum) / 100.0f;
    adam.backward_and_step(tape, loss);
    during_step = alloc_counter::count() - before;
  }
  return during_step;
}

TEST_CASE("a step at the VAE's sizes allocates nothing, on 1 and 2 threads") {
  CHECK(allocations_in_vae_sized_step(1) == 0);
  CHECK(allocations_in_vae_sized_step(2) == 0);
}

// The example's step: blocks of the batch on the threads, the sum fused with Adam.
static long allocations_in_data_parallel_step(int threads, Index blocks) {
  VaeSizedModel m;
  auto& encoder = m.encoder;
  auto& latent = m.latent;
  auto& decoder = m.decoder;
  const Matrix<float>& x = m.x;
  parallel::DataParallel<float> data_parallel(m.params, blocks, threads);
  const Generator noise(7);
  long during_step = -1;
  for (std::uint64_t step = 0; step < 3; ++step) {
    const long before = alloc_counter::count();
    data_parallel.step(
        100,
        [&](Tape<float>& tape, Index b, Index first, Index last) {
          Generator own = noise.subsequence(step * std::uint64_t(blocks) + std::uint64_t(b));
          const Index rows = last - first;
          const auto input = tape.constant(x.middleRows(first, rows));
          const auto q = reshape(latent(relu(encoder(input))), rows * 30, 10);
          const auto z = reshape(gumbel_softmax(q, 0.7f, own), rows, 300);
          return binary_cross_entropy_with_logits(decoder(z), input, Reduction::sum) / 100.0f +
                 kl_uniform(q, Reduction::sum) / 100.0f;
        },
        m.adam);
    during_step = alloc_counter::count() - before;
  }
  return during_step;
}

TEST_CASE("a data-parallel step allocates nothing once warm, for 1 and 2 threads and blocks") {
  for (int threads : {1, 2}) {
    for (Index blocks : {1, 2, 4}) {
      CAPTURE(threads);
      CAPTURE(blocks);
      CHECK(allocations_in_data_parallel_step(threads, blocks) == 0);
    }
  }
}
