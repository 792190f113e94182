#include "evaluation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

namespace vae {

using Clock = std::chrono::steady_clock;

double evaluate(CategoricalVae& model, const examples::Dataset& data, Index batch_size, float tau,
                gumbel::Generator& noise, Estimator estimator, Index rao_samples, Index keep,
                Matrix& kept) {
  gumbel::Tape<float> tape;
  tape.set_grad_enabled(false);
  double total = 0;
  const Index n = data.bytes.rows();
  kept.resize(std::min(keep, n), data.bytes.cols());
  for (Index begin = 0; begin < n; begin += batch_size) {
    const Index rows = std::min(batch_size, n - begin);
    tape.clear();
    const Var x = tape.constant(examples::to_unit_range(data.bytes.middleRows(begin, rows)));
    const Forward f = model.forward(x, tau, noise, estimator, rao_samples);
    total += double(f.loss.item()) * double(rows);
    if (begin < kept.rows()) {
      const Index take = std::min(rows, kept.rows() - begin);
      kept.middleRows(begin, take) =
          f.recon_logits.value().topRows(take).array().logistic().matrix();
    }
  }
  return total / double(n);
}

void binarize_bytes(examples::ByteMatrix& bytes, gumbel::Generator gen) {
  std::vector<float> u(std::size_t(bytes.cols()));
  for (Index i = 0; i < bytes.rows(); ++i) {
    gen.fill_uniform(u.data(), bytes.cols());
    for (Index j = 0; j < bytes.cols(); ++j) {
      bytes(i, j) = u[std::size_t(j)] * 255.0f < float(bytes(i, j)) ? 255 : 0;
    }
  }
}

gumbel::CategoricalBounds test_bounds(CategoricalVae& model, const examples::Dataset& data,
                                      Index samples, gumbel::Generator& gen, bool show_progress) {
  const Index n = data.bytes.rows();
  const ModelShape& shape = model.shape();
  gumbel::Tape<float> tape;
  tape.set_grad_enabled(false);
  Matrix targets;
  const Index* chunk_begin = nullptr;  // the first image of the chunk being bounded
  const auto log_likelihood = [&](const Matrix& codes, const gumbel::IndexVector& example) {
    targets.resize(codes.rows(), data.bytes.cols());
    for (Index r = 0; r < codes.rows(); ++r) {
      targets.row(r) = examples::to_unit_range(data.bytes.row(*chunk_begin + example(r)));
    }
    tape.clear();
    return model.log_likelihood(tape.constant(codes), tape.constant(targets));
  };
  gumbel::BoundOptions options;
  options.samples = samples;
  // Whole images per call, about 250 rows: the decoder's activations for them stay near 3 MB.
  options.max_rows = std::max(samples, 256 / samples * samples);
  const auto start = Clock::now();
  Index shown = 0;
  // Chunks of images, each encoded and bounded in turn: the same codes as one call over all
  // (code i of image b takes the noise at a fixed offset of gen's stream), a twentieth of the
  // memory.
  gumbel::CategoricalBounds out;
  for (auto* v : {&out.reconstruction, &out.kl, &out.elbo, &out.iw}) v->resize(n);
  const Index chunk = 250;
  for (Index begin = 0; begin < n; begin += chunk) {
    const Index rows = std::min(chunk, n - begin);
    chunk_begin = &begin;
    tape.clear();
    const Matrix logits =
        model.encode(tape.constant(examples::to_unit_range(data.bytes.middleRows(begin, rows))))
            .value();
    if (!logits.allFinite()) {
      throw NonFiniteError("the encoder's logits are not finite: the parameters have diverged");
    }
    if (show_progress) {
      options.progress = [&](Index done, Index) {
        done += begin;
        if (done * 10 / n == shown && done != n) return;
        shown = done * 10 / n;
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        std::fprintf(stderr, "bounds: %lld/%lld test images, %.0f s, ETA %.0f s\n",
                     static_cast<long long>(done), static_cast<long long>(n), seconds,
                     done > 0 ? seconds / double(done) * double(n - done) : 0.0);
      };
    }
    const gumbel::CategoricalBounds part =
        gumbel::categorical_bounds(logits, shape.latents, gen, log_likelihood, options);
    out.reconstruction.segment(begin, rows) = part.reconstruction;
    out.kl.segment(begin, rows) = part.kl;
    out.elbo.segment(begin, rows) = part.elbo;
    out.iw.segment(begin, rows) = part.iw;
  }
  return out;
}

std::pair<double, double> negated_mean_se(const Eigen::VectorXd& values) {
  const double n = double(values.size());
  const double mean = values.mean();
  const double var = n > 1 ? (values.array() - mean).square().sum() / (n - 1) : 0.0;
  return {-mean, std::sqrt(var / n)};
}

}  // namespace vae
