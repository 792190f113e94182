// libFuzzer target for the checkpoint loader: any input must either load or raise
// CheckpointError. Inputs are whole files (mode & 4 clear) or corruptions of a valid .npz
// checkpoint (the input lists byte flips and a truncation) so that they reach every member and
// the JSON.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "checkpoint.hpp"

namespace {

/// A small model of two parameters, made once: loading writes into it.
struct Model : gumbel::nn::Module<float> {
  gumbel::Parameter<float> weight{gumbel::Matrix<float>::Zero(2, 3)};
  gumbel::Parameter<float> bias{gumbel::Matrix<float>::Zero(1, 3)};
  gumbel::optim::Adam<float> adam{{&weight, &bias}};
  Model() {
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
};

const std::map<std::string, std::string> kSettings = {{"lr", "0.001"}, {"seed", "7"}};

/// The bytes of a valid .npz checkpoint of `model` with two epochs of history.
std::string valid_npz(Model& model, const std::string& path) {
  vae::Checkpoint progress;
  progress.settings = kSettings;
  progress.epochs_done = 2;
  progress.history = {{1, 2.0, 3.0, 0.9, 1.5, 100.0, 4.0}, {2, 1.0, 2.0, 0.8, 1.5, 100.0, 3.0}};
  vae::save_checkpoint(path, progress, model, model.adam);
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Model model;
  static const std::string path = "fuzz_checkpoint_scratch.npz";
  static const std::string npz = valid_npz(model, path);
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::map<std::string, std::string> expected =
      (mode & 2) != 0 ? kSettings : std::map<std::string, std::string>{};
  try {
    if ((mode & 4) != 0) {
      // Records of 5 bytes: a 4-byte offset and the byte to xor there; with mode & 8 the file
      // is cut at the first record's offset instead.
      std::string bytes = npz;
      for (std::size_t i = 0; i + 5 <= rest.size(); i += 5) {
        std::uint32_t at;
        std::memcpy(&at, rest.data() + i, 4);
        if ((mode & 8) != 0 && i == 0) {
          bytes.resize(at % bytes.size());
          if (bytes.empty()) break;
          continue;
        }
        bytes[at % bytes.size()] = char(bytes[at % bytes.size()] ^ rest[i + 4]);
      }
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
      const vae::Checkpoint c = vae::load_checkpoint(path, expected, model, model.adam);
      if (c.epochs_done != std::int64_t(c.history.size()) || model.adam.steps() < 0) {
        __builtin_trap();  // the loader's promise
      }
    } else {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << rest;
      const vae::Checkpoint c = vae::load_checkpoint(path, expected, model, model.adam);
      if (c.epochs_done != std::int64_t(c.history.size())) __builtin_trap();
    }
  } catch (const vae::CheckpointError&) {
  }
  return 0;
}
