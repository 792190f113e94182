// Gumbel-Softmax sampling throughput (items = logits elements), with the RNG's own ceiling and
// a memory-copy floor of the same bytes beside it.
//
// Arguments: rows, K, threads. Forward runs the sampling node alone on logits that need no
// gradient (recorded without a copy, as PyTorch passes a tensor); forward +
// backward samples from a leaf, reduces with a fixed weighting, sum(y * w), and back-propagates,
// which is what compare_pytorch.py times in PyTorch too.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <gumbel/gumbel.hpp>

namespace {

using gumbel::Index;
using Matrix = gumbel::Matrix<float>;

constexpr Index kShapes[][2] = {{3000, 10}, {1024, 1000}, {64, 32000}};

void shapes_and_threads(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "K", "threads"});
  for (const auto& shape : kShapes) {
    b->Args({shape[0], shape[1], 1});
    if (gumbel::max_threads() > 1) b->Args({shape[0], shape[1], gumbel::max_threads()});
  }
  b->UseRealTime();
}

struct Problem {
  explicit Problem(const benchmark::State& state)
      : rows(state.range(0)), k(state.range(1)), threads(int(state.range(2))) {
    gumbel::set_threads(threads);
    gumbel::Generator init(3);
    logits = init.normal<float>(rows, k);
    weights = init.normal<float>(rows, k);
  }
  ~Problem() { gumbel::set_threads(gumbel::max_threads()); }
  /// `param` on the tape without a gradient and without a copy (a constant would copy it).
  static gumbel::Var<float> no_grad(gumbel::Tape<float>& tape, gumbel::Parameter<float>& param) {
    tape.set_grad_enabled(false);
    const auto v = tape.parameter(param);
    tape.set_grad_enabled(true);
    return v;
  }

  void finish(benchmark::State& state) const {
    state.SetItemsProcessed(state.iterations() * rows * k);
  }
  /// Calls body(first_element, count) over blocks of whole rows, as the sampler splits work.
  template <class Body>
  void for_blocks(Body&& body) const {
    const Index block_rows = gumbel::detail::sampling_block_rows(k);
    const Index blocks = (rows + block_rows - 1) / block_rows;
    gumbel::detail::parallel_rows(blocks, 8 * block_rows * k, [&](Index b) {
      const Index first_row = b * block_rows;
      body(first_row * k, std::min(block_rows, rows - first_row) * k);
    });
  }

  Index rows, k;
  int threads;
  Matrix logits, weights;
};

template <bool Hard>
void BM_GumbelSoftmaxForward(benchmark::State& state) {
  Problem p(state);
  gumbel::Tape<float> tape;
  gumbel::Generator gen(7);
  gumbel::Parameter<float> logits(p.logits);
  const auto sample = [&] {
    tape.clear();
    const auto y = gumbel::gumbel_softmax(p.no_grad(tape, logits), 0.5f, gen, Hard);
    benchmark::DoNotOptimize(y.value().data());
  };
  sample();  // the first pass sizes the tape's arena
  for (auto _ : state) sample();
  p.finish(state);
}

template <bool Hard>
void BM_GumbelSoftmaxForwardBackward(benchmark::State& state) {
  Problem p(state);
  gumbel::Parameter<float> logits(p.logits), weights(p.weights);
  gumbel::Tape<float> tape;
  gumbel::Generator gen(7);
  const auto sample_and_differentiate = [&] {
    tape.clear();
    logits.grad.setZero();
    const auto w = p.no_grad(tape, weights);
    const auto y = gumbel::gumbel_softmax(tape.parameter(logits), 0.5f, gen, Hard);
    tape.backward(gumbel::sum(gumbel::mul(y, w)));
    benchmark::DoNotOptimize(logits.grad.data());
  };
  sample_and_differentiate();
  for (auto _ : state) sample_and_differentiate();
  p.finish(state);
}

/// The generator alone: open uniforms (Gumbel = false) or Gumbel noise, in the blocks of rows
/// the sampler uses.
template <bool Gumbel>
void BM_Noise(benchmark::State& state) {
  Problem p(state);
  gumbel::Generator gen(7);
  Matrix out(p.rows, p.k);
  for (auto _ : state) {
    const std::uint64_t first = gen.advance(gumbel::Generator::blocks_for<float>(out.size()));
    p.for_blocks([&](Index e, Index n) {
      if constexpr (Gumbel) {
        gumbel::gumbel_range(gen, first, e, n, out.data() + e);
      } else {
        gen.uniform_range(first, e, n, out.data() + e);
      }
    });
    benchmark::DoNotOptimize(out.data());
  }
  p.finish(state);
}

/// The physical floor of a forward sample: read the logits once, write the sample once.
void BM_MemoryCopy(benchmark::State& state) {
  Problem p(state);
  Matrix out(p.rows, p.k);
  for (auto _ : state) {
    p.for_blocks([&](Index e, Index n) {
      std::memcpy(out.data() + e, p.logits.data() + e, sizeof(float) * std::size_t(n));
    });
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  p.finish(state);
}

BENCHMARK(BM_GumbelSoftmaxForward<false>)->Name("soft_forward")->Apply(shapes_and_threads);
BENCHMARK(BM_GumbelSoftmaxForward<true>)->Name("hard_forward")->Apply(shapes_and_threads);
BENCHMARK(BM_GumbelSoftmaxForwardBackward<false>)
    ->Name("soft_forward_backward")
    ->Apply(shapes_and_threads);
BENCHMARK(BM_GumbelSoftmaxForwardBackward<true>)
    ->Name("hard_forward_backward")
    ->Apply(shapes_and_threads);
BENCHMARK(BM_Noise<false>)->Name("uniform")->Apply(shapes_and_threads);
BENCHMARK(BM_Noise<true>)->Name("gumbel_noise")->Apply(shapes_and_threads);
BENCHMARK(BM_MemoryCopy)->Name("memory_copy")->Apply(shapes_and_threads);

}  // namespace

BENCHMARK_MAIN();
