// Writes a small synthetic MNIST-like split as IDX files, for running the examples in tests:
//   make_idx <dir> <prefix> <count> <height> <width>
// writes <dir>/<prefix>-images-idx3-ubyte and <dir>/<prefix>-labels-idx1-ubyte. Image i has label
// i % 10 and shows that label's pattern (pixel p lit where (p + 3 label) % 10 < 3; the ten
// patterns differ) plus deterministic noise.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

void put_u32(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<unsigned char>(v >> shift));
}

bool write(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: make_idx <dir> <prefix> <count> <height> <width>\n");
    return 2;
  }
  const std::string dir = argv[1], prefix = argv[2];
  const long count = std::atol(argv[3]), height = std::atol(argv[4]), width = std::atol(argv[5]);
  if (count < 1 || height < 1 || width < 1 || count * height * width > (1L << 28)) {
    std::fprintf(stderr, "make_idx: bad sizes\n");
    return 2;
  }
  std::vector<unsigned char> images{0, 0, 8, 3}, labels{0, 0, 8, 1};
  put_u32(images, std::uint32_t(count));
  put_u32(images, std::uint32_t(height));
  put_u32(images, std::uint32_t(width));
  put_u32(labels, std::uint32_t(count));
  std::uint32_t state = 12345;
  for (long i = 0; i < count; ++i) {
    const long label = i % 10;
    labels.push_back(static_cast<unsigned char>(label));
    for (long r = 0; r < height; ++r) {
      for (long c = 0; c < width; ++c) {
        state = state * 1664525u + 1013904223u;
        const long noise = long(state >> 27);  // 0..31
        const long lit = (r * width + c + 3 * label) % 10 < 3 ? 200 : 0;
        images.push_back(static_cast<unsigned char>(lit + noise));
      }
    }
  }
  if (!write(dir + "/" + prefix + "-images-idx3-ubyte", images) ||
      !write(dir + "/" + prefix + "-labels-idx1-ubyte", labels)) {
    std::fprintf(stderr, "make_idx: cannot write to %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
