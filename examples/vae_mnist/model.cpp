#include "model.hpp"

namespace vae {

Estimator parse_estimator(const std::string& name) {
  if (name == "soft") return Estimator::soft;
  if (name == "st" || name == "straight-through") return Estimator::straight_through;
  if (name == "gumbel-rao") return Estimator::gumbel_rao;
  throw gumbel::ValueError("estimator '" + name + "' is not one of soft, st, gumbel-rao");
}

std::string to_string(Estimator e) {
  switch (e) {
    case Estimator::soft:
      return "soft";
    case Estimator::straight_through:
      return "st";
    case Estimator::gumbel_rao:
      return "gumbel-rao";
  }
  return "?";
}

CategoricalVae::CategoricalVae(const ModelShape& shape, gumbel::Generator& init)
    : shape_(shape),
      enc1_(shape.pixels, shape.hidden1, init),
      enc2_(shape.hidden1, shape.hidden2, init),
      enc3_(shape.hidden2, shape.latents * shape.classes, init),
      dec1_(shape.latents * shape.classes, shape.hidden2, init),
      dec2_(shape.hidden2, shape.hidden1, init),
      dec3_(shape.hidden1, shape.pixels, init) {
  register_module("enc1", enc1_);
  register_module("enc2", enc2_);
  register_module("enc3", enc3_);
  register_module("dec1", dec1_);
  register_module("dec2", dec2_);
  register_module("dec3", dec3_);
}

Forward CategoricalVae::forward(const Var& x, float tau, gumbel::Generator& noise,
                                Estimator estimator, Index rao_samples) {
  using namespace gumbel;
  const Index batch = x.rows();
  const Index n = shape_.latents;
  const Index k = shape_.classes;
  const Var logits = encode(x);
  if (!logits.value().allFinite()) {
    throw NonFiniteError("the encoder's logits are not finite: the parameters have diverged");
  }
  Var z;
  switch (estimator) {
    case Estimator::soft:
      z = gumbel_softmax(logits, tau, noise);
      break;
    case Estimator::straight_through:
      z = gumbel_softmax(logits, tau, noise, true);
      break;
    case Estimator::gumbel_rao:
      z = gumbel_rao(logits, tau, noise, rao_samples);
      break;
  }
  const Var recon_logits = dec3_(relu(dec2_(relu(dec1_(reshape(z, batch, n * k))))));
  const float inv_batch = 1.0f / float(batch);
  const Var reconstruction =
      binary_cross_entropy_with_logits(recon_logits, x, Reduction::sum) * inv_batch;
  const Var kl = kl_uniform(logits, Reduction::sum) * inv_batch;
  Forward out;
  out.loss = reconstruction + kl;
  out.recon_logits = recon_logits;
  out.reconstruction = reconstruction.item();
  out.kl = kl.item();
  return out;
}

Var CategoricalVae::encode(const Var& x) {
  using namespace gumbel;
  const Var h = relu(enc2_(relu(enc1_(x))));
  const Var out = shape_.linear_logits ? enc3_(h) : relu(enc3_(h));
  // One categorical per row: (B, N*K) viewed as (B*N, K).
  return reshape(out, x.rows() * shape_.latents, shape_.classes);
}

Eigen::VectorXd CategoricalVae::log_likelihood(const Var& z, const Var& x) {
  using namespace gumbel;
  const Var logits = dec3_(relu(dec2_(relu(dec1_(z)))));
  const Var bce = binary_cross_entropy_with_logits(logits, x, Reduction::none);
  return -bce.value().cast<double>().rowwise().sum();
}

Var CategoricalVae::decode(const Var& z) {
  return gumbel::sigmoid(dec3_(gumbel::relu(dec2_(gumbel::relu(dec1_(z))))));
}

}  // namespace vae
