#include "checkpoint.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

namespace vae {
namespace {

/// The first bytes of the binary checkpoint files of releases before 1.1 (no longer read).
constexpr char kBinaryMagic[8] = {'G', 'U', 'M', 'B', 'E', 'L', 'C', 'K'};

/// The text's value when all of it is a number.
bool number_of(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

/// Equal settings: the same text, or numbers of the same value (a setting stored as
/// "0.0010000000" equals one given as 0.001, but "0.0000000000" does not equal 4e-11).
bool same_setting(const std::string& stored, const std::string& given) {
  if (stored == given) return true;
  double a = 0, b = 0;
  return number_of(stored, a) && number_of(given, b) && a == b;
}

/// CheckpointError unless the stored settings are the run's. Files written before blocks
/// existed stored "threads" (which never changed a result) and trained with one block.
void check_settings(const std::string& path, std::map<std::string, std::string> stored,
                    const std::map<std::string, std::string>& expected) {
  if (stored.erase("threads") == 1 && stored.count("blocks") == 0) stored["blocks"] = "1";
  for (const auto& [key, value] : expected) {
    const auto found = stored.find(key);
    const std::string was = found == stored.end() ? "(missing)" : found->second;
    if (!same_setting(was, value)) {
      throw CheckpointError(path + ": written with " + key + " = " + was + ", but this run has " +
                            key + " = " + value +
                            " (use the same settings to resume, or another output folder)");
    }
  }
  for (const auto& [key, value] : stored) {
    if (expected.count(key) == 0) {
      throw CheckpointError(path + ": written with " + key + " = " + value + ", but this run has " +
                            key + " at its default (use the same settings to resume, or another " +
                            "output folder)");
    }
  }
}

/// Columns of the "history" array, one row per epoch.
constexpr gumbel::Index kHistoryColumns = 7;

gumbel::Matrix<double> history_matrix(const std::vector<EpochRecord>& history) {
  gumbel::Matrix<double> m(gumbel::Index(history.size()), kHistoryColumns);
  for (std::size_t i = 0; i < history.size(); ++i) {
    const EpochRecord& r = history[i];
    m.row(gumbel::Index(i)) << double(r.epoch), r.train_loss, r.test_loss, r.temperature, r.seconds,
        r.images_per_second, r.test_nelbo;
  }
  return m;
}

/// The settings and epoch count from the "progress" JSON and the epochs from "history".
Checkpoint parse_progress(const std::string& path, const gumbel::io::NpyArray& progress,
                          const gumbel::io::NpyArray& history) {
  Checkpoint out;
  try {
    const nlohmann::json j = nlohmann::json::parse(progress.bytes);
    out.settings = j.at("settings").get<std::map<std::string, std::string>>();
    const nlohmann::json& epochs = j.at("epochs_done");
    if (!epochs.is_number_integer()) {
      throw CheckpointError(path + ": the progress record's epochs_done is not an integer");
    }
    out.epochs_done = epochs.get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path + ": the progress record is corrupt (" + e.what() + ")");
  }
  if (out.epochs_done < 0) throw CheckpointError(path + ": corrupt checkpoint (negative epochs)");
  if (history.dtype() != "float64" || history.cols != kHistoryColumns) {
    throw CheckpointError(path + ": history must be float64 with " +
                          std::to_string(kHistoryColumns) + " columns");
  }
  const gumbel::Matrix<double> m = history.matrix<double>();
  for (gumbel::Index i = 0; i < m.rows(); ++i) {
    const double epoch = m(i, 0);
    if (!(epoch >= 0 && epoch < 9.0e15) || epoch != std::floor(epoch)) {
      throw CheckpointError(path + ": history row " + std::to_string(i) + " has epoch " +
                            std::to_string(epoch) + ", not a count");
    }
    if (epoch != double(i + 1)) {
      throw CheckpointError(path + ": history row " + std::to_string(i) + " is epoch " +
                            std::to_string(std::int64_t(epoch)) + ", not " + std::to_string(i + 1) +
                            " (corrupt checkpoint)");
    }
    out.history.push_back(
        {std::int64_t(epoch), m(i, 1), m(i, 2), m(i, 3), m(i, 4), m(i, 5), m(i, 6)});
  }
  // One history row per finished epoch: epochs_done is bounded by what the file holds.
  if (out.epochs_done != std::int64_t(out.history.size())) {
    throw CheckpointError(path + ": epochs_done = " + std::to_string(out.epochs_done) +
                          " but the history has " + std::to_string(out.history.size()) +
                          " epochs (corrupt checkpoint)");
  }
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& progress,
                     const gumbel::nn::Module<float>& model, gumbel::optim::Adam<float>& adam) {
  const nlohmann::json j = {{"settings", progress.settings}, {"epochs_done", progress.epochs_done}};
  gumbel::io::save_checkpoint(path, model, adam,
                              {gumbel::io::bytes_to_npy("progress", j.dump(1)),
                               gumbel::io::to_npy("history", history_matrix(progress.history))});
}

Checkpoint load_checkpoint(const std::string& path,
                           const std::map<std::string, std::string>& expected,
                           gumbel::nn::Module<float>& model, gumbel::optim::Adam<float>& adam) {
  try {
    const std::string bytes = gumbel::io::detail::read_all(path);
    if (bytes.compare(0, sizeof kBinaryMagic, kBinaryMagic, sizeof kBinaryMagic) == 0) {
      throw CheckpointError(path +
                            ": a checkpoint of the binary format of releases before 1.1, "
                            "which is no longer read; train again, or resume it with a release "
                            "before 1.1");
    }
    // The progress first, so that other settings are named as such (not as a shape that
    // differs); then the model and Adam, checked in full before either changes.
    std::vector<gumbel::io::NpyArray> arrays = gumbel::io::parse_npz(path, bytes);
    const gumbel::io::NpyArray* progress = nullptr;
    const gumbel::io::NpyArray* history = nullptr;
    for (const gumbel::io::NpyArray& a : arrays) {
      if (a.name == "progress") progress = &a;
      if (a.name == "history") history = &a;
    }
    if (progress == nullptr || history == nullptr) {
      throw CheckpointError(path + ": no progress and history (not a vae_mnist checkpoint?)");
    }
    Checkpoint out = parse_progress(path, *progress, *history);
    check_settings(path, out.settings, expected);
    gumbel::io::load_checkpoint(path, std::move(arrays), model, adam, {"progress", "history"});
    return out;
  } catch (const gumbel::FileError& e) {
    throw CheckpointError(e.what());
  }
}

}  // namespace vae
