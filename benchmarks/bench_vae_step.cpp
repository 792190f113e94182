// One training step of the MNIST VAE (batch 100, N = 30, K = 10, the default model) on random
// images: forward, backward and Adam, as the example runs it. Reports heap allocations per
// steady-state step as a counter.
#include <benchmark/benchmark.h>

#include "model.hpp"
#include "support/alloc_counter.hpp"

namespace {

void BM_VaeTrainStep(benchmark::State& state) {
  const auto estimator = static_cast<vae::Estimator>(state.range(0));
  gumbel::set_threads(1);  // single thread, like the comparison with PyTorch
  Eigen::setNbThreads(1);
  gumbel::Generator gen(1);
  vae::ModelShape shape;
  vae::CategoricalVae model(shape, gen);
  gumbel::optim::Adam<float> adam(model.parameters());
  const vae::Matrix images = gen.uniform<float>(100, shape.pixels);
  gumbel::Generator noise(2);
  gumbel::Tape<float> tape;
  const auto step = [&] {
    tape.clear();
    adam.zero_grad();
    const auto f = model.forward(tape.constant(images), 0.9f, noise, estimator, 10);
    tape.backward(f.loss);
    adam.step();
    benchmark::DoNotOptimize(f.reconstruction);
  };
  step();  // warm the tape's arena
  step();
  const long before = alloc_counter::count();
  long steps = 0;
  for (auto _ : state) {
    step();
    ++steps;
  }
  state.counters["allocs_per_step"] = double(alloc_counter::count() - before) / double(steps);
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_VaeTrainStep)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("estimator")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
