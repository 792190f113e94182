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

}  // namespace vae
