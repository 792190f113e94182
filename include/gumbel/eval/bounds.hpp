// Likelihood bounds of a model with categorical latents, from exact discrete samples: the
// evidence lower bound (ELBO) and the importance-weighted bound of Burda, Grosse & Salakhutdinov
// (2016), the figures papers on discrete latent variables report.
//
// The model: N independent categoricals of K classes per example, an encoder that gives their
// logits (q(z|x) = prod_n softmax(logits_n)[z_n]), a factorised prior p(z) = prod_n p(z_n) and
// any decoder likelihood p(x|z), given as a callable on batches of one-hot codes.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/parallel.hpp"
#include "gumbel/core/sizes.hpp"
#include "gumbel/core/types.hpp"
#include "gumbel/random/generator.hpp"
#include "gumbel/relax/perturb.hpp"

namespace gumbel {

struct BoundOptions {
  /// m: discrete codes drawn per example (m = 1 gives the single-sample ELBO).
  Index samples = 1;
  /// Codes handed to the likelihood per call (whole examples' worth when m is smaller).
  Index max_rows = 8192;
  /// log p(z_n = k) for the K classes (normalised here); empty means the uniform prior 1/K.
  Eigen::VectorXd prior_log_probs;
  /// Called after each batch of codes with (examples finished, examples in all).
  std::function<void(Index, Index)> progress;
};

/// Per example, in nats (double).
struct CategoricalBounds {
  /// log p(x|z) averaged over the m codes: an unbiased estimate of E_q[log p(x|z)].
  Eigen::VectorXd reconstruction;
  /// KL(q(z|x) || p(z)), exact: sum_n sum_k q_nk (log q_nk - log p_k).
  Eigen::VectorXd kl;
  /// reconstruction - kl: an unbiased estimate of the ELBO.
  Eigen::VectorXd elbo;
  /// log (1/m) sum_i p(x|z_i) p(z_i) / q(z_i|x): a lower bound on log p(x) in expectation, which
  /// rises towards log p(x) as m grows (m = 1: E[iw] = ELBO).
  Eigen::VectorXd iw;
};

namespace detail {

/// Row-wise log_softmax in double; errors name `op` and the row when a row has no finite
/// entry or holds +inf or NaN.
template <class Derived>
Eigen::MatrixXd log_softmax_double(const char* op, const Eigen::MatrixBase<Derived>& logits) {
  Eigen::MatrixXd out = logits.template cast<double>();
  for (Index i = 0; i < out.rows(); ++i) {
    const double m = out.row(i).maxCoeff();
    if (out.row(i).hasNaN() || m == std::numeric_limits<double>::infinity()) {
      fail<ValueError>(op, "logits row ", i, " contains +inf or NaN");
    }
    if (m == -std::numeric_limits<double>::infinity()) {
      fail<ValueError>(op, "logits row ", i, " has no finite entry (every class is masked)");
    }
    out.row(i).array() -= m;
    out.row(i).array() -= std::log(out.row(i).array().exp().sum());
  }
  return out;
}

/// A running log-sum-exp: add(w) for each term, value() = log sum exp(w). NaN propagates.
struct LogSumExp {
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;  ///< sum of exp(w - max)
  void add(double w) {
    if (w > max) {
      sum = sum * std::exp(max - w) + 1;
      max = w;
    } else {
      sum += std::exp(w - max);
    }
  }
  double value() const { return max + std::log(sum); }
};

}  // namespace detail

/// Bounds on log p(x) for B examples with exact discrete samples of their latents.
///
/// `logits` holds B*N rows of K columns: rows [b N, (b + 1) N) are example b's N categoricals.
/// For each example, m codes z_i ~ q(z|x) are drawn by Gumbel-max (the same codes for any
/// max_rows or thread count) and passed to `log_likelihood(codes, example)`, where `codes` is
/// R x (N K) one-hot (row r: latent n's class at column n K + z_n) and `example(r)` the example
/// (0..B-1) of row r; it returns the R values log p(x_example(r) | z_r) as an Eigen::VectorXd.
/// Weights log p(x|z) + log p(z) - log q(z|x) are combined in double with a max shift.
template <class Derived, class LogLikelihood>
CategoricalBounds categorical_bounds(const Eigen::MatrixBase<Derived>& logits, Index latents,
                                     Generator& gen, LogLikelihood&& log_likelihood,
                                     const BoundOptions& options = {}) {
  using T = typename Derived::Scalar;
  constexpr const char* op = "categorical_bounds";
  const Index k = logits.cols();
  if (latents < 1) detail::fail<ValueError>(op, "latents = ", latents, " must be at least 1");
  if (k < 1) detail::fail<ShapeError>(op, "logits have 0 classes: ", shape_str(logits.rows(), k));
  if (logits.rows() % latents != 0) {
    detail::fail<ShapeError>(op, "logits ", shape_str(logits.rows(), k),
                             " do not hold a whole number of examples of ", latents, " latents");
  }
  const Index m = options.samples;
  if (m < 1) detail::fail<ValueError>(op, "samples m = ", m, " must be at least 1");
  if (options.max_rows < 1) {
    detail::fail<ValueError>(op, "max_rows = ", options.max_rows, " must be at least 1");
  }
  const Index examples = logits.rows() / latents;
  const Index width = detail::checked_size<T>(op, latents, k);
  const Index total_rows = detail::checked_size<T>(op, examples, m);
  const Index call_rows = std::min(total_rows, std::max(options.max_rows, Index{1}));
  detail::checked_size<T>(op, call_rows, width);

  // log q and the prior, in double.
  const Matrix<T> l = logits;
  const Eigen::MatrixXd log_q = detail::log_softmax_double(op, l);
  Eigen::VectorXd log_prior;
  if (options.prior_log_probs.size() == 0) {
    log_prior = Eigen::VectorXd::Constant(k, -std::log(double(k)));
  } else {
    if (options.prior_log_probs.size() != k) {
      detail::fail<ShapeError>(op, "prior_log_probs has ", options.prior_log_probs.size(),
                               " entries for logits of ", k, " classes");
    }
    log_prior = detail::log_softmax_double(op, options.prior_log_probs.transpose()).transpose();
  }

  CategoricalBounds out;
  out.kl.resize(examples);
  for (Index b = 0; b < examples; ++b) {
    double kl = 0;
    for (Index r = b * latents; r < (b + 1) * latents; ++r) {
      for (Index c = 0; c < k; ++c) {
        const double q = std::exp(log_q(r, c));
        if (q > 0) kl += q * (log_q(r, c) - log_prior(c));
      }
    }
    out.kl(b) = kl;
  }

  // Code i of example b takes the noise at block first + (b m + i) * per_code: any split of the
  // rows into calls draws the same codes.
  const std::uint64_t per_code = Generator::blocks_for<T>(width);
  if (per_code != 0 &&
      std::uint64_t(total_rows) > std::numeric_limits<std::uint64_t>::max() / per_code) {
    detail::fail<ValueError>(op, examples, " examples x ", m,
                             " samples need too many random numbers");
  }
  const std::uint64_t first = gen.advance(per_code * std::uint64_t(total_rows));

  std::vector<detail::LogSumExp> weights(static_cast<std::size_t>(examples));
  out.reconstruction = Eigen::VectorXd::Zero(examples);
  Matrix<T> codes(call_rows, width);
  IndexVector example(call_rows);
  Eigen::VectorXd log_ratio(call_rows);  // log p(z) - log q(z|x) of each row
  std::vector<std::uint8_t> failed(static_cast<std::size_t>(call_rows));

  for (Index begin = 0; begin < total_rows; begin += call_rows) {
    const Index rows = std::min(call_rows, total_rows - begin);
    if (rows != codes.rows()) {  // the last, shorter call
      codes.resize(rows, width);
      example.resize(rows);
    }
    codes.setZero();
    detail::parallel_rows(rows, width, [&](Index r) {
      const Index row = begin + r;
      const Index b = row / m;
      example(r) = b;
      T perturbed[64];
      std::vector<T> large;
      T* p = perturbed;
      if (k > 64) {
        large.resize(std::size_t(k));
        p = large.data();
      }
      double ratio = 0;
      failed[std::size_t(r)] = 0;
      for (Index n = 0; n < latents; ++n) {
        const Index src = b * latents + n;
        const Index z = detail::perturb_row(gen, first + std::uint64_t(row) * per_code, n,
                                            l.data() + src * k, p, k);
        if (z < 0) {
          failed[std::size_t(r)] = 1;
          return;
        }
        codes(r, n * k + z) = T(1);
        ratio += log_prior(z) - log_q(src, z);
      }
      log_ratio(r) = ratio;
    });
    for (Index r = 0; r < rows; ++r) {
      if (failed[std::size_t(r)]) {
        detail::fail<ValueError>(op, "example ", (begin + r) / m, " has unusable logits");
      }
    }
    const Eigen::VectorXd ll = log_likelihood(static_cast<const Matrix<T>&>(codes),
                                              static_cast<const IndexVector&>(example));
    if (ll.size() != rows) {
      detail::fail<ShapeError>(op, "the likelihood returned ", ll.size(), " values for ", rows,
                               " codes");
    }
    for (Index r = 0; r < rows; ++r) {
      const Index b = example(r);
      out.reconstruction(b) += ll(r);
      weights[std::size_t(b)].add(ll(r) + log_ratio(r));
    }
    if (options.progress) options.progress(std::min(examples, (begin + rows) / m), examples);
  }

  out.reconstruction /= double(m);
  out.elbo = out.reconstruction - out.kl;
  out.iw.resize(examples);
  const double log_m = std::log(double(m));
  for (Index b = 0; b < examples; ++b) out.iw(b) = weights[std::size_t(b)].value() - log_m;
  return out;
}

}  // namespace gumbel
