// Checkpoints: parameters, Adam state, progress and history in one checksummed file.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <gumbel/gumbel.hpp>

namespace vae {

/// A checkpoint that cannot be used: unreadable, corrupt, or written by other settings.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The summary of one finished epoch.
struct EpochRecord {
  std::int64_t epoch = 0;
  double train_loss = 0;
  double test_loss = 0;
  double temperature = 0;  ///< at the epoch's last step
  double seconds = 0;      ///< training time of the epoch
  double images_per_second = 0;
  /// Test negative ELBO with discrete (one-hot) codes, one per image; NaN in checkpoints of
  /// version 1, which did not record it.
  double test_nelbo = 0;
};

/// Everything a run needs to continue exactly where it stopped. The settings that shape the
/// run (sizes, seed, learning rate, ...) are stored as text so that a resume with other
/// settings is refused with the name of the setting. Settings added after version 1 are stored
/// only when they differ from their default, so older checkpoints of default runs still resume.
struct Checkpoint {
  std::map<std::string, std::string> settings;
  std::int64_t epochs_done = 0;
  std::vector<EpochRecord> history;
};

/// Writes parameters, Adam's moments and step, and the progress atomically, with a checksum.
void save_checkpoint(const std::string& path, const Checkpoint& progress,
                     gumbel::optim::Adam<float>& adam);

/// Reads a checkpoint into `adam`'s parameters and state. Throws CheckpointError naming the file
/// when it is corrupt or truncated, or when its settings or shapes differ from `expected`.
Checkpoint load_checkpoint(const std::string& path,
                           const std::map<std::string, std::string>& expected,
                           gumbel::optim::Adam<float>& adam);

/// The version save_checkpoint writes (parse_checkpoint reads 1 to this).
inline constexpr std::uint32_t kCheckpointVersion = 2;

/// The bytes of a checkpoint file around a payload: magic, version, payload size, the payload
/// and its checksum.
std::string frame_checkpoint(const std::string& payload,
                             std::uint32_t version = kCheckpointVersion);

/// load_checkpoint on the file's bytes, already read; `path` names them in errors. Settings
/// that are numbers compare by value.
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path,
                            const std::map<std::string, std::string>& expected,
                            gumbel::optim::Adam<float>& adam);

}  // namespace vae
