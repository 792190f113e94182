#include "chart.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "files.hpp"

namespace examples {
namespace {

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"};

/// Data range of one axis, in axis units (log10 for a log axis), padded and never empty.
struct Axis {
  bool log;
  double lo = INFINITY, hi = -INFINITY;

  bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double unit(double v) const { return log ? std::log10(v) : v; }
  void include(double v) {
    if (!usable(v)) return;
    lo = std::min(lo, unit(v));
    hi = std::max(hi, unit(v));
  }
  void finish(double pad) {
    if (lo > hi) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    const double margin = pad * (hi - lo);
    lo -= margin;
    hi += margin;
  }
  std::string label(double u) const {
    std::ostringstream s;
    s.precision(3);
    s << (log ? std::pow(10.0, u) : u);
    return s.str();
  }
};

}  // namespace

std::string chart_svg(const Chart& chart) {
  const double w = 720, h = 440, left = 80, right = 190, top = 40, bottom = 55;
  Axis ax{chart.log_x}, ay{chart.log_y};
  for (const auto& s : chart.series) {
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (ax.usable(s.x[i]) && ay.usable(s.y[i])) ax.include(s.x[i]), ay.include(s.y[i]);
    }
  }
  ax.finish(0.0);
  ay.finish(0.05);
  const auto px = [&](double x) {
    return left + (w - left - right) * (ax.unit(x) - ax.lo) / (ax.hi - ax.lo);
  };
  const auto py = [&](double y) {
    return top + (h - top - bottom) * (ay.hi - ay.unit(y)) / (ay.hi - ay.lo);
  };
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' "
         "fill='white'/>\n"
      << "<text x='" << (left + w - right) / 2 << "' y='22' text-anchor='middle' font-size='15'>"
      << chart.title << "</text>\n";
  for (int i = 0; i <= 5; ++i) {  // grid lines with value labels on both axes
    const double uy = ay.lo + (ay.hi - ay.lo) * i / 5.0;
    const double y = top + (h - top - bottom) * (ay.hi - uy) / (ay.hi - ay.lo);
    svg << "<line x1='" << left << "' x2='" << w - right << "' y1='" << y << "' y2='" << y
        << "' stroke='#ddd'/><text x='" << left - 6 << "' y='" << y + 4 << "' text-anchor='end'>"
        << ay.label(uy) << "</text>\n";
    const double ux = ax.lo + (ax.hi - ax.lo) * i / 5.0;
    const double x = left + (w - left - right) * i / 5.0;
    svg << "<text x='" << x << "' y='" << h - bottom + 18 << "' text-anchor='middle'>"
        << ax.label(ux) << "</text>\n";
  }
  svg << "<text x='" << (left + w - right) / 2 << "' y='" << h - 14 << "' text-anchor='middle'>"
      << chart.x_label << "</text>\n<text transform='translate(16," << (top + h - bottom) / 2
      << ") rotate(-90)' text-anchor='middle'>" << chart.y_label << "</text>\n";
  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const char* colour = kColours[k % (sizeof kColours / sizeof *kColours)];
    svg << "<polyline fill='none' stroke='" << colour << "' stroke-width='2' points='";
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (ax.usable(s.x[i]) && ay.usable(s.y[i])) svg << px(s.x[i]) << ',' << py(s.y[i]) << ' ';
    }
    svg << "'/>\n";
    for (std::size_t i = 0; s.markers && i < s.x.size() && i < s.y.size(); ++i) {
      if (!ax.usable(s.x[i]) || !ay.usable(s.y[i])) continue;
      svg << "<circle cx='" << px(s.x[i]) << "' cy='" << py(s.y[i]) << "' r='3' fill='" << colour
          << "'/>\n";
    }
    svg << "<text x='" << w - right + 12 << "' y='" << top + 15 + 18 * double(k) << "' fill='"
        << colour << "'>" << s.name << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_chart(const std::string& path, const Chart& chart) {
  write_file_atomic(path, chart_svg(chart));
}

}  // namespace examples
