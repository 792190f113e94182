// How cost grows with work, one thread: a VAE training step against the batch size and the
// hidden width, and a soft Gumbel-Softmax forward sample against the number of classes K at a
// fixed 2^20 logits per sample, beside a copy of the same bytes (the floor). benchmarks/scaling.py
// runs it beside PyTorch and draws the pictures of docs/performance.md.
//   scaling_step/batch:B/hidden:H   encoder 784-H-H/2-300, decoder 300-H/2-H-784, N = 30, K = 10
//   scaling_sample/K:k              soft forward of 2^20 / k rows of k logits (tau = 0.5)
//   scaling_copy/K:k                memcpy of the same 2^20 floats
#include <benchmark/benchmark.h>

#include <cstring>

#include "model.hpp"

namespace {

using gumbel::Index;

void BM_Step(benchmark::State& state) {
  gumbel::set_threads(1);
  vae::ModelShape shape;
  shape.hidden1 = state.range(1);
  shape.hidden2 = state.range(1) / 2;
  gumbel::Generator init(1), noise(2);
  vae::CategoricalVae model(shape, init);
  gumbel::optim::Adam<float> adam(model.parameters());
  gumbel::Tape<float> tape;
  const vae::Matrix images = init.uniform<float>(state.range(0), shape.pixels);
  const auto step = [&] {
    tape.clear();
    const auto f = model.forward(tape.constant(images), 0.9f, noise, vae::Estimator::soft, 10);
    adam.backward_and_step(tape, f.loss);
    benchmark::DoNotOptimize(f.reconstruction);
  };
  step();  // size the arena and the product workspaces
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

constexpr Index kElements = Index{1} << 20;

void BM_Sample(benchmark::State& state) {
  gumbel::set_threads(1);
  const Index k = state.range(0);
  gumbel::Generator init(3), gen(7);
  gumbel::Parameter<float> logits(init.normal<float>(kElements / k, k));
  gumbel::Tape<float> tape;
  const auto sample = [&] {
    tape.clear();
    tape.set_grad_enabled(false);
    const auto y = gumbel::gumbel_softmax(tape.parameter(logits), 0.5f, gen);
    tape.set_grad_enabled(true);
    benchmark::DoNotOptimize(y.value().data());
  };
  sample();
  for (auto _ : state) sample();
  state.SetItemsProcessed(state.iterations() * kElements);
}

void BM_Copy(benchmark::State& state) {
  gumbel::Generator init(3);
  const gumbel::Matrix<float> from = init.normal<float>(kElements / state.range(0), state.range(0));
  gumbel::Matrix<float> to(from.rows(), from.cols());
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), sizeof(float) * std::size_t(kElements));
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kElements);
}

void step_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "hidden"});
  for (const int batch : {10, 20, 50, 100, 200, 500, 1000, 2000}) b->Args({batch, 512});
  for (const int hidden : {64, 128, 256, 1024, 2048}) b->Args({100, hidden});
  b->Unit(benchmark::kMillisecond);
}

void k_args(benchmark::internal::Benchmark* b) {
  b->ArgName("K");
  for (Index k = 2; k <= 65536; k *= 2) b->Arg(k);
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_Step)->Name("scaling_step")->Apply(step_args);
BENCHMARK(BM_Sample)->Name("scaling_sample")->Apply(k_args);
BENCHMARK(BM_Copy)->Name("scaling_copy")->Apply(k_args);

BENCHMARK_MAIN();
