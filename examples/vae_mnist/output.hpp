// Writing results: atomic file writes, PNG image grids, an SVG loss curve, .npy tensors.
#pragma once

#include <string>
#include <vector>

#include <gumbel/gumbel.hpp>

#include "files.hpp"

namespace vae {

using examples::write_file_atomic;

/// A grid of grayscale images (one image per row of `images`, values in [0, 1], each
/// height x width), `columns` per grid row, each pixel drawn as scale x scale, as PNG.
void write_image_grid(const std::string& path, const gumbel::Matrix<float>& images,
                      gumbel::Index height, gumbel::Index width, gumbel::Index columns,
                      int scale = 2);

/// One point of the loss curve.
struct LossPoint {
  double epoch;
  double train;
  double test;
};

/// Train and test loss against epoch as an SVG line chart.
void write_loss_svg(const std::string& path, const std::vector<LossPoint>& points);

/// A float32 matrix in NumPy's .npy format (loadable with numpy.load).
std::string npy_bytes(const gumbel::Matrix<float>& m);

}  // namespace vae
