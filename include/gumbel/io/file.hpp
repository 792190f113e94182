// Files as the io headers read and write them: FileError, a whole file read into memory, an
// atomic write (a temporary file renamed over the target), a bounds-checked little-endian reader
// whose every failure names the file, and little-endian integers appended to a buffer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>

namespace gumbel {

/// A file that cannot be written, or read as what it should be; the message names the file.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace io::detail {

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

/// Reads a whole file; FileError when it cannot be opened or read.
inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open the file for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw FileError(path + ": read error");
  return bytes;
}

/// Calls write(stream) on path + ".tmp" and renames it over `path`: readers see the old file or
/// the whole new one, never a part.
template <class Write>
void write_atomic(const std::string& path, Write&& write) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw FileError(path + ": cannot open " + temporary + " for writing");
    write(out);
    out.flush();
    if (!out) {
      out.close();
      std::remove(temporary.c_str());
      throw FileError(path + ": writing " + temporary + " failed (disk full?)");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::remove(temporary.c_str());
    throw FileError(path + ": cannot replace the file: " + error.message());
  }
}

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
