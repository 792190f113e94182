// Files the examples write: always whole, never half-written.
#pragma once

#include <string>

namespace examples {

/// Writes `bytes` to `path` atomically, through gumbel::io::write_file_atomic: the file is
/// either the old one or the whole new one, never a partial write, never written through a link.
void write_file_atomic(const std::string& path, const std::string& bytes);

/// Removes the temporary files `<name>.tmp.<pid>.<n>` in `dir` that write_file_atomic left behind
/// when its process was killed (the process `pid` no longer exists); returns how many.
int remove_stale_temporaries(const std::string& dir);

/// Throws std::runtime_error naming `dir` and the reason unless a file can be created in it.
void require_writable_dir(const std::string& dir);

}  // namespace examples
