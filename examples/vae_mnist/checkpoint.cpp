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

// The binary format: version 2 added EpochRecord::test_nelbo; version 1 files are read with it
// set to NaN.
constexpr char kMagic[8] = {'G', 'U', 'M', 'B', 'E', 'L', 'C', 'K'};
constexpr std::uint32_t kVersion = 2;

/// An epoch's record as version 1 stored it.
struct EpochRecordV1 {
  std::int64_t epoch;
  double train_loss, test_loss, temperature, seconds, images_per_second;
};

/// FNV-1a, 64 bit: detects any corruption of the payload (not tampering).
std::uint64_t fnv1a(const char* data, std::size_t size) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 1099511628211ull;
  }
  return h;
}

class Reader {
 public:
  Reader(const std::string& bytes, std::size_t begin, std::size_t end, const std::string& path)
      : bytes_(bytes), pos_(begin), end_(end), path_(path) {}
  template <class T>
  T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string get_string() {
    const auto n = get<std::uint64_t>();
    need(n);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void get_matrix_into(gumbel::Matrix<float>& m, const std::string& what) {
    const auto rows = get<std::int64_t>();
    const auto cols = get<std::int64_t>();
    if (rows != m.rows() || cols != m.cols()) {
      throw CheckpointError(path_ + ": " + what + " is " + gumbel::shape_str(rows, cols) +
                            " in the checkpoint but " + gumbel::shape_str(m.rows(), m.cols()) +
                            " in the model");
    }
    const std::size_t n = sizeof(float) * std::size_t(m.size());
    need(n);
    std::memcpy(m.data(), bytes_.data() + pos_, n);
    pos_ += n;
  }
  bool at_end() const { return pos_ == end_; }

 private:
  void need(std::size_t n) const {
    if (n > end_ - pos_) throw CheckpointError(path_ + ": truncated or corrupt checkpoint");
  }
  const std::string& bytes_;
  std::size_t pos_;
  std::size_t end_;
  const std::string& path_;
};

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
    out.history.push_back(
        {std::int64_t(epoch), m(i, 1), m(i, 2), m(i, 3), m(i, 4), m(i, 5), m(i, 6)});
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
    if (bytes.compare(0, sizeof kMagic, kMagic, sizeof kMagic) == 0) {
      return parse_checkpoint(bytes, path, expected, adam);
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

std::string frame_checkpoint(const std::string& payload, std::uint32_t version) {
  const std::uint64_t size = payload.size(), sum = fnv1a(payload.data(), payload.size());
  std::string file(kMagic, sizeof kMagic);
  file.append(reinterpret_cast<const char*>(&version), sizeof version);
  file.append(reinterpret_cast<const char*>(&size), sizeof size);
  file += payload;
  file.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  return file;
}

Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path,
                            const std::map<std::string, std::string>& expected,
                            gumbel::optim::Adam<float>& adam) {
  const std::size_t header = sizeof kMagic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
  if (bytes.size() < header + sizeof(std::uint64_t) ||
      std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw CheckpointError(path + ": not a gumbel checkpoint");
  }
  Reader head(bytes, sizeof kMagic, header, path);
  const auto version = head.get<std::uint32_t>();
  if (version < 1 || version > kVersion) {
    throw CheckpointError(path + ": checkpoint version " + std::to_string(version) +
                          " is not supported (expected 1 to " + std::to_string(kVersion) + ")");
  }
  const auto size = head.get<std::uint64_t>();
  if (size != bytes.size() - header - sizeof(std::uint64_t)) {
    throw CheckpointError(path + ": truncated checkpoint (size field disagrees with the file)");
  }
  std::uint64_t stored_sum;
  std::memcpy(&stored_sum, bytes.data() + header + size, sizeof stored_sum);
  if (stored_sum != fnv1a(bytes.data() + header, size)) {
    throw CheckpointError(path + ": checksum mismatch, the checkpoint is corrupt");
  }

  Reader r(bytes, header, header + size, path);
  Checkpoint out;
  const auto n_settings = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n_settings; ++i) {
    std::string key = r.get_string();
    out.settings[key] = r.get_string();
  }
  check_settings(path, out.settings, expected);
  out.epochs_done = r.get<std::int64_t>();
  const auto steps = r.get<std::int64_t>();
  if (out.epochs_done < 0 || steps < 0) {
    throw CheckpointError(path + ": corrupt checkpoint (negative epoch or step count)");
  }
  const auto& params = adam.parameters();
  if (r.get<std::uint64_t>() != params.size()) {
    throw CheckpointError(path + ": holds a different number of parameters than the model");
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string name = "parameter " + std::to_string(i);
    r.get_matrix_into(params[i]->value, name);
    r.get_matrix_into(adam.first_moments()[i], name + " (Adam first moment)");
    r.get_matrix_into(adam.second_moments()[i], name + " (Adam second moment)");
  }
  adam.set_steps(steps);
  const auto n_history = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n_history; ++i) {
    if (version == 1) {
      const auto old = r.get<EpochRecordV1>();
      EpochRecord e;
      e.epoch = old.epoch;
      e.train_loss = old.train_loss;
      e.test_loss = old.test_loss;
      e.temperature = old.temperature;
      e.seconds = old.seconds;
      e.images_per_second = old.images_per_second;
      e.test_nelbo = std::numeric_limits<double>::quiet_NaN();
      out.history.push_back(e);
    } else {
      out.history.push_back(r.get<EpochRecord>());
    }
  }
  if (!r.at_end()) throw CheckpointError(path + ": unexpected bytes at the end of the payload");
  return out;
}

}  // namespace vae
