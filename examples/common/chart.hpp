// Line charts as SVG, with no dependency: enough to show a loss curve or a variance sweep.
#pragma once

#include <string>
#include <vector>

namespace examples {

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  bool markers = false;  ///< dots at the points, for short series
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;  ///< base-10 axis; points with y <= 0 are left out
  std::vector<Series> series;
};

/// The chart as SVG text (colours are assigned in series order).
std::string chart_svg(const Chart& chart);

/// chart_svg written atomically to `path`.
void write_chart(const std::string& path, const Chart& chart);

}  // namespace examples
