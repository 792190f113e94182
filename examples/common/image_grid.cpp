#include "image_grid.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "files.hpp"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace examples {

void write_image_grid(const std::string& path, const gumbel::Matrix<float>& images,
                      gumbel::Index height, gumbel::Index width, gumbel::Index columns, int scale) {
  using gumbel::Index;
  const Index count = images.rows();
  const Index grid_rows = (count + columns - 1) / columns;
  const Index pad = 2;
  const Index cell_h = height * scale + pad;
  const Index cell_w = width * scale + pad;
  const Index img_h = grid_rows * cell_h + pad;
  const Index img_w = columns * cell_w + pad;
  std::vector<unsigned char> pixels(static_cast<std::size_t>(img_h * img_w), 40);
  for (Index n = 0; n < count; ++n) {
    const Index top = pad + (n / columns) * cell_h;
    const Index left = pad + (n % columns) * cell_w;
    for (Index y = 0; y < height * scale; ++y) {
      for (Index x = 0; x < width * scale; ++x) {
        const float v = std::clamp(images(n, (y / scale) * width + x / scale), 0.0f, 1.0f);
        pixels[static_cast<std::size_t>((top + y) * img_w + left + x)] =
            static_cast<unsigned char>(std::lround(v * 255.0f));
      }
    }
  }
  std::string png;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
  };
  if (stbi_write_png_to_func(append, &png, int(img_w), int(img_h), 1, pixels.data(), int(img_w)) ==
      0) {
    throw std::runtime_error(path + ": PNG encoding failed");
  }
  write_file_atomic(path, png);
}

}  // namespace examples
