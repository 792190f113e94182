// Files the examples write: always whole, never half-written.
#pragma once

#include <string>

namespace examples {

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so the
/// file is either the old one or the whole new one, never a partial write.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace examples
