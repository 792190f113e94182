// L0 pruning (Louizos, Welling & Kingma 2018) of an MLP on MNIST: 784-300-100-10 with Hard
// Concrete gates (nn::L0Gate) on its 400 hidden units, trained on cross-entropy plus
// lambda / N times the expected number of open gates. A sweep over lambda gives models of
// different sizes; each is scored with its deterministic test-time gates. Writes
// accuracy_vs_kept.svg (test accuracy against the fraction of hidden units kept, with the dense
// model's accuracy), gates.png (which units survive) and metrics.json to the output folder.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <gumbel/gumbel.hpp>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "chart.hpp"
#include "files.hpp"
#include "idx.hpp"
#include "image_grid.hpp"
#include "shuffle.hpp"

namespace {

using gumbel::Index;
using Mat = gumbel::Matrix<float>;
using Var = gumbel::Var<float>;

struct Options {
  std::string data = "data/mnist";
  std::string out = "out/l0_prune";
  std::vector<double> lambdas = {4, 16, 64, 128, 192, 256, 384};  // times 1/N per open gate
  int epochs = 5;
  Index batch_size = 100;
  double lr = 1e-3;
  double gate_lr = 0.05;  // the gates' log_alpha travel several units in a few epochs
  Index train_limit = 0;
  Index test_limit = 0;
  std::uint64_t seed = 1;
};

/// 784 -> 300 -> 100 -> 10 with ReLU; with gates, a Hard Concrete gate on every hidden unit.
struct Mlp {
  gumbel::nn::Linear<float> fc1, fc2, fc3;
  std::optional<gumbel::nn::L0Gate<float>> gate1, gate2;

  Mlp(Index inputs, bool gated, gumbel::Generator& gen)
      : fc1(inputs, 300, gen), fc2(300, 100, gen), fc3(100, 10, gen) {
    if (gated) {
      gate1.emplace(300, gen);
      gate2.emplace(100, gen);
    }
  }

  Var operator()(const Var& x, gumbel::Generator& gen, bool training) {
    Var h = gumbel::relu(fc1(x));
    if (gate1) h = (*gate1)(h, gen, training);
    h = gumbel::relu(fc2(h));
    if (gate2) h = (*gate2)(h, gen, training);
    return fc3(h);
  }

  gumbel::ParameterList<float> weights() {
    gumbel::ParameterList<float> p;
    for (auto* layer : {&fc1, &fc2, &fc3}) {
      for (auto* q : layer->parameters()) p.push_back(q);
    }
    return p;
  }

  /// Units whose test-time gate is not 0, per hidden layer (all units without gates).
  std::pair<Index, Index> kept() const {
    if (!gate1) return {300, 100};
    return {(gate1->gates().array() > 0).count(), (gate2->gates().array() > 0).count()};
  }
};

struct Result {
  double lambda = 0;  // 0 for the dense model
  double accuracy = 0;
  Index kept1 = 0, kept2 = 0;
  double seconds = 0;
  Mat gates1, gates2;  // test-time gates
};

/// Trains one model (gated when lambda > 0) and scores it on the test set.
Result train(double lambda, const examples::Dataset& train_set, const examples::Dataset& test_set,
             const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  const bool gated = lambda > 0;
  gumbel::Generator init(o.seed, 1);
  Mlp model(train_set.images.cols(), gated, init);
  gumbel::optim::Adam<float> adam(model.weights(), {float(o.lr)});
  gumbel::ParameterList<float> gate_params;
  if (gated) gate_params = {&model.gate1->log_alpha, &model.gate2->log_alpha};
  std::optional<gumbel::optim::Adam<float>> gate_adam;
  if (gated) gate_adam.emplace(gate_params, gumbel::optim::AdamOptions<float>{float(o.gate_lr)});
  const Index n = train_set.images.rows();
  const float penalty_weight = float(lambda / double(n));
  std::vector<Index> order(static_cast<std::size_t>(n));
  Mat batch(o.batch_size, train_set.images.cols());
  gumbel::IndexVector labels(o.batch_size);
  gumbel::Tape<float> tape;
  gumbel::Generator noise(o.seed, 2), shuffler(o.seed, 3);
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    examples::shuffle(order, shuffler);
    double loss_sum = 0;
    const Index steps = n / o.batch_size;
    for (Index s = 0; s < steps; ++s) {
      for (Index r = 0; r < o.batch_size; ++r) {
        const Index i = order[std::size_t(s * o.batch_size + r)];
        batch.row(r) = train_set.images.row(i);
        labels(r) = train_set.labels[std::size_t(i)];
      }
      tape.clear();
      for (auto* p : model.weights()) p->grad.setZero();
      for (auto* p : gate_params) p->grad.setZero();
      const Var logits = model(tape.constant(batch), noise, true);
      // cross-entropy = -mean log softmax(logits)[label]
      Var loss = gumbel::scale(gumbel::mean(gumbel::categorical_log_prob(logits, labels)), -1.0f);
      if (gated) {
        const Var open = gumbel::add(model.gate1->penalty(tape), model.gate2->penalty(tape));
        loss = gumbel::add(loss, gumbel::scale(open, penalty_weight));
      }
      tape.backward(loss);
      adam.step();
      if (gate_adam) gate_adam->step();
      loss_sum += double(loss.item());
    }
    const auto [k1, k2] = model.kept();
    std::printf("lambda %-6g epoch %d  loss %.4f  units kept %ld/300 %ld/100\n", lambda, epoch + 1,
                loss_sum / double(steps), long(k1), long(k2));
  }
  Result r;
  r.lambda = lambda;
  Index correct = 0;
  for (Index begin = 0; begin < test_set.images.rows(); begin += 1000) {
    const Index rows = std::min<Index>(1000, test_set.images.rows() - begin);
    tape.clear();
    const Var logits = model(tape.constant(test_set.images.middleRows(begin, rows)), noise, false);
    for (Index i = 0; i < rows; ++i) {
      Index best = 0;
      logits.value().row(i).maxCoeff(&best);
      correct += best == Index(test_set.labels[std::size_t(begin + i)]);
    }
  }
  r.accuracy = double(correct) / double(test_set.images.rows());
  std::tie(r.kept1, r.kept2) = model.kept();
  if (gated) {
    r.gates1 = model.gate1->gates();
    r.gates2 = model.gate2->gates();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app{"L0 pruning of an MLP's hidden units on MNIST with Hard Concrete gates"};
  app.option_defaults()->always_capture_default();
  app.add_option("--data", o.data, "folder with MNIST's IDX files");
  app.add_option("--out", o.out, "output folder");
  app.add_option("--lambdas", o.lambdas,
                 "L0 strengths: the loss adds lambda / N per expected open gate")
      ->check(CLI::PositiveNumber);
  app.add_option("--epochs", o.epochs, "training epochs of each model")->check(CLI::Range(1, 1000));
  app.add_option("--batch-size", o.batch_size, "images per step")
      ->check(CLI::Range(Index{1}, Index{1 << 16}));
  app.add_option("--lr", o.lr, "Adam's learning rate for the weights")->check(CLI::PositiveNumber);
  app.add_option("--gate-lr", o.gate_lr, "Adam's learning rate for the gates' log_alpha")
      ->check(CLI::PositiveNumber);
  app.add_option("--train-limit", o.train_limit, "use at most this many training images (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--test-limit", o.test_limit, "use at most this many test images (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of the initial weights, the gates' noise and shuffles");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  gumbel::set_threads(1);
  Eigen::setNbThreads(1);
  std::filesystem::create_directories(o.out);
  examples::require_writable_dir(o.out);
  const examples::Splits data = examples::load_mnist(o.data, o.train_limit, o.test_limit);
  const examples::Dataset& train_set = data.train;
  const examples::Dataset& test_set = data.test;
  if (train_set.images.rows() < o.batch_size) {
    std::fprintf(stderr, "l0_prune: %ld training images, fewer than a batch of %ld\n",
                 long(train_set.images.rows()), long(o.batch_size));
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<Result> results{train(0, train_set, test_set, o)};
  for (const double lambda : o.lambdas) results.push_back(train(lambda, train_set, test_set, o));

  // Accuracy against the fraction of hidden units kept; the dense model as a flat line.
  const Result& dense = results.front();
  examples::Chart chart{"Test accuracy against hidden units kept (784-300-100-10, L0 gates)",
                        "fraction of the 400 hidden units kept",
                        "test accuracy (%)",
                        false,
                        false,
                        {}};
  examples::Series pruned{"L0 gates, lambda " +
                              [&] {
                                std::ostringstream s;
                                for (std::size_t i = 0; i < o.lambdas.size(); ++i) {
                                  s << (i ? ", " : "") << o.lambdas[i];
                                }
                                return s.str();
                              }(),
                          {},
                          {},
                          true};
  for (std::size_t i = 1; i < results.size(); ++i) {
    pruned.x.push_back(double(results[i].kept1 + results[i].kept2) / 400.0);
    pruned.y.push_back(100.0 * results[i].accuracy);
  }
  examples::Series flat{
      "dense (all 400 units)", {0.0, 1.0}, {100.0 * dense.accuracy, 100.0 * dense.accuracy}, false};
  chart.series = {pruned, flat};
  examples::write_chart(o.out + "/accuracy_vs_kept.svg", chart);

  // Gates: one row per gated model, layer 1's 300 gates as 15 x 20 and layer 2's 100 as 5 x 20.
  const Index models = Index(results.size()) - 1;
  Mat gate_image = Mat::Zero(models, 21 * 20);
  for (Index m = 0; m < models; ++m) {
    const Result& r = results[std::size_t(m + 1)];
    gate_image.block(m, 0, 1, 300) = r.gates1;
    gate_image.block(m, 320, 1, 100) = r.gates2;
  }
  examples::write_image_grid(o.out + "/gates.png", gate_image, 21, 20, models, 6);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json metrics = {{"epochs", o.epochs},
                            {"batch_size", o.batch_size},
                            {"lr", o.lr},
                            {"gate_lr", o.gate_lr},
                            {"seed", o.seed},
                            {"train_images", train_set.images.rows()},
                            {"test_images", test_set.images.rows()},
                            {"seconds", seconds}};
  std::printf("\n%8s %10s %12s %12s %10s\n", "lambda", "accuracy", "layer 1", "layer 2", "seconds");
  for (const Result& r : results) {
    metrics["models"].push_back({{"lambda", r.lambda},
                                 {"test_accuracy", r.accuracy},
                                 {"kept_layer1", r.kept1},
                                 {"kept_layer2", r.kept2},
                                 {"kept_fraction", double(r.kept1 + r.kept2) / 400.0},
                                 {"seconds", r.seconds}});
    std::printf("%8g %9.2f%% %8ld/300 %8ld/100 %10.1f\n", r.lambda, 100.0 * r.accuracy,
                long(r.kept1), long(r.kept2), r.seconds);
  }
  examples::write_file_atomic(o.out + "/metrics.json", metrics.dump(2) + "\n");
  std::printf("total %.1f s; wrote %s/{accuracy_vs_kept.svg,gates.png,metrics.json}\n", seconds,
              o.out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "l0_prune: %s\n", e.what());
  return 1;
}
