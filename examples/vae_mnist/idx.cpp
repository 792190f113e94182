#include "idx.hpp"

#include <zlib.h>

#include <filesystem>
#include <limits>

namespace vae {
namespace {

std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

[[noreturn]] void corrupt(const std::string& name, const std::string& what) {
  throw DataError(name + ": " + what);
}

}  // namespace

IdxArray parse_idx(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  if (size < 4) corrupt(name, "too short for an IDX header (" + std::to_string(size) + " bytes)");
  if (bytes[0] != 0 || bytes[1] != 0) {
    corrupt(name, "not an IDX file (the magic number must start with two zero bytes)");
  }
  if (bytes[2] != 0x08) {
    corrupt(name, "element type 0x" + std::to_string(int(bytes[2])) +
                      " is not supported (MNIST uses 0x08, unsigned byte)");
  }
  const std::size_t ndims = bytes[3];
  if (ndims == 0 || ndims > 4) {
    corrupt(name, "has " + std::to_string(ndims) + " dimensions (expected 1 to 4)");
  }
  const std::size_t header = 4 + 4 * ndims;
  if (size < header) corrupt(name, "truncated inside its header");
  IdxArray out;
  std::size_t count = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint32_t dim = big_endian_u32(bytes + 4 + 4 * d);
    if (dim == 0) corrupt(name, "dimension " + std::to_string(d) + " is 0");
    if (count > std::numeric_limits<std::size_t>::max() / dim) corrupt(name, "dimensions overflow");
    count *= dim;
    out.dims.push_back(dim);
  }
  const std::size_t payload = size - header;
  if (payload < count) {
    corrupt(name, "truncated: the header promises " + std::to_string(count) +
                      " bytes of data but the file holds " + std::to_string(payload));
  }
  if (payload > count) {
    corrupt(name, "has " + std::to_string(payload - count) + " unexpected bytes after the data");
  }
  out.data.assign(bytes + header, bytes + size);
  return out;
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw DataError(path + ": cannot be opened");
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    const int n = gzread(file, chunk, sizeof chunk);
    if (n < 0) {
      int code = 0;
      const std::string what = gzerror(file, &code);
      gzclose(file);
      throw DataError(path + ": read error (" + what + ")");
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  gzclose(file);
  return bytes;
}

IdxArray read_idx(const std::string& path) {
  const auto bytes = read_file(path);
  return parse_idx(bytes.data(), bytes.size(), path);
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

Dataset load_split(const std::string& dir, const std::string& prefix, gumbel::Index limit) {
  const std::string image_path = locate(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = locate(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray images = read_idx(image_path);
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
  out.images = to_unit_range(out.bytes);
  out.labels.assign(labels.data.begin(), labels.data.begin() + count);
  return out;
}

}  // namespace vae
