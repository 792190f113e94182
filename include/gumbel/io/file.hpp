// Files as the io headers read and write them: FileError, a whole regular file read into memory,
// the atomic write (an unnamed or exclusively created file in the target's folder, synced, then
// renamed over the target), a bounds-checked little-endian reader whose every failure names the
// file, and little-endian integers appended to a buffer. POSIX: the writer uses open/fsync/rename.
#pragma once

#include <fcntl.h>
#if defined(_WIN32)
#include <io.h>
#include <process.h>
#include <sys/stat.h>
#else
#include <unistd.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <system_error>
#include <type_traits>

namespace gumbel {

/// A file that cannot be written, or read as what it should be; the message names the file.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace io::detail {

// The few system calls of the atomic writer, on POSIX and on Windows' C runtime.
#if defined(_WIN32)
inline int os_open_new(const char* name) {
  return ::_open(name, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY | _O_NOINHERIT,
                 _S_IREAD | _S_IWRITE);
}
inline long long os_write(int fd, const char* data, std::size_t count) {
  return ::_write(fd, data, unsigned(std::min<std::size_t>(count, 1u << 30)));
}
inline int os_sync(int fd) {
  return ::_commit(fd);
}
inline int os_close(int fd) {
  return ::_close(fd);
}
inline int os_pid() {
  return ::_getpid();
}
#else
inline int os_open_new(const char* name) {
  return ::open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}
inline long long os_write(int fd, const char* data, std::size_t count) {
  return ::write(fd, data, count);
}
inline int os_sync(int fd) {
  return ::fsync(fd);
}
inline int os_close(int fd) {
  return ::close(fd);
}
inline int os_pid() {
  return int(::getpid());
}
#endif

inline bool little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

inline void put16(std::string& out, std::uint32_t v) {
  out.push_back(char(v & 0xFF));
  out.push_back(char((v >> 8) & 0xFF));
}
inline void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}

/// Reads a whole regular file, at most the size it had when opened; FileError naming the file
/// when it is missing, not a regular file (a folder, a device, a pipe), or cannot be read.
inline std::string read_all(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error) throw FileError(path + ": cannot open the file for reading: " + error.message());
  if (fs::is_directory(status)) throw FileError(path + ": is a folder, not a file");
  if (!fs::is_regular_file(status)) {
    throw FileError(path + ": not a regular file (a device, pipe or socket is not read)");
  }
  const std::uintmax_t size = fs::file_size(path, error);
  if (error) throw FileError(path + ": cannot read the file's size: " + error.message());
  if (size > std::uintmax_t(std::numeric_limits<std::streamsize>::max()) ||
      size > std::uintmax_t(std::string().max_size())) {
    throw FileError(path + ": too large to read into memory (" + std::to_string(size) + " bytes)");
  }
  std::string bytes(std::size_t(size), '\0');
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw FileError(path + ": cannot open the file for reading");
    in.read(bytes.data(), std::streamsize(size));
    if (in.bad()) throw FileError(path + ": read error");
    bytes.resize(std::size_t(in.gcount()));  // the file shrank while it was read
  } catch (const std::ios_base::failure& e) {
    throw FileError(path + ": read error: " + e.what());
  }
  return bytes;
}

/// An output stream buffer over a POSIX file descriptor (unbuffered past the stream's own
/// block): what write_file_atomic hands its writer.
class FdBuffer : public std::streambuf {
 public:
  explicit FdBuffer(int fd) : fd_(fd) { setp(buffer_, buffer_ + sizeof buffer_); }
  bool failed() const { return failed_; }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type c) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return drain() ? 0 : -1; }
  std::streamsize xsputn(const char* data, std::streamsize count) override {
    if (count < std::streamsize(sizeof buffer_)) return std::streambuf::xsputn(data, count);
    if (!drain() || !write_all(data, std::size_t(count))) return 0;
    return count;
  }

 private:
  bool drain() {
    const auto pending = std::size_t(pptr() - pbase());
    setp(buffer_, buffer_ + sizeof buffer_);
    return write_all(buffer_, pending);
  }
  bool write_all(const char* data, std::size_t count) {
    while (count > 0 && !failed_) {
      const long long n = os_write(fd_, data, count);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        failed_ = true;
        error_ = n < 0 ? errno : ENOSPC;
        break;
      }
      data += n;
      count -= std::size_t(n);
    }
    return !failed_;
  }
  int fd_;
  bool failed_ = false;
  int error_ = 0;
  char buffer_[1 << 16];
};

/// The temporary name `<path>.tmp.<pid>.<n>` for the n-th attempt of this process.
inline std::string temporary_name(const std::string& path, unsigned attempt) {
  return path + ".tmp." + std::to_string(os_pid()) + "." + std::to_string(attempt);
}

}  // namespace io::detail

namespace io {

/// Calls write(stream) and makes what it wrote the file `path` atomically: readers see the old
/// file or the whole new one, never a part, and nothing is ever written through a link.
/// The data goes to an unnamed file in the target's folder (O_TMPFILE) which is given a name
/// only once complete and synced; where the file system has no unnamed files, to a file created
/// exclusively, without following links, under a fresh name `<path>.tmp.<pid>.<n>`. A process
/// killed while writing leaves no temporary file behind on the first route. `path` itself is
/// replaced by the rename: if it was a link, the link is replaced, not its target.
/// FileError naming the file when anything fails; the old file is then untouched.
template <class Write, std::enable_if_t<std::is_invocable_v<Write&, std::ostream&>, int> = 0>
void write_file_atomic(const std::string& path, Write&& write) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  const std::string folder = parent.empty() ? std::string(".") : parent.string();
  int fd = -1;
  bool unnamed = false;
  std::string temporary;
#if defined(O_TMPFILE) && !defined(_WIN32)
  std::error_code probe;
  if (fs::exists("/proc/self/fd", probe)) {
    fd = ::open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    unnamed = fd >= 0;
  }
#endif
  for (unsigned attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    temporary = detail::temporary_name(path, attempt);
    fd = detail::os_open_new(temporary.c_str());
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    throw FileError(path + ": cannot open a new file in " + folder + ": " + std::strerror(errno));
  }
  const auto discard = [&] {  // the old file stays; the new one goes
    detail::os_close(fd);
    if (!unnamed) std::remove(temporary.c_str());
  };
  const auto fail = [&](const std::string& what, int code) {
    discard();
    throw FileError(path + ": " + what +
                    (code != 0 ? std::string(": ") + std::strerror(code) : ""));
  };
  {
    detail::FdBuffer buffer(fd);
    std::ostream out(&buffer);
    try {
      write(out);
    } catch (...) {
      discard();
      throw;
    }
    out.flush();
    if (buffer.failed() || !out) fail("writing failed", buffer.error());
  }
  if (detail::os_sync(fd) != 0) fail("cannot flush the file to disk", errno);
#if defined(O_TMPFILE) && !defined(_WIN32)
  if (unnamed) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    int linked = -1;
    for (unsigned attempt = 0; linked != 0 && attempt < 100; ++attempt) {
      temporary = detail::temporary_name(path, attempt);
      linked = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temporary.c_str(), AT_SYMLINK_FOLLOW);
      if (linked != 0 && errno != EEXIST) break;
    }
    if (linked != 0) fail("cannot name the new file in " + folder, errno);
    unnamed = false;
  }
#endif
  if (detail::os_close(fd) != 0) {
    const int code = errno;
    std::remove(temporary.c_str());
    throw FileError(path + ": closing the new file failed: " + std::strerror(code));
  }
  std::error_code renamed;
  fs::rename(temporary, path, renamed);
  if (renamed) {
    std::remove(temporary.c_str());
    throw FileError(path + ": cannot replace the file: " + renamed.message());
  }
}

/// Writes `bytes` as the file `path`, atomically (see above).
inline void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(
      path, [&](std::ostream& out) { out.write(bytes.data(), std::streamsize(bytes.size())); });
}

}  // namespace io

namespace io::detail {

/// A bounds-checked little-endian reader over a file's bytes; every failure names the file.
class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes) : path_(path), bytes_(bytes) {}
  [[noreturn]] void fail(const std::string& what) const { throw FileError(path_ + ": " + what); }
  void need(std::size_t at, std::size_t count, const char* what) const {
    if (at > bytes_.size() || count > bytes_.size() - at) {
      fail(std::string("truncated: ") + what + " runs past the end of the file");
    }
  }
  std::uint32_t u16(std::size_t at) const {
    need(at, 2, "a field");
    return std::uint32_t(byte(at)) | std::uint32_t(byte(at + 1)) << 8;
  }
  std::uint32_t u32(std::size_t at) const { return u16(at) | u16(at + 2) << 16; }
  std::string str(std::size_t at, std::size_t count, const char* what) const {
    need(at, count, what);
    return bytes_.substr(at, count);
  }
  std::size_t size() const { return bytes_.size(); }
  const std::string& path() const { return path_; }

 private:
  unsigned char byte(std::size_t at) const { return static_cast<unsigned char>(bytes_[at]); }
  const std::string& path_;
  const std::string& bytes_;
};

}  // namespace io::detail
}  // namespace gumbel
