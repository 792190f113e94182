// Checkpoints: the model, Adam's state and the run's progress in one .npz, written atomically by
// gumbel::io::save_checkpoint, the one checkpoint format.
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
  /// Test negative ELBO with discrete (one-hot) codes, one per image.
  double test_nelbo = 0;
};

/// Everything a run needs to continue exactly where it stopped, besides the parameters and
/// Adam's state. The settings that shape the run (sizes, seed, learning rate, ...) are stored as
/// text so that a resume with other settings is refused with the name of the setting. Settings
/// added after the first format are stored only when they differ from their default, so older
/// checkpoints of default runs still resume.
struct Checkpoint {
  std::map<std::string, std::string> settings;
  std::int64_t epochs_done = 0;
  std::vector<EpochRecord> history;
};

/// Writes `path` (an .npz): the model under "model.<name>", Adam's state under "optimizer.",
/// the settings and epoch count as JSON bytes under "progress"
/// (json.loads(bytes(numpy.load(path)["progress"]))) and the history as a float64 array, one
/// row per epoch: epoch, train loss, test loss, temperature, seconds, images/s, test -ELBO.
void save_checkpoint(const std::string& path, const Checkpoint& progress,
                     const gumbel::nn::Module<float>& model, gumbel::optim::Adam<float>& adam);

/// Reads a checkpoint (an .npz) into `model` and `adam`. Settings are compared first, then the
/// progress (epochs_done equals the history's rows, each row its epoch), then every name and
/// shape: on any CheckpointError, naming the file and what is wrong, nothing has changed.
Checkpoint load_checkpoint(const std::string& path,
                           const std::map<std::string, std::string>& expected,
                           gumbel::nn::Module<float>& model, gumbel::optim::Adam<float>& adam);

}  // namespace vae
