// Writing results: an SVG loss curve (atomic file writes and PNG image grids come from
// examples/common).
#pragma once

#include <string>
#include <vector>

#include <gumbel/gumbel.hpp>

#include "files.hpp"
#include "image_grid.hpp"

namespace vae {

using examples::write_file_atomic;

using examples::write_image_grid;

/// One point of the loss curve.
struct LossPoint {
  double epoch;
  double train;
  double test;
};

/// Train and test loss against epoch as an SVG line chart.
void write_loss_svg(const std::string& path, const std::vector<LossPoint>& points);

}  // namespace vae
