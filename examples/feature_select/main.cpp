// Concrete autoencoder (Abid, Balin & Zou 2019) on MNIST: a ConcreteSelector picks k of the 784
// pixels and a decoder reconstructs the whole digit from them. The same decoder is then trained
// on k pixels chosen at random and on the k pixels of highest variance, and the three test
// reconstruction errors are compared. Writes selected.png (the chosen pixels over the mean
// digit), reconstructions.png (test digits: original, then each method's reconstruction) and
// metrics.json to the output folder.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <gumbel/gumbel.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

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
  std::string out = "out/feature_select";
  Index k = 50;
  Index hidden = 256;
  int epochs = 20;
  Index batch_size = 256;
  double lr = 1e-3;
  double selector_lr = 1e-2;  // the selector's logits must travel ~10 units in a few epochs
  double tau0 = 10.0;         // the selector's temperature decays exponentially from tau0 ...
  double tau_end = 0.01;      // ... to tau_end at the last step (the authors' schedule)
  Index train_limit = 0;
  Index test_limit = 0;
  std::uint64_t seed = 1;
};

/// The decoder every method shares: k -> hidden (ReLU) -> 784 (sigmoid), trained on the mean
/// squared error of the pixels.
struct Decoder {
  gumbel::nn::Linear<float> fc1, fc2;
  Decoder(Index k, Index hidden, Index pixels, gumbel::Generator& gen)
      : fc1(k, hidden, gen), fc2(hidden, pixels, gen) {}
  Var operator()(const Var& x) { return gumbel::sigmoid(fc2(gumbel::relu(fc1(x)))); }
  gumbel::ParameterList<float> parameters() {
    gumbel::ParameterList<float> p = fc1.parameters();
    for (auto* q : fc2.parameters()) p.push_back(q);
    return p;
  }
};

/// Rows `order[begin, begin + rows)` of `images` into `batch`.
void gather(const Mat& images, const std::vector<Index>& order, Index begin, Mat& batch) {
  for (Index r = 0; r < batch.rows(); ++r) {
    batch.row(r) = images.row(order[std::size_t(begin + r)]);
  }
}

struct Result {
  std::string name;
  std::vector<Index> pixels;
  double test_mse = 0;  // mean over test images and pixels
  double seconds = 0;
  Mat reconstructions;  // of the first test images shown
};

/// Trains `decoder` (and the selector, when there is one) and returns the test error of the
/// final selection. `fixed` holds the pixels of a fixed selection (no selector).
Result train(const std::string& name, const examples::Dataset& train_set,
             const examples::Dataset& test_set, const std::vector<Index>& fixed, const Options& o,
             const Mat& shown) {
  const auto start = std::chrono::steady_clock::now();
  const Index pixels = train_set.images.cols();
  gumbel::Generator gen(o.seed, 1);
  Decoder decoder(o.k, o.hidden, pixels, gen);
  std::unique_ptr<gumbel::nn::ConcreteSelector<float>> selector;
  const gumbel::ParameterList<float> params = decoder.parameters();
  gumbel::optim::Adam<float> adam(params, {float(o.lr)});
  std::unique_ptr<gumbel::optim::Adam<float>> selector_adam;
  if (fixed.empty()) {
    selector = std::make_unique<gumbel::nn::ConcreteSelector<float>>(pixels, o.k, gen);
    selector_adam = std::make_unique<gumbel::optim::Adam<float>>(
        selector->parameters(), gumbel::optim::AdamOptions<float>{float(o.selector_lr)});
  }
  const Index n = train_set.images.rows();
  const Index steps_per_epoch = n / o.batch_size;
  const std::int64_t total = std::int64_t(steps_per_epoch) * o.epochs;
  const gumbel::ExponentialDecay schedule(o.tau0, o.tau_end,
                                          std::log(o.tau0 / o.tau_end) / double(total - 1));
  std::vector<Index> order(static_cast<std::size_t>(n));
  Mat batch(o.batch_size, pixels);
  gumbel::Tape<float> tape;
  gumbel::Generator noise(o.seed, 2), shuffler(o.seed, 3);
  const auto select = [&](const Var& x, float tau, bool training) {
    if (selector) return (*selector)(x, tau, noise, training);
    return x.tape().constant(x.value()(Eigen::all, fixed));
  };
  std::int64_t step = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    examples::shuffle(order, shuffler);
    double loss_sum = 0;
    for (Index s = 0; s < steps_per_epoch; ++s, ++step) {
      gather(train_set.images, order, s * o.batch_size, batch);
      tape.clear();
      for (auto* p : params) p->grad.setZero();
      if (selector) selector->logits.grad.setZero();
      const Var x = tape.constant(batch);
      const Var y = decoder(select(x, float(schedule(step)), true));
      const Var loss = gumbel::mean(gumbel::square(gumbel::sub(y, x)));
      tape.backward(loss);
      adam.step();
      if (selector_adam) selector_adam->step();
      loss_sum += double(loss.item());
    }
    std::printf(
        "%-10s epoch %2d  train mse %.5f%s\n", name.c_str(), epoch + 1,
        loss_sum / double(steps_per_epoch),
        selector ? ("  tau " + std::to_string(schedule(step - 1)).substr(0, 6) + "  mean max p " +
                    std::to_string(selector->mean_max_probability()).substr(0, 5))
                       .c_str()
                 : "");
  }
  Result r;
  r.name = name;
  if (selector) {
    const gumbel::IndexVector idx = selector->selected();
    r.pixels.assign(idx.data(), idx.data() + idx.size());
  } else {
    r.pixels = fixed;
  }
  // Test error with the final, exact selection, in batches.
  double sq = 0;
  for (Index begin = 0; begin < test_set.images.rows(); begin += o.batch_size) {
    const Index rows = std::min(o.batch_size, test_set.images.rows() - begin);
    tape.clear();
    const Var x = tape.constant(test_set.images.middleRows(begin, rows));
    const Var y = decoder(select(x, 1.0f, false));
    sq += double((y.value() - x.value()).squaredNorm());
  }
  r.test_mse = sq / double(test_set.images.size());
  tape.clear();
  r.reconstructions = decoder(select(tape.constant(shown), 1.0f, false)).value();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app{"Concrete autoencoder: select k of MNIST's pixels and reconstruct the digit"};
  app.option_defaults()->always_capture_default();
  app.add_option("--data", o.data, "folder with MNIST's IDX files");
  app.add_option("--out", o.out, "output folder");
  app.add_option("-k,--pixels", o.k, "pixels to select")->check(CLI::Range(Index{1}, Index{784}));
  app.add_option("--hidden", o.hidden, "decoder's hidden units")
      ->check(CLI::Range(Index{1}, Index{1 << 16}));
  app.add_option("--epochs", o.epochs, "training epochs of each model")->check(CLI::Range(1, 1000));
  app.add_option("--batch-size", o.batch_size, "images per step")
      ->check(CLI::Range(Index{1}, Index{1 << 16}));
  app.add_option("--lr", o.lr, "Adam's learning rate")->check(CLI::PositiveNumber);
  app.add_option("--selector-lr", o.selector_lr, "Adam's learning rate for the selector's logits")
      ->check(CLI::PositiveNumber);
  app.add_option("--tau0", o.tau0, "selector's first temperature")->check(CLI::PositiveNumber);
  app.add_option("--tau-end", o.tau_end, "selector's last temperature")->check(CLI::PositiveNumber);
  app.add_option("--train-limit", o.train_limit, "use at most this many training images (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--test-limit", o.test_limit, "use at most this many test images (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of the initial weights, the noise and the shuffles");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (o.tau_end > o.tau0) {
    std::fprintf(stderr, "--tau-end %g must not exceed --tau0 %g\n", o.tau_end, o.tau0);
    std::exit(2);
  }
  return o;
}

/// The chosen pixels (white) over the mean training digit (dimmed), one 28 x 28 panel.
Mat selection_panel(const Mat& mean_digit, const std::vector<Index>& pixels) {
  Mat panel = mean_digit * 0.45f;
  for (const Index p : pixels) panel(0, p) = 1.0f;
  return panel;
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
  const Index pixels = train_set.images.cols();
  if (o.k > pixels) {
    std::fprintf(stderr, "feature_select: -k %ld exceeds the %ld pixels of an image\n", long(o.k),
                 long(pixels));
    return 2;
  }
  if (train_set.images.rows() < o.batch_size) {
    std::fprintf(stderr, "feature_select: %ld training images, fewer than a batch of %ld\n",
                 long(train_set.images.rows()), long(o.batch_size));
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();

  // The two fixed selections: k pixels drawn without replacement, and the k of highest variance.
  gumbel::Generator pick(o.seed, 4);
  const Mat uniform_logits = Mat::Zero(1, pixels);
  const auto top = gumbel::gumbel_top_k(uniform_logits, o.k, pick);
  std::vector<Index> random_pixels(top.data(), top.data() + top.size());
  const Eigen::RowVectorXf mean = train_set.images.colwise().mean();
  const Eigen::RowVectorXf variance =
      (train_set.images.rowwise() - mean).array().square().colwise().mean();
  std::vector<Index> by_variance(static_cast<std::size_t>(pixels));
  std::iota(by_variance.begin(), by_variance.end(), Index{0});
  std::stable_sort(by_variance.begin(), by_variance.end(),
                   [&](Index a, Index b) { return variance(a) > variance(b); });
  by_variance.resize(static_cast<std::size_t>(o.k));

  const Index shown_count = std::min<Index>(10, test_set.images.rows());
  const Mat shown = test_set.images.topRows(shown_count);
  const std::vector<Result> results = {
      train("concrete", train_set, test_set, {}, o, shown),
      train("random", train_set, test_set, random_pixels, o, shown),
      train("variance", train_set, test_set, by_variance, o, shown)};

  // Pictures: the selections, then the originals and each method's reconstructions.
  Mat panels(3, pixels);
  for (std::size_t m = 0; m < 3; ++m) {
    panels.row(Index(m)) = selection_panel(mean, results[m].pixels);
  }
  examples::write_image_grid(o.out + "/selected.png", panels, train_set.rows, train_set.cols, 3, 4);
  Mat grid(4 * shown_count, pixels);
  grid.topRows(shown_count) = shown;
  for (std::size_t m = 0; m < 3; ++m) {
    grid.middleRows(Index(m + 1) * shown_count, shown_count) = results[m].reconstructions;
  }
  examples::write_image_grid(o.out + "/reconstructions.png", grid, train_set.rows, train_set.cols,
                             shown_count, 2);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json metrics = {{"k", o.k},
                            {"epochs", o.epochs},
                            {"hidden", o.hidden},
                            {"batch_size", o.batch_size},
                            {"lr", o.lr},
                            {"selector_lr", o.selector_lr},
                            {"tau0", o.tau0},
                            {"tau_end", o.tau_end},
                            {"seed", o.seed},
                            {"train_images", train_set.images.rows()},
                            {"test_images", test_set.images.rows()},
                            {"seconds", seconds}};
  std::printf("\n%-10s %12s %10s %10s\n", "selection", "test mse", "distinct", "seconds");
  for (const Result& r : results) {
    std::vector<Index> distinct = r.pixels;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    metrics["methods"][r.name] = {{"test_mse", r.test_mse},
                                  {"pixels", r.pixels},
                                  {"distinct_pixels", distinct.size()},
                                  {"seconds", r.seconds}};
    std::printf("%-10s %12.5f %10zu %10.1f\n", r.name.c_str(), r.test_mse, distinct.size(),
                r.seconds);
  }
  examples::write_file_atomic(o.out + "/metrics.json", metrics.dump(2) + "\n");
  std::printf("total %.1f s; wrote %s/{selected.png,reconstructions.png,metrics.json}\n", seconds,
              o.out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "feature_select: %s\n", e.what());
  return 1;
}
