// The categorical VAE of the reference articles: an MLP encoder gives N categorical latents of
// K classes, a relaxed (or straight-through, or Gumbel-Rao) sample of them is decoded by a
// mirrored MLP into Bernoulli pixel probabilities.
#pragma once

#include <stdexcept>
#include <string>

#include <gumbel/gumbel.hpp>

namespace vae {

using gumbel::Index;
using Matrix = gumbel::Matrix<float>;
using Var = gumbel::Var<float>;

/// Values that should be finite are not: the training diverged (a learning rate too high).
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How the sample of the latents is differentiated.
enum class Estimator { soft, straight_through, gumbel_rao };

Estimator parse_estimator(const std::string& name);
std::string to_string(Estimator e);

struct ModelShape {
  Index pixels = 784;
  Index hidden1 = 512;
  Index hidden2 = 256;
  Index latents = 30;  ///< N
  Index classes = 10;  ///< K
  /// The encoder's last layer without ReLU (Jang et al. 2017); the articles' model has one.
  bool linear_logits = false;
};

/// What one forward pass gives.
struct Forward {
  Var loss;          ///< reconstruction + KL, averaged over the batch (1x1)
  Var recon_logits;  ///< decoder output before the sigmoid (B x pixels)
  float reconstruction = 0;
  float kl = 0;
};

/// Two Sequentials of three linear layers each: parameters encoder.0.weight, encoder.0.bias,
/// encoder.2.weight, ..., decoder.4.bias, as PyTorch names an nn.Sequential's.
class CategoricalVae : public gumbel::nn::Module<float> {
 public:
  CategoricalVae(const ModelShape& shape, gumbel::Generator& init);

  /// Encoder 784-512-256-N*K (ReLU after each layer, as the articles' encoder), a sample of the
  /// N latents at temperature tau, decoder N*K-256-512-784. The loss is the articles':
  /// sum over pixels of the binary cross-entropy (computed from logits) / B
  /// + sum over latents of KL(q(z|x) || uniform) / B, where B is `batch` (the rows of the
  /// whole batch when x is one block of it; x.rows() when 0). Throws NonFiniteError when the
  /// encoder's logits overflowed (the sampler would reject them as invalid input).
  Forward forward(const Var& x, float tau, gumbel::Generator& noise, Estimator estimator,
                  Index rao_samples, Index batch = 0);

  /// Pixel probabilities decoded from latent codes (rows of N one-hot blocks of K).
  Var decode(const Var& z);

  /// The logits of q(z|x): (B N) x K, row b N + n for latent n of image b.
  Var encode(const Var& x);

  /// log p(x|z) of each row: minus the Bernoulli cross-entropy of the pixels `x` (R x pixels)
  /// under the decoder's output for the codes `z` (R x N K), summed over pixels, in double.
  Eigen::VectorXd log_likelihood(const Var& z, const Var& x);

  const ModelShape& shape() const { return shape_; }

 private:
  ModelShape shape_;
  gumbel::nn::Sequential<float> encoder_;  ///< pixels to the N K logits
  gumbel::nn::Sequential<float> decoder_;  ///< codes to the pixels' logits
};

}  // namespace vae
