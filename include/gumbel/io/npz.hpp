// NumPy's .npz archives: a zip of .npy arrays, stored without compression, which numpy.load
// reads (and torch.from_numpy after it). Only the C++ standard library and Eigen are needed: the
// zip container is written and read here, with its CRC-32 checked.
//
// Writing is atomic (a temporary file renamed over the target). Reading checks every field of
// the archive and of each .npy header against the file's size, so a truncated or corrupt file is
// a FileError naming the file and what is wrong, never a crash or silent garbage.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel {

/// A file that cannot be written, or read as what it should be; the message names the file.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace io {

/// One array of an archive: its name (without ".npy"), element type, shape and little-endian
/// bytes in row-major order. `dims` is 0 (a scalar), 1 (a vector of `cols`) or 2.
struct NpyArray {
  std::string name;
  char kind = 'f';   ///< 'f' float or 'u' unsigned (bytes), as NumPy's descr
  int itemsize = 4;  ///< 4 (float32) or 8 (float64); 1 for bytes (uint8)
  int dims = 2;
  Index rows = 0;
  Index cols = 0;
  std::string bytes;  ///< rows * cols * itemsize

  /// The values as a Matrix<T>; a ValueError unless the elements are T exactly.
  template <class T>
  Matrix<T> matrix() const {
    if (kind != 'f' || itemsize != int(sizeof(T))) {
      detail::fail<ValueError>("io::NpyArray::matrix", name, " holds ", dtype(), ", not float",
                               8 * sizeof(T));
    }
    Matrix<T> m(rows, cols);
    std::memcpy(m.data(), bytes.data(), bytes.size());
    return m;
  }

  /// NumPy's name of the element type: float32, float64 or uint8.
  std::string dtype() const {
    return (kind == 'u' ? "uint" : "float") + std::to_string(8 * itemsize);
  }
};

/// An array to write without copying it: NpyArray's header fields and a pointer to the
/// row-major bytes, which must stay valid until the write returns.
struct NpyView {
  std::string name;
  char kind = 'f';
  int itemsize = 4;
  int dims = 2;
  Index rows = 0;
  Index cols = 0;
  const char* data = nullptr;
  std::size_t size = 0;  ///< bytes: rows * cols * itemsize
};

/// A view of an array's bytes.
inline NpyView view_of(const NpyArray& a) {
  return {a.name, a.kind, a.itemsize, a.dims, a.rows, a.cols, a.bytes.data(), a.bytes.size()};
}

/// A view of a row-major float or double matrix, as to_npy would store it.
template <class T>
NpyView npy_view(std::string name, const Matrix<T>& m) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return {std::move(name),
          'f',
          int(sizeof(T)),
          2,
          m.rows(),
          m.cols(),
          reinterpret_cast<const char*>(m.data()),
          std::size_t(m.size()) * sizeof(T)};
}

namespace detail {

inline bool little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

/// The CRC-32 of zip over `size` bytes, continuing from `crc` (the CRC of what came before).
inline std::uint32_t crc32(const char* data, std::size_t size, std::uint32_t crc = 0) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc ^= 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) {
    crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xFFu] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

inline void put16(std::string& out, std::uint32_t v) {
  out.push_back(char(v & 0xFF));
  out.push_back(char((v >> 8) & 0xFF));
}
inline void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}

/// The .npy header (format 1.0) of an array (row-major, little-endian float, or bytes): what
/// comes before its data.
template <class Array>
std::string npy_header(const Array& a) {
  std::ostringstream dict;
  dict << "{'descr': '" << (a.kind == 'u' ? "|u" : "<f") << a.itemsize
       << "', 'fortran_order': False, 'shape': (";
  if (a.dims == 2) dict << a.rows << ", " << a.cols;
  if (a.dims == 1) dict << a.cols << ",";
  dict << "), }";
  std::string header = dict.str();
  // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64 bytes.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  put16(out, std::uint32_t(header.size()));
  out += header;
  return out;
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

/// The value after `'key':` in a .npy header dictionary, up to the next top-level comma.
inline std::string npy_field(const Reader& r, const std::string& entry, const std::string& header,
                             const char* key) {
  const std::string quoted = std::string("'") + key + "':";
  const std::size_t at = header.find(quoted);
  if (at == std::string::npos) r.fail(entry + ": the .npy header has no '" + key + "'");
  std::size_t begin = at + quoted.size();
  while (begin < header.size() && header[begin] == ' ') ++begin;
  std::size_t end = begin;
  int depth = 0;
  while (end < header.size() && !(depth == 0 && (header[end] == ',' || header[end] == '}'))) {
    if (header[end] == '(') ++depth;
    if (header[end] == ')') --depth;
    ++end;
  }
  return header.substr(begin, end - begin);
}

/// Parses one .npy member (`entry` names it in errors).
inline NpyArray parse_npy(const Reader& file, const std::string& entry, const std::string& data) {
  const Reader r(file.path(), data);
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) {
    file.fail(entry + ": not a .npy array (no \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(data[6]);
  std::size_t header_at = 10;
  std::size_t header_len = 0;
  if (major == 1) {
    header_len = r.u16(8);
  } else if (major == 2 || major == 3) {
    header_len = r.u32(8);
    header_at = 12;
  } else {
    file.fail(entry + ": .npy format version " + std::to_string(major) + " is not supported");
  }
  const std::string header = r.str(header_at, header_len, "the .npy header");
  NpyArray a;
  const std::string descr = npy_field(file, entry, header, "descr");
  if (descr == "'<f4'" || descr == "'=f4'") {
    a.itemsize = 4;
  } else if (descr == "'<f8'" || descr == "'=f8'") {
    a.itemsize = 8;
  } else if (descr == "'|u1'") {
    a.kind = 'u';
    a.itemsize = 1;
  } else {
    file.fail(entry + ": element type " + descr +
              " is not supported (little-endian float32 '<f4', float64 '<f8', or uint8 '|u1')");
  }
  const std::string order = npy_field(file, entry, header, "fortran_order");
  if (order != "False" && order != "True") file.fail(entry + ": bad fortran_order " + order);
  const std::string shape = npy_field(file, entry, header, "shape");
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') {
    file.fail(entry + ": bad shape " + shape);
  }
  std::vector<Index> dims;
  std::stringstream parts(shape.substr(1, shape.size() - 2));
  std::string part;
  while (std::getline(parts, part, ',')) {
    const std::size_t first = part.find_first_not_of(' ');
    if (first == std::string::npos) continue;  // the trailing comma of (n,)
    const std::string digits = part.substr(first, part.find_last_not_of(' ') - first + 1);
    if (digits.empty() || digits.size() > 12 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      file.fail(entry + ": bad shape " + shape);
    }
    dims.push_back(Index(std::stoll(digits)));
  }
  if (dims.size() > 2) {
    file.fail(entry + ": " + std::to_string(dims.size()) + "-dimensional arrays are not supported");
  }
  a.dims = int(dims.size());
  a.rows = dims.size() == 2 ? dims[0] : 1;
  a.cols = dims.empty() ? 1 : dims.back();
  const std::size_t at = header_at + header_len;
  const std::size_t available = data.size() - at;  // r.str checked at <= data.size()
  const std::size_t item = std::size_t(a.itemsize);
  const bool fits = a.cols == 0 || std::size_t(a.rows) <= available / item / std::size_t(a.cols);
  if (!fits || std::size_t(a.rows) * std::size_t(a.cols) * item != available) {
    file.fail(entry + ": the shape " + shape + " does not match the member's " +
              std::to_string(available) + " bytes of " + std::to_string(a.itemsize) +
              "-byte values");
  }
  a.bytes = data.substr(at);
  if (order == "True" && a.dims == 2) {  // column-major: transpose into row-major
    std::string rowmajor(a.bytes.size(), '\0');
    const std::size_t n = std::size_t(a.itemsize);
    for (Index i = 0; i < a.rows; ++i) {
      for (Index j = 0; j < a.cols; ++j) {
        std::memcpy(&rowmajor[(std::size_t(i * a.cols + j)) * n],
                    &a.bytes[(std::size_t(j * a.rows + i)) * n], n);
      }
    }
    a.bytes = std::move(rowmajor);
  }
  return a;
}

}  // namespace detail

/// A named matrix as an .npz member (float32 or float64, 2-D).
template <class Derived>
NpyArray to_npy(std::string name, const Eigen::MatrixBase<Derived>& matrix) {
  using T = typename Derived::Scalar;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  const Matrix<T> m = matrix;  // row-major
  NpyArray a;
  a.name = std::move(name);
  a.itemsize = int(sizeof(T));
  a.rows = m.rows();
  a.cols = m.cols();
  a.bytes.assign(reinterpret_cast<const char*>(m.data()), std::size_t(m.size()) * sizeof(T));
  return a;
}

/// Bytes (a text, say JSON) as a 1-D uint8 .npz member: bytes(numpy.load(path)[name]).decode().
inline NpyArray bytes_to_npy(std::string name, const std::string& bytes) {
  NpyArray a;
  a.name = std::move(name);
  a.kind = 'u';
  a.itemsize = 1;
  a.dims = 1;
  a.rows = 1;
  a.cols = Index(bytes.size());
  a.bytes = bytes;
  return a;
}

/// Writes the arrays as an .npz that numpy.load reads (each becomes `name.npy`), atomically,
/// member by member from where they are (no copy of an array or of the whole archive in
/// memory). Names must be non-empty and unique.
inline void save_npz(const std::string& path, const std::vector<NpyView>& arrays) {
  if (!detail::little_endian())
    throw FileError(path + ": .npz is written on little-endian hosts only");
  std::vector<std::string> headers;
  std::size_t total = 0;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const NpyView& array = arrays[i];
    if (array.name.empty()) throw FileError(path + ": an array has an empty name");
    for (std::size_t j = 0; j < i; ++j) {
      if (arrays[j].name == array.name)
        throw FileError(path + ": two arrays are named " + array.name);
    }
    headers.push_back(detail::npy_header(array));
    const std::size_t member = array.name.size() + 4;
    const std::size_t size = headers.back().size() + array.size;
    total += 30 + member + size;
    if (size >= 0xFFFFFFFFull || total >= 0xFFFFFFFFull || member > 0xFFFF || i >= 0xFFFF) {
      throw FileError(path + ": the archive would need zip64 (an array of 4 GiB or more)");
    }
  }
  detail::write_atomic(path, [&](std::ostream& out) {
    std::string directory, local;
    std::uint32_t offset = 0;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      const NpyView& array = arrays[i];
      const std::string member = array.name + ".npy";
      const std::string& header = headers[i];
      const auto size = std::uint32_t(header.size() + array.size);
      const std::uint32_t crc =
          detail::crc32(array.data, array.size, detail::crc32(header.data(), header.size()));
      // Local file header: version 2.0, no flags, stored, 1980-01-01 00:00.
      local.clear();
      detail::put32(local, 0x04034b50u);
      for (std::uint32_t v : {20u, 0u, 0u, 0u, 0x21u}) detail::put16(local, v);
      detail::put32(local, crc);
      detail::put32(local, size);
      detail::put32(local, size);
      detail::put16(local, std::uint32_t(member.size()));
      detail::put16(local, 0);
      local += member;
      local += header;
      out.write(local.data(), std::streamsize(local.size()));
      out.write(array.data, std::streamsize(array.size));
      // Its central directory entry.
      detail::put32(directory, 0x02014b50u);
      for (std::uint32_t v : {20u, 20u, 0u, 0u, 0u, 0x21u}) detail::put16(directory, v);
      detail::put32(directory, crc);
      detail::put32(directory, size);
      detail::put32(directory, size);
      detail::put16(directory, std::uint32_t(member.size()));
      for (int k = 0; k < 4; ++k) detail::put16(directory, 0);  // extra, comment, disk, internal
      detail::put32(directory, 0);                              // external attributes
      detail::put32(directory, offset);
      directory += member;
      offset += std::uint32_t(30 + member.size()) + size;
    }
    const auto entries = std::uint32_t(arrays.size());
    detail::put32(directory, 0x06054b50u);
    detail::put16(directory, 0);
    detail::put16(directory, 0);
    detail::put16(directory, entries);
    detail::put16(directory, entries);
    detail::put32(directory, std::uint32_t(directory.size() - 12));
    detail::put32(directory, offset);
    detail::put16(directory, 0);
    out.write(directory.data(), std::streamsize(directory.size()));
  });
}

/// The same for arrays held in memory.
inline void save_npz(const std::string& path, const std::vector<NpyArray>& arrays) {
  std::vector<NpyView> views;
  views.reserve(arrays.size());
  for (const NpyArray& a : arrays) views.push_back(view_of(a));
  save_npz(path, views);
}

/// Every array of an .npz written by save_npz or numpy.savez (stored members; the deflated ones
/// of numpy.savez_compressed are a FileError saying so), in the archive's order.
inline std::vector<NpyArray> load_npz(const std::string& path) {
  if (!detail::little_endian())
    throw FileError(path + ": .npz is read on little-endian hosts only");
  const std::string bytes = detail::read_all(path);
  const detail::Reader r(path, bytes);
  if (bytes.size() < 22) r.fail("not a zip archive (" + std::to_string(bytes.size()) + " bytes)");
  // The end-of-central-directory record: the last signature within the final 64 KiB + 22.
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = bytes.size() > 65557 ? bytes.size() - 65557 : 0;
  for (std::size_t at = bytes.size() - 22 + 1; at-- > lowest;) {
    if (r.u32(at) == 0x06054b50u) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string::npos) r.fail("not a zip archive (no end-of-central-directory record)");
  const std::uint32_t entries = r.u16(eocd + 10);
  const std::uint32_t directory_size = r.u32(eocd + 12);
  const std::uint32_t directory_at = r.u32(eocd + 16);
  if (entries == 0xFFFF || directory_at == 0xFFFFFFFFu) r.fail("zip64 archives are not supported");
  r.need(directory_at, directory_size, "the central directory");
  std::vector<NpyArray> arrays;
  std::size_t at = directory_at;
  for (std::uint32_t e = 0; e < entries; ++e) {
    if (r.u32(at) != 0x02014b50u) r.fail("corrupt central directory entry " + std::to_string(e));
    const std::uint32_t flags = r.u16(at + 8);
    const std::uint32_t method = r.u16(at + 10);
    const std::uint32_t crc = r.u32(at + 16);
    const std::uint32_t packed = r.u32(at + 20);
    const std::uint32_t size = r.u32(at + 24);
    const std::uint32_t name_len = r.u16(at + 28);
    const std::uint32_t extra_len = r.u16(at + 30);
    const std::uint32_t comment_len = r.u16(at + 32);
    const std::uint32_t local = r.u32(at + 42);
    const std::string member = r.str(at + 46, name_len, "a member's name");
    at += 46 + std::size_t(name_len) + extra_len + comment_len;
    if (method != 0) {
      r.fail(member + " is compressed (method " + std::to_string(method) +
             "): only stored members are read; write it with numpy.savez, not savez_compressed");
    }
    if ((flags & 1u) != 0) r.fail(member + " is encrypted");
    if (packed != size) r.fail(member + ": stored sizes disagree");
    if (r.u32(local) != 0x04034b50u) r.fail(member + ": corrupt local header");
    const std::size_t data_at =
        std::size_t(local) + 30 + r.u16(local + 26) + std::size_t(r.u16(local + 28));
    const std::string data = r.str(data_at, size, "a member's data");
    if (detail::crc32(data.data(), data.size()) != crc) r.fail(member + ": CRC-32 mismatch");
    if (member.size() < 5 || member.compare(member.size() - 4, 4, ".npy") != 0) {
      r.fail(member + ": not an .npy member");
    }
    NpyArray a = detail::parse_npy(r, member, data);
    a.name = member.substr(0, member.size() - 4);
    arrays.push_back(std::move(a));
  }
  return arrays;
}

}  // namespace io
}  // namespace gumbel
