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

CategoricalVae::CategoricalVae(const ModelShape& shape, gumbel::Generator& init) : shape_(shape) {
  using Linear = gumbel::nn::Linear<float>;
  using ReLU = gumbel::nn::ReLU<float>;
  const Index codes = shape.latents * shape.classes;
  encoder_.add<Linear>(shape.pixels, shape.hidden1, init);
  encoder_.add<ReLU>();
  encoder_.add<Linear>(shape.hidden1, shape.hidden2, init);
  encoder_.add<ReLU>();
  encoder_.add<Linear>(shape.hidden2, codes, init);
  if (!shape.linear_logits) encoder_.add<ReLU>();
  decoder_.add<Linear>(codes, shape.hidden2, init);
  decoder_.add<ReLU>();
  decoder_.add<Linear>(shape.hidden2, shape.hidden1, init);
  decoder_.add<ReLU>();
  decoder_.add<Linear>(shape.hidden1, shape.pixels, init);
  register_module("encoder", encoder_);
  register_module("decoder", decoder_);
}

Forward CategoricalVae::forward(const Var& x, float tau, gumbel::Generator& noise,
                                Estimator estimator, Index rao_samples, Index batch) {
  using namespace gumbel;
  const Var logits = encode(x);
  if (!logits.value().allFinite()) {
    throw NonFiniteError("the encoder's logits are not finite: the parameters have diverged");
  }
  const Var z = estimator == Estimator::gumbel_rao
                    ? gumbel_rao(logits, tau, noise, rao_samples)
                    : gumbel_softmax(logits, tau, noise, estimator == Estimator::straight_through);
  const Var recon_logits = decoder_(reshape(z, x.rows(), shape_.latents * shape_.classes));
  const float inv_batch = 1.0f / float(batch > 0 ? batch : x.rows());
  const Var reconstruction =
      binary_cross_entropy_with_logits(recon_logits, x, Reduction::sum) * inv_batch;
  const Var kl = kl_uniform(logits, Reduction::sum) * inv_batch;
  return {reconstruction + kl, recon_logits, reconstruction.item(), kl.item()};
}

Var CategoricalVae::encode(const Var& x) {
  // One categorical per row: (B, N*K) viewed as (B*N, K).
  return gumbel::reshape(encoder_(x), x.rows() * shape_.latents, shape_.classes);
}

Eigen::VectorXd CategoricalVae::log_likelihood(const Var& z, const Var& x) {
  using namespace gumbel;
  const Var bce = binary_cross_entropy_with_logits(decoder_(z), x, Reduction::none);
  return -bce.value().cast<double>().rowwise().sum();
}

Var CategoricalVae::decode(const Var& z) {
  return gumbel::sigmoid(decoder_(z));
}

}  // namespace vae
