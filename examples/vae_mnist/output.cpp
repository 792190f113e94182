#include "output.hpp"

#include "chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vae {

void write_loss_svg(const std::string& path, const std::vector<LossPoint>& points) {
  examples::Chart chart{"Loss per epoch", "epoch", "loss", false, false, {}};
  examples::Series train{"train loss", {}, {}, true}, test{"test loss", {}, {}, true};
  for (const auto& p : points) {
    train.x.push_back(p.epoch);
    train.y.push_back(p.train);
    test.x.push_back(p.epoch);
    test.y.push_back(p.test);
  }
  chart.series = {train, test};
  examples::write_chart(path, chart);
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
