// Grids of grayscale images as PNG (stb_image_write), written atomically.
#pragma once

#include <string>

#include <gumbel/gumbel.hpp>

namespace examples {

/// A grid of grayscale images (one image per row of `images`, values in [0, 1], each
/// height x width), `columns` per grid row, each pixel drawn as scale x scale, as PNG.
void write_image_grid(const std::string& path, const gumbel::Matrix<float>& images,
                      gumbel::Index height, gumbel::Index width, gumbel::Index columns,
                      int scale = 2);

}  // namespace examples
