// Tape overhead: a chain of tiny ops, reported per node (items = nodes). On 1x1 values the
// arithmetic is nothing, so the time is the tape's bookkeeping: recording a node, its arena
// memory and closure, and walking it backward.
#include <benchmark/benchmark.h>

#include <gumbel/gumbel.hpp>

namespace {

constexpr int kChain = 1000;

/// y <- tanh(y * w + y): three nodes a link.
gumbel::Var<float> link(const gumbel::Var<float>& y, const gumbel::Var<float>& w) {
  return gumbel::tanh(gumbel::mul(y, w) + y);
}

void BM_TapeChain(benchmark::State& state) {
  const gumbel::Index size = state.range(0);
  const bool backward = state.range(1) != 0;
  gumbel::Parameter<float> x(gumbel::Matrix<float>::Constant(size, size, 0.5f));
  gumbel::Parameter<float> w(gumbel::Matrix<float>::Constant(size, size, 0.9f));
  gumbel::Tape<float> tape;
  for (auto _ : state) {
    tape.clear();
    const auto wv = tape.parameter(w);
    auto y = tape.parameter(x);
    for (int i = 0; i < kChain; ++i) y = link(y, wv);
    if (backward) tape.backward(gumbel::sum(y));
    benchmark::DoNotOptimize(y.value().data());
  }
  state.SetItemsProcessed(state.iterations() * 3 * kChain);
  state.counters["ns_per_node"] = benchmark::Counter(
      double(state.iterations()) * 3 * kChain,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_TapeChain)
    ->ArgNames({"size", "backward"})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({8, 0})
    ->Args({8, 1})
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
