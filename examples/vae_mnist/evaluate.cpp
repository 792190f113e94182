// The final test bounds of a trained model (after training, and for --evaluate).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "evaluation.hpp"
#include "files.hpp"
#include "idx.hpp"
#include "streams.hpp"
#include "train.hpp"

namespace vae {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

ModelShape model_shape(const Options& o, Index pixels) {
  ModelShape shape;
  shape.pixels = pixels;
  shape.latents = o.latents;
  shape.classes = o.classes;
  shape.linear_logits = o.encoder == "linear";
  return shape;
}

nlohmann::json final_bounds(CategoricalVae& model, const examples::Dataset& test, const Options& o,
                            std::int64_t epochs, const std::filesystem::path& out_dir) {
  const auto start = Clock::now();
  gumbel::Generator gen(o.seed, kFinalBoundStream);
  const auto bounds = test_bounds(model, test, o.eval_samples, gen, !o.quiet);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto [nelbo, nelbo_se] = negated_mean_se(bounds.elbo);
  const auto [iw, iw_se] = negated_mean_se(bounds.iw);
  nlohmann::json settings;
  for (const auto& [key, value] : checkpoint_settings(o)) settings[key] = value;
  nlohmann::json report = {{"samples", o.eval_samples},
                           {"images", test.bytes.rows()},
                           {"nelbo", nelbo},
                           {"nelbo_se", nelbo_se},
                           {"iw_nll", iw},
                           {"iw_nll_se", iw_se},
                           {"kl", bounds.kl.mean()},
                           {"reconstruction", -bounds.reconstruction.mean()},
                           {"epochs", epochs},
                           {"seconds", seconds},
                           {"settings", settings}};
  if (!o.evaluate.empty()) report["model"] = o.evaluate;
  examples::write_file_atomic((out_dir / "bounds.json").string(), report.dump(2) + "\n");
  std::printf(
      "test bounds with %lld codes per image: -ELBO %.3f (se %.3f), -log p(x) <= %.3f "
      "(se %.3f), %.1f s\n",
      static_cast<long long>(o.eval_samples), nelbo, nelbo_se, iw, iw_se, seconds);
  std::fflush(stdout);
  return report;
}

nlohmann::json evaluate_file(const Options& options) {
  validate(options);
  Options o = options;
  gumbel::set_threads(o.threads);
  Eigen::setNbThreads(o.threads);
  const fs::path out_dir(o.output_dir);
  fs::create_directories(out_dir);
  examples::require_writable_dir(out_dir.string());
  examples::Splits splits = examples::load_mnist(o.data_dir, 1, o.test_limit, {false, false});
  examples::Dataset& test = splits.test;
  if (o.binarize != "none") {
    binarize_bytes(test.bytes, gumbel::Generator(o.binarize_seed, kBinarizeTestStream));
  }
  gumbel::Generator init(o.seed, kInitStream);
  CategoricalVae model(model_shape(o, test.bytes.cols()), init);
  // A checkpoint holds the model under "model." beside the optimizer and the progress; a
  // weights file holds the model's arrays alone. Every name and shape is checked either way.
  std::vector<gumbel::io::NpyArray> arrays = gumbel::io::load_npz(o.evaluate);
  std::int64_t epochs = -1;
  const bool checkpoint =
      std::any_of(arrays.begin(), arrays.end(), [](const auto& a) { return a.name == "progress"; });
  if (checkpoint) {
    gumbel::optim::Adam<float> adam(model.parameters());
    std::vector<std::string> extra;
    for (const auto& a : arrays) {
      if (a.name.rfind("model.", 0) != 0 && a.name.rfind("optimizer.", 0) != 0) {
        extra.push_back(a.name);
      }
    }
    const auto kept =
        gumbel::io::load_checkpoint(o.evaluate, std::move(arrays), model, adam, extra);
    const auto progress = kept.find("progress");
    if (progress != kept.end()) {
      const auto j = nlohmann::json::parse(progress->second.bytes, nullptr, false);
      if (j.is_object() && j.contains("epochs_done") && j["epochs_done"].is_number_integer()) {
        epochs = j["epochs_done"].get<std::int64_t>();
      }
    }
  } else {
    gumbel::io::load(model, o.evaluate);
  }
  return final_bounds(model, test, o, epochs, out_dir);
}

}  // namespace vae
