// libFuzzer target for the IDX parser: any input must either parse or raise DataError.
#include <cstddef>
#include <cstdint>

#include "idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const examples::IdxArray a = examples::parse_idx(data, size, "fuzz-input");
    std::size_t count = 1;
    for (std::uint32_t d : a.dims) count *= d;
    if (count != a.data.size()) __builtin_trap();  // the parser's own promise
  } catch (const examples::DataError&) {
  }
  return 0;
}
