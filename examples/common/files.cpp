#include "files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <gumbel/io/file.hpp>

namespace examples {

namespace {

const char kTempMarker[] = ".tmp.";

std::string temp_name(const std::string& path) {
  return path + kTempMarker + std::to_string(::getpid()) + ".0";
}

/// The pid in `<name>.tmp.<pid>.<n>` (gumbel::io::write_file_atomic's temporary names), or 0
/// when the name is not of that form.
long temp_owner(const std::string& name) {
  const std::size_t at = name.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return 0;
  const std::string rest = name.substr(at + sizeof kTempMarker - 1);
  const std::size_t dot = rest.find('.');
  if (dot == std::string::npos ||
      rest.find_first_not_of("0123456789", dot + 1) != std::string::npos)
    return 0;
  const std::string digits = rest.substr(0, dot);
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return std::stol(digits);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  gumbel::io::write_file_atomic(path, bytes);
}

int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  int removed = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (!entry.is_regular_file(error)) continue;
    const long pid = temp_owner(entry.path().filename().string());
    if (pid <= 0 || pid == ::getpid()) continue;
    // kill(pid, 0) sends nothing; ESRCH says no such process is running any more.
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH &&
        fs::remove(entry.path(), error)) {
      ++removed;
    }
  }
  return removed;
}

void require_writable_dir(const std::string& dir) {
  const std::string probe = temp_name(dir + "/.write-check");
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    throw std::runtime_error(dir + ": cannot write into this folder (" + std::strerror(errno) +
                             ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace examples
