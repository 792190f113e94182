#include "output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

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

namespace vae {

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(temp + ": cannot create (" + std::strerror(errno) + ")");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error(temp + ": write failed (" + why + ")");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temp.c_str());
    throw std::runtime_error(temp + ": could not be flushed to disk");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    throw std::runtime_error(path + ": cannot replace (" + why + ")");
  }
}

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

void write_loss_svg(const std::string& path, const std::vector<LossPoint>& points) {
  const double w = 640, h = 400, left = 70, right = 20, top = 40, bottom = 50;
  double lo = INFINITY, hi = -INFINITY, max_epoch = 1;
  for (const auto& p : points) {
    lo = std::min({lo, p.train, p.test});
    hi = std::max({hi, p.train, p.test});
    max_epoch = std::max(max_epoch, p.epoch);
  }
  if (points.empty()) lo = 0, hi = 1;
  if (hi - lo < 1e-9) hi = lo + 1;
  const double margin = 0.05 * (hi - lo);
  lo -= margin;
  hi += margin;
  const auto px = [&](double epoch) { return left + (w - left - right) * (epoch / max_epoch); };
  const auto py = [&](double loss) { return top + (h - top - bottom) * (hi - loss) / (hi - lo); };
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
      << "' font-family='sans-serif' font-size='12'>\n"
      << "<rect width='100%' height='100%' fill='white'/>\n"
      << "<text x='" << w / 2 << "' y='22' text-anchor='middle' font-size='15'>Loss per epoch"
      << "</text>\n";
  for (int i = 0; i <= 5; ++i) {  // horizontal grid with loss labels
    const double v = lo + (hi - lo) * i / 5.0;
    svg << "<line x1='" << left << "' x2='" << w - right << "' y1='" << py(v) << "' y2='" << py(v)
        << "' stroke='#ddd'/><text x='" << left - 6 << "' y='" << py(v) + 4
        << "' text-anchor='end'>" << std::lround(v * 10) / 10.0 << "</text>\n";
  }
  for (int e = 0; e <= int(max_epoch); ++e) {
    svg << "<text x='" << px(e) << "' y='" << h - bottom + 18 << "' text-anchor='middle'>" << e
        << "</text>\n";
  }
  svg << "<text x='" << (left + w - right) / 2 << "' y='" << h - 12
      << "' text-anchor='middle'>epoch</text>\n";
  const auto line = [&](auto get, const char* colour, const char* name, double label_y) {
    svg << "<polyline fill='none' stroke='" << colour << "' stroke-width='2' points='";
    for (const auto& p : points) svg << px(p.epoch) << ',' << py(get(p)) << ' ';
    svg << "'/>\n";
    for (const auto& p : points) {
      svg << "<circle cx='" << px(p.epoch) << "' cy='" << py(get(p)) << "' r='3' fill='" << colour
          << "'/>\n";
    }
    svg << "<text x='" << w - right - 90 << "' y='" << label_y << "' fill='" << colour << "'>"
        << name << "</text>\n";
  };
  line([](const LossPoint& p) { return p.train; }, "#1f77b4", "train loss", top + 15);
  line([](const LossPoint& p) { return p.test; }, "#d62728", "test loss", top + 32);
  svg << "</svg>\n";
  write_file_atomic(path, svg.str());
}

std::string npy_bytes(const gumbel::Matrix<float>& m) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const std::size_t total = ((10 + header.size() + 1 + 63) / 64) * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(m.data()), sizeof(float) * std::size_t(m.size()));
  return out;
}

}  // namespace vae
