// The permutation of a training epoch, drawn from a counter-based generator.
#pragma once

#include <numeric>
#include <utility>
#include <vector>

#include <gumbel/gumbel.hpp>

namespace examples {

/// order = a uniformly random permutation of 0 .. order.size() - 1 (Fisher-Yates, one uniform
/// of `gen` per swap).
inline void shuffle(std::vector<gumbel::Index>& order, gumbel::Generator& gen) {
  std::iota(order.begin(), order.end(), gumbel::Index{0});
  for (gumbel::Index i = gumbel::Index(order.size()) - 1; i > 0; --i) {
    double u;
    gen.fill_uniform(&u, 1);
    std::swap(order[std::size_t(i)], order[std::size_t(gumbel::Index(u * double(i + 1)))]);
  }
}

}  // namespace examples
