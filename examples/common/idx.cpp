#include "idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>

namespace examples {
namespace {

std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

[[noreturn]] void corrupt(const std::string& name, const std::string& what) {
  throw DataError(name + ": " + what);
}

/// The data after the header (`payload` bytes) must be exactly the header's count.
void check_payload(const IdxHeader& header, std::size_t payload, const std::string& name) {
  if (payload < header.count) {
    corrupt(name, "truncated: the header promises " + std::to_string(header.count) +
                      " bytes of data but the file holds " + std::to_string(payload));
  }
  if (payload > header.count) {
    corrupt(name,
            "has " + std::to_string(payload - header.count) + " unexpected bytes after the data");
  }
}

}  // namespace

IdxHeader parse_idx_header(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  if (size < 4) corrupt(name, "too short for an IDX header (" + std::to_string(size) + " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0) {
    corrupt(name, "not an IDX file (the magic number must start with two zero bytes)");
  }
  if (bytes[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02X", unsigned(bytes[2]));
    corrupt(name, std::string("element type ") + type +
                      " is not supported (MNIST uses 0x08, unsigned byte)");
  }
  const std::size_t ndims = bytes[3];
  if (ndims == 0 || ndims > 4) {
    corrupt(name, "has " + std::to_string(ndims) + " dimensions (expected 1 to 4)");
  }
  IdxHeader out;
  out.bytes = 4 + 4 * ndims;
  if (size < out.bytes) corrupt(name, "truncated inside its header");
  out.count = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint32_t dim = big_endian_u32(bytes + 4 + 4 * d);
    if (dim == 0) corrupt(name, "dimension " + std::to_string(d) + " is 0");
    if (out.count > std::numeric_limits<std::size_t>::max() / dim) {
      corrupt(name, "dimensions overflow");
    }
    out.count *= dim;
    out.dims.push_back(dim);
  }
  return out;
}

IdxArray parse_idx(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  const IdxHeader header = parse_idx_header(bytes, size, name);
  check_payload(header, size - header.bytes, name);
  IdxArray out;
  out.dims = header.dims;
  out.data.assign(bytes + header.bytes, bytes + size);
  return out;
}

namespace {

/// Reads up to n bytes; fewer only at the end of the data.
std::size_t gz_read(gzFile file, std::uint8_t* dest, std::size_t n, const std::string& path) {
  std::size_t done = 0;
  while (done < n) {
    const unsigned chunk = unsigned(std::min<std::size_t>(n - done, 1u << 20));
    const int got = gzread(file, dest + done, chunk);
    if (got < 0) {
      int code = 0;
      const std::string what = gzerror(file, &code);
      throw DataError(path + ": read error (" + what + ")");
    }
    if (got == 0) break;
    done += std::size_t(got);
  }
  return done;
}

/// Closes a gzFile however the reading ends.
struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};

}  // namespace

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) throw DataError(path + ": cannot be opened");
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    const std::size_t n = gz_read(file.get(), chunk, sizeof chunk, path);
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  return bytes;
}

IdxArray read_idx(const std::string& path) {
  // The header first, then exactly the bytes it promises and one more to detect extra data: a
  // compressed file that inflates to more than its header says is never inflated whole.
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) throw DataError(path + ": cannot be opened");
  std::uint8_t head[4 + 4 * 4];
  std::size_t have = gz_read(file.get(), head, 4, path);
  // The dimensions' count decides how much header follows; a bad count is reported below.
  if (have == 4 && head[3] >= 1 && head[3] <= 4) {
    have += gz_read(file.get(), head + 4, 4 * std::size_t(head[3]), path);
  }
  const IdxHeader header = parse_idx_header(head, have, path);
  if (header.count > kMaxIdxBytes) {
    corrupt(path, "the header promises " + std::to_string(header.count) +
                      " bytes of data, more than this reader accepts (" +
                      std::to_string(kMaxIdxBytes) + ")");
  }
  IdxArray out;
  out.dims = header.dims;
  out.data.resize(header.count);
  const std::size_t got = gz_read(file.get(), out.data.data(), header.count, path);
  check_payload(header, got, path);
  std::uint8_t extra = 0;
  if (gz_read(file.get(), &extra, 1, path) != 0) {
    corrupt(path, "holds more than the " + std::to_string(header.count) +
                      " bytes of data its header promises");
  }
  return out;
}

namespace {

/// `<dir>/<name>`, or `<dir>/<name>.gz` when only that exists.
std::string locate(const std::string& dir, const std::string& name) {
  const std::filesystem::path plain = std::filesystem::path(dir) / name;
  if (std::filesystem::exists(plain)) return plain.string();
  const std::filesystem::path gz = std::filesystem::path(dir) / (name + ".gz");
  if (std::filesystem::exists(gz)) return gz.string();
  throw DataError(plain.string() + ": not found (nor " + gz.filename().string() +
                  "); run examples/vae_mnist/fetch_mnist.sh or pass --data-dir");
}

}  // namespace

Dataset load_split(const std::string& dir, const std::string& prefix, gumbel::Index limit,
                   bool floats) {
  const std::string image_path = locate(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = locate(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(image_path);
  const IdxArray labels = read_idx(label_path);
  if (images.dims.size() != 3) {
    throw DataError(image_path + ": expected 3 dimensions (count, rows, cols), found " +
                    std::to_string(images.dims.size()));
  }
  if (labels.dims.size() != 1) {
    throw DataError(label_path + ": expected 1 dimension (count), found " +
                    std::to_string(labels.dims.size()));
  }
  if (images.dims[0] != labels.dims[0]) {
    throw DataError(image_path + " holds " + std::to_string(images.dims[0]) + " images but " +
                    label_path + " holds " + std::to_string(labels.dims[0]) + " labels");
  }
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] > 9) {
      throw DataError(label_path + ": label " + std::to_string(labels.data[i]) + " at index " +
                      std::to_string(i) + " is not a digit");
    }
  }
  Dataset out;
  out.rows = images.dims[1];
  out.cols = images.dims[2];
  gumbel::Index count = images.dims[0];
  if (limit > 0 && limit < count) count = limit;
  const gumbel::Index pixels = out.rows * out.cols;
  out.bytes = Eigen::Map<const ByteMatrix>(images.data.data(), count, pixels);
  images.data = {};  // freed before the floats are made
  if (floats) out.images = to_unit_range(out.bytes);
  out.labels.assign(labels.data.begin(), labels.data.begin() + count);
  return out;
}

Splits load_mnist(const std::string& dir, gumbel::Index train_limit, gumbel::Index test_limit,
                  Floats floats) {
  Splits s{load_split(dir, "train", train_limit, floats.train),
           load_split(dir, "t10k", test_limit, floats.test)};
  if (s.train.rows != s.test.rows || s.train.cols != s.test.cols) {
    throw DataError(dir + ": training images are " + std::to_string(s.train.rows) + "x" +
                    std::to_string(s.train.cols) + ", test images " + std::to_string(s.test.rows) +
                    "x" + std::to_string(s.test.cols));
  }
  return s;
}

}  // namespace examples
