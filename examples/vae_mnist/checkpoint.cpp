#include "checkpoint.hpp"

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

class Writer {
 public:
  template <class T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void put_string(const std::string& s) {
    put<std::uint64_t>(s.size());
    bytes_ += s;
  }
  void put_matrix(const gumbel::Matrix<float>& m) {
    put<std::int64_t>(m.rows());
    put<std::int64_t>(m.cols());
    bytes_.append(reinterpret_cast<const char*>(m.data()), sizeof(float) * std::size_t(m.size()));
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

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

/// CheckpointError unless the stored settings are the run's.
void check_settings(const std::string& path, const std::map<std::string, std::string>& stored,
                    const std::map<std::string, std::string>& expected) {
  for (const auto& [key, value] : expected) {
    const auto found = stored.find(key);
    const std::string was = found == stored.end() ? "(missing)" : found->second;
    if (!same_setting(was, value)) {
      throw CheckpointError(path + ": written with " + key + " = " + was +
                            ", but this run has " + key + " = " + value +
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

/// The progress as JSON text; NaN (a version 1 history's test_nelbo) is written as null.
std::string progress_json(const Checkpoint& progress) {
  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : progress.history) {
    history.push_back({{"epoch", r.epoch},
                       {"train_loss", r.train_loss},
                       {"test_loss", r.test_loss},
                       {"temperature", r.temperature},
                       {"seconds", r.seconds},
                       {"images_per_second", r.images_per_second},
                       {"test_nelbo", r.test_nelbo}});
  }
  const nlohmann::json j = {
      {"settings", progress.settings}, {"epochs_done", progress.epochs_done}, {"history", history}};
  return j.dump(1);
}

/// The progress from its JSON text; CheckpointError naming the file when anything is missing.
Checkpoint parse_progress(const std::string& path, const std::string& text) {
  Checkpoint out;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    out.settings = j.at("settings").get<std::map<std::string, std::string>>();
    out.epochs_done = j.at("epochs_done").get<std::int64_t>();
    for (const nlohmann::json& e : j.at("history")) {
      const auto number = [&](const char* key) {
        const nlohmann::json& v = e.at(key);
        return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
      };
      EpochRecord r;
      r.epoch = e.at("epoch").get<std::int64_t>();
      r.train_loss = number("train_loss");
      r.test_loss = number("test_loss");
      r.temperature = number("temperature");
      r.seconds = number("seconds");
      r.images_per_second = number("images_per_second");
      r.test_nelbo = number("test_nelbo");
      out.history.push_back(r);
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path + ": the progress record is corrupt (" + e.what() + ")");
  }
  if (out.epochs_done < 0) throw CheckpointError(path + ": corrupt checkpoint (negative epochs)");
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& progress,
                     const gumbel::nn::Module<float>& model,
                     const gumbel::optim::Adam<float>& adam) {
  gumbel::io::save_checkpoint(path, model, adam,
                              {gumbel::io::bytes_to_npy("progress", progress_json(progress))});
}

Checkpoint load_checkpoint(const std::string& path,
                           const std::map<std::string, std::string>& expected,
                           gumbel::nn::Module<float>& model, gumbel::optim::Adam<float>& adam) {
  try {
    std::string bytes = gumbel::io::detail::read_all(path);
    if (bytes.compare(0, sizeof kMagic, kMagic, sizeof kMagic) == 0) {
      return parse_checkpoint(bytes, path, expected, adam);
    }
    bytes.clear();
    // The progress first: other settings are named as such, not as a shape that differs.
    Checkpoint out;
    bool found = false;
    for (const gumbel::io::NpyArray& a : gumbel::io::load_npz(path)) {
      if (a.name != "progress") continue;
      out = parse_progress(path, a.bytes);
      found = true;
    }
    if (!found) throw CheckpointError(path + ": no progress record (not a vae_mnist checkpoint?)");
    check_settings(path, out.settings, expected);
    gumbel::io::load_checkpoint(path, model, adam, {"progress"});
    return out;
  } catch (const gumbel::FileError& e) {
    throw CheckpointError(e.what());
  }
}

std::string legacy_checkpoint_bytes(const Checkpoint& progress,
                                    const gumbel::optim::Adam<float>& adam, std::uint32_t version) {
  Writer payload;
  payload.put<std::uint64_t>(progress.settings.size());
  for (const auto& [key, value] : progress.settings) {
    payload.put_string(key);
    payload.put_string(value);
  }
  payload.put<std::int64_t>(progress.epochs_done);
  payload.put<std::int64_t>(adam.steps());
  const auto& params = adam.parameters();
  payload.put<std::uint64_t>(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    payload.put_matrix(params[i]->value);
    payload.put_matrix(adam.first_moments()[i]);
    payload.put_matrix(adam.second_moments()[i]);
  }
  payload.put<std::uint64_t>(progress.history.size());
  for (const EpochRecord& r : progress.history) {
    if (version == 1) {
      payload.put(EpochRecordV1{r.epoch, r.train_loss, r.test_loss, r.temperature, r.seconds,
                                r.images_per_second});
    } else {
      payload.put(r);
    }
  }
  return frame_checkpoint(payload.bytes(), version);
}

std::string frame_checkpoint(const std::string& payload, std::uint32_t version) {
  Writer file;
  file.bytes().append(kMagic, sizeof kMagic);
  file.put(version);
  file.put<std::uint64_t>(payload.size());
  file.bytes() += payload;
  file.put(fnv1a(payload.data(), payload.size()));
  return std::move(file.bytes());
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
