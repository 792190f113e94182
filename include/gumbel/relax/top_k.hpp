// Gumbel-top-k: k distinct classes per row sampled without replacement (Kool et al. 2019).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel {

/// The k largest of logits + g per row (computed as (logits - max) + g, see perturb_logits), in
/// decreasing order: the first is a Gumbel-max sample, and the k together are a sample without
/// replacement from softmax(logits) (each next class drawn from the renormalised rest). Masked
/// (-inf) classes are never chosen, so a row needs at least k finite logits.
template <class Derived>
Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> gumbel_top_k(
    const Eigen::MatrixBase<Derived>& logits, Index k, Generator& gen) {
  constexpr const char* op = "gumbel_top_k";
  if (k < 1 || k > logits.cols()) {
    detail::fail<ValueError>(op, "k = ", k, " must lie in [1, ", logits.cols(), "] for logits of ",
                             shape_str(logits.rows(), logits.cols()));
  }
  for (Index i = 0; i < logits.rows(); ++i) {
    const Index finite = (logits.row(i).array() > -INFINITY).count();
    if (finite < k) {
      detail::fail<ValueError>(op, "row ", i, " has ", finite,
                               " unmasked classes, fewer than k = ", k);
    }
  }
  const auto p = detail::perturb_logits_for(op, logits, gen);
  Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> top(p.rows(), k);
  std::vector<Index> order(static_cast<std::size_t>(p.cols()));
  for (Index i = 0; i < p.rows(); ++i) {
    std::iota(order.begin(), order.end(), Index{0});
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](Index a, Index b) { return p(i, a) > p(i, b); });
    for (Index j = 0; j < k; ++j) top(i, j) = order[static_cast<std::size_t>(j)];
  }
  return top;
}

}  // namespace gumbel
