#include "checkpoint.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <type_traits>
#include <utility>

#include "output.hpp"

namespace vae {
namespace {

constexpr char kMagic[8] = {'G', 'U', 'M', 'B', 'E', 'L', 'C', 'K'};
// Version 2 added EpochRecord::test_nelbo; version 1 files are read with it set to NaN.
constexpr std::uint32_t kVersion = kCheckpointVersion;

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

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& progress,
                     gumbel::optim::Adam<float>& adam) {
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
  for (const EpochRecord& r : progress.history) payload.put(r);

  write_file_atomic(path, frame_checkpoint(payload.bytes()));
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

Checkpoint load_checkpoint(const std::string& path,
                           const std::map<std::string, std::string>& expected,
                           gumbel::optim::Adam<float>& adam) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path + ": cannot be opened");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw CheckpointError(path + ": cannot be read (a folder?)");
  return parse_checkpoint(bytes, path, expected, adam);
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
  for (const auto& [key, value] : expected) {
    const auto found = out.settings.find(key);
    const std::string stored = found == out.settings.end() ? "(missing)" : found->second;
    if (!same_setting(stored, value)) {
      throw CheckpointError(path + ": written with " + key + " = " + stored +
                            ", but this run has " + key + " = " + value +
                            " (use the same settings to resume, or another output folder)");
    }
  }
  for (const auto& [key, value] : out.settings) {
    if (expected.count(key) == 0) {
      throw CheckpointError(path + ": written with " + key + " = " + value + ", but this run has " +
                            key + " at its default (use the same settings to resume, or another " +
                            "output folder)");
    }
  }
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
