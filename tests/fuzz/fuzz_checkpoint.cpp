// libFuzzer target for the checkpoint loader: any input must either load or raise
// CheckpointError. Most inputs are framed as a payload with a valid header and checksum first,
// so that mutations reach the parser behind the checksum; the others go in as whole files.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "checkpoint.hpp"

namespace {

/// A small model of two parameters, made once: loading writes into it.
struct Model {
  gumbel::Parameter<float> weight{gumbel::Matrix<float>::Zero(2, 3), "weight"};
  gumbel::Parameter<float> bias{gumbel::Matrix<float>::Zero(1, 3), "bias"};
  gumbel::optim::Adam<float> adam{{&weight, &bias}};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Model model;
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string bytes = (mode & 1) != 0 ? rest : vae::frame_checkpoint(rest);
  std::map<std::string, std::string> expected;
  if ((mode & 2) != 0) expected = {{"lr", "0.001"}, {"seed", "7"}};
  try {
    const vae::Checkpoint c = vae::parse_checkpoint(bytes, "fuzz-input", expected, model.adam);
    if (c.epochs_done < 0 || model.adam.steps() < 0) __builtin_trap();  // the parser's promise
  } catch (const vae::CheckpointError&) {
  }
  return 0;
}
