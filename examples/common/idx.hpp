// Reading MNIST's IDX files (plain or gzip-compressed) with full validation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <gumbel/gumbel.hpp>

namespace examples {

/// A data file that is missing, corrupt, truncated or of the wrong kind. The message names the
/// file and what is wrong with it.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An IDX array of unsigned bytes: its dimensions and its elements in row-major order.
struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

/// What an IDX header says: the dimensions, the element count and the header's own size.
struct IdxHeader {
  std::vector<std::uint32_t> dims;
  std::size_t count = 0;
  std::size_t bytes = 0;
};

/// The largest data an IDX file may promise: 2 GiB (MNIST's training images are 47 MB).
inline constexpr std::size_t kMaxIdxBytes = std::size_t{1} << 31;

/// Checks the header at the start of `bytes` (magic number, unsigned-byte type, 1 to 4 non-zero
/// dimensions whose product does not overflow); DataError naming `name` otherwise.
IdxHeader parse_idx_header(const std::uint8_t* bytes, std::size_t size, const std::string& name);

/// Parses IDX bytes held in memory; `name` is used in error messages. Checks the magic number,
/// the element type (unsigned byte), the dimensions and that the size is exactly right.
IdxArray parse_idx(const std::uint8_t* bytes, std::size_t size, const std::string& name);

/// Reads a whole file, decompressing it when it is gzip (zlib reads plain files unchanged).
std::vector<std::uint8_t> read_file(const std::string& path);

/// Reads an IDX file (plain or gzip): the header first, then no more than the data it promises
/// (at most kMaxIdxBytes) and one byte to detect extra data, so a compressed file that inflates
/// far beyond its header is refused without being inflated whole.
IdxArray read_idx(const std::string& path);

/// One image per row, as the file's bytes.
using ByteMatrix = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Bytes 0..255 as floats in [0, 1] (byte / 255, rounded once), as an expression: assign it.
template <class Bytes>
auto to_unit_range(const Eigen::MatrixBase<Bytes>& bytes) {
  return bytes.template cast<float>() / 255.0f;
}

/// Images as bytes and, when asked for, scaled to [0, 1] (one image per row), and their labels.
struct Dataset {
  gumbel::Matrix<float> images;  ///< empty unless the loader was asked for floats
  ByteMatrix bytes;  ///< the same images as bytes: a quarter of the memory to gather batches from
  std::vector<std::uint8_t> labels;
  gumbel::Index rows = 0;  ///< image height
  gumbel::Index cols = 0;  ///< image width
};

/// Loads `<dir>/<prefix>-images-idx3-ubyte` and `<dir>/<prefix>-labels-idx1-ubyte` (or their
/// .gz), checks they agree, and keeps at most `limit` examples (0 keeps all); `floats`: also
/// fill Dataset::images.
Dataset load_split(const std::string& dir, const std::string& prefix, gumbel::Index limit = 0,
                   bool floats = true);

/// MNIST's training and test splits ("train" and "t10k"), checked to hold images of one size.
struct Splits {
  Dataset train;
  Dataset test;
};

/// Which splits also get their images as floats (Dataset::images); the bytes are always there.
struct Floats {
  bool train = true;
  bool test = true;
};

/// load_split of both splits (at most `train_limit` and `test_limit` examples; 0 keeps all);
/// DataError naming `dir` when their images differ in size.
Splits load_mnist(const std::string& dir, gumbel::Index train_limit = 0,
                  gumbel::Index test_limit = 0, Floats floats = {});

}  // namespace examples
