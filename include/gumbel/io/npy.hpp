// NumPy's .npy arrays: NpyArray (an array read, or held to write), NpyView (an array written
// from where it lies), the format 1.0 header, and the parsing of a member whose every field is
// checked against its size.
#pragma once

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/types.hpp"
#include "gumbel/io/file.hpp"

namespace gumbel {
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
      gumbel::detail::fail<ValueError>("io::NpyArray::matrix", name, " holds ", dtype(),
                                       ", not float", 8 * sizeof(T));
    }
    Matrix<T> m(rows, cols);
    if (!bytes.empty()) std::memcpy(m.data(), bytes.data(), bytes.size());
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
  // A Python tuple of integers, as NumPy requires: () , (n,) , (a, b) , (a, b,). Every item
  // but a trailing one after a comma is a number; (n) is no tuple, (,) and (2,,3) no shape.
  std::vector<Index> dims;
  const std::string inner = shape.substr(1, shape.size() - 2);
  const bool blank = inner.find_first_not_of(' ') == std::string::npos;
  if (!blank && inner.find(',') == std::string::npos) {
    file.fail(entry + ": bad shape " + shape + " (not a tuple)");
  }
  std::size_t from = 0;
  while (!blank) {
    const std::size_t comma = inner.find(',', from);
    const std::string part = inner.substr(from, comma == std::string::npos ? comma : comma - from);
    const std::size_t first = part.find_first_not_of(' ');
    if (first == std::string::npos) {
      // Only the item after a final comma may be empty, and only after a number.
      if (comma != std::string::npos || dims.empty()) file.fail(entry + ": bad shape " + shape);
      break;
    }
    const std::string digits = part.substr(first, part.find_last_not_of(' ') - first + 1);
    if (digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos) {
      file.fail(entry + ": bad shape " + shape);
    }
    dims.push_back(Index(std::stoll(digits)));
    if (comma == std::string::npos) break;
    from = comma + 1;
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

}  // namespace io
}  // namespace gumbel
