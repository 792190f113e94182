#include "files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace examples {

namespace {

const char kTempMarker[] = ".tmp.";

std::string temp_name(const std::string& path) {
  return path + kTempMarker + std::to_string(::getpid());
}

/// The pid at the end of `<name>.tmp.<pid>`, or 0 when the name is not of that form.
long temp_owner(const std::string& name) {
  const std::size_t at = name.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return 0;
  const std::string digits = name.substr(at + sizeof kTempMarker - 1);
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return std::stol(digits);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string temp = temp_name(path);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(temp + ": cannot create (" + std::strerror(errno) + ")");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error(temp + ": write failed (" + why + ")");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temp.c_str());
    throw std::runtime_error(temp + ": could not be flushed to disk");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    throw std::runtime_error(path + ": cannot replace (" + why + ")");
  }
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
