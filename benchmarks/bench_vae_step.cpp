// Training the MNIST VAE (batch 100, N = 30, K = 10, the default model) on random images:
// forward, backward and Adam, block by block on the threads, as the example runs them.
//   VaeTrainStep: one step; counts heap allocations per steady-state step (must be 0).
//   VaeEpoch: an epoch-equivalent, 600 steps over 60,000 images gathered in shuffled batches.
// Arguments: estimator (0 soft, 1 straight-through, 2 Gumbel-Rao), threads, blocks.
#include <benchmark/benchmark.h>

#include <numeric>

#include "model.hpp"
#include "support/alloc_counter.hpp"

namespace {

constexpr gumbel::Index kBatch = 100;

struct Trainer {
  explicit Trainer(const benchmark::State& state)
      : estimator(static_cast<vae::Estimator>(state.range(0))),
        init(1),
        model(shape, init),
        adam(model.parameters()),
        noise(2),
        data_parallel(model.parameters(), state.range(2), int(state.range(1))) {
    gumbel::set_threads(int(state.range(1)));
    Eigen::setNbThreads(1);  // products split their rows over our threads, not Eigen's
  }
  ~Trainer() { gumbel::set_threads(gumbel::max_threads()); }

  void step(const vae::Matrix& images) {
    const gumbel::Index blocks = data_parallel.blocks();
    const auto block_loss = [&](gumbel::Tape<float>& tape, gumbel::Index b, gumbel::Index first,
                                gumbel::Index last) {
      gumbel::Generator own =
          blocks == 1 ? gumbel::Generator() : noise.subsequence(std::uint64_t(steps * blocks + b));
      const auto x = tape.constant(images.middleRows(first, last - first));
      return model.forward(x, 0.9f, blocks == 1 ? noise : own, estimator, 10, kBatch).loss;
    };
    benchmark::DoNotOptimize(data_parallel.step(kBatch, block_loss, adam));  // as vae_mnist does
    ++steps;
  }

  vae::Estimator estimator;
  vae::ModelShape shape;
  gumbel::Generator init;
  vae::CategoricalVae model;
  gumbel::optim::Adam<float> adam;
  gumbel::Generator noise;
  gumbel::parallel::DataParallel<float> data_parallel;
  std::int64_t steps = 0;
};

void BM_VaeTrainStep(benchmark::State& state) {
  Trainer t(state);
  const vae::Matrix images = t.init.uniform<float>(kBatch, t.shape.pixels);
  t.step(images);  // warm the tape's arena and the product workspaces
  t.step(images);
  const long before = alloc_counter::count();
  long steps = 0;
  for (auto _ : state) {
    t.step(images);
    ++steps;
  }
  state.counters["allocs_per_step"] = double(alloc_counter::count() - before) / double(steps);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_VaeEpoch(benchmark::State& state) {
  Trainer t(state);
  const gumbel::Index n = 60000;
  const vae::Matrix data = t.init.uniform<float>(n, t.shape.pixels);
  std::vector<gumbel::Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), gumbel::Index{0});
  std::reverse(order.begin(), order.end());  // any fixed non-sequential order will do
  vae::Matrix batch(kBatch, t.shape.pixels);
  for (auto _ : state) {
    for (gumbel::Index begin = 0; begin < n; begin += kBatch) {
      for (gumbel::Index r = 0; r < kBatch; ++r) {
        batch.row(r) = data.row(order[std::size_t(begin + r)]);
      }
      t.step(batch);
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
}

/// The step's matrix products alone (forward, input gradient, weight gradient of each layer),
/// through the same kernel: the GEMM floor of a step, and the sgemm rate in FLOP/s.
void BM_VaeStepProducts(benchmark::State& state) {
  gumbel::set_threads(int(state.range(0)));
  using gumbel::detail::as_operand;
  using gumbel::detail::as_transposed;
  const gumbel::Index widths[] = {784, 512, 256, 300, 256, 512, 784};
  gumbel::Generator gen(5);
  std::vector<vae::Matrix> acts, weights, out, grad_in, grad_w;
  double flops = 0;
  for (int l = 0; l < 6; ++l) {
    const gumbel::Index in = widths[l], outw = widths[l + 1];
    acts.push_back(gen.uniform<float>(kBatch, in));
    weights.push_back(gen.uniform<float>(outw, in));
    out.emplace_back(kBatch, outw);
    grad_in.emplace_back(kBatch, in);
    grad_w.emplace_back(outw, in);
    // The images need no gradient, so the first layer makes two products, the others three.
    flops += (l == 0 ? 2 : 3) * 2.0 * double(kBatch * in * outw);
  }
  const auto map = [](vae::Matrix& m) {
    return gumbel::MatrixMap<float>(m.data(), m.rows(), m.cols());
  };
  for (auto _ : state) {
    for (std::size_t l = 0; l < 6; ++l) {
      gumbel::detail::gemm_accumulate(map(out[l]), as_operand<float>(acts[l]),
                                      as_transposed<float>(weights[l]));
      if (l > 0)
        gumbel::detail::gemm_accumulate(map(grad_in[l]), as_operand<float>(out[l]),
                                        as_operand<float>(weights[l]));
      gumbel::detail::gemm_accumulate(map(grad_w[l]), as_transposed<float>(out[l]),
                                      as_operand<float>(acts[l]));
    }
    benchmark::ClobberMemory();
  }
  state.counters["MFLOP_per_step"] = flops / 1e6;
  state.counters["FLOPS"] =
      benchmark::Counter(flops * double(state.iterations()), benchmark::Counter::kIsRate);
  gumbel::set_threads(gumbel::max_threads());
}

/// Adam's update of the VAE's 1.1 million parameters, alone.
void BM_AdamStep(benchmark::State& state) {
  vae::ModelShape shape;
  gumbel::Generator init(1);
  vae::CategoricalVae model(shape, init);
  gumbel::optim::Adam<float> adam(model.parameters());
  for (auto* p : model.parameters()) p->grad = init.normal<float>(p->rows(), p->cols());
  for (auto _ : state) adam.step();
  gumbel::Index count = 0;
  for (auto* p : model.parameters()) count += p->value.size();
  state.SetItemsProcessed(state.iterations() * count);
}

/// Each estimator on 1 thread and on all, with the example's 2 blocks; for soft also 1 and 4
/// blocks (the cost of blocks on one thread, the scaling of more blocks).
void estimators_and_threads(benchmark::internal::Benchmark* b) {
  b->ArgNames({"estimator", "threads", "blocks"});
  const int all = gumbel::max_threads();
  for (int estimator : {0, 1, 2}) {
    b->Args({estimator, 1, 2});
    if (all > 1) b->Args({estimator, all, 2});
  }
  for (int blocks : {1, 4}) {
    b->Args({0, 1, blocks});
    if (all > 1) b->Args({0, all, blocks});
  }
  b->UseRealTime();
}

BENCHMARK(BM_VaeTrainStep)->Apply(estimators_and_threads)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AdamStep)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VaeStepProducts)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VaeEpoch)->Apply(estimators_and_threads)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
