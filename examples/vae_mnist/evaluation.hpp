// Evaluating the categorical VAE: the relaxed test loss, the test set's likelihood bounds with
// discrete codes, and the Bernoulli binarization of the images.
#pragma once

#include <utility>

#include <gumbel/gumbel.hpp>

#include "idx.hpp"
#include "model.hpp"

namespace vae {

/// Average loss over a dataset at temperature tau (no gradients); also returns the
/// reconstructions of the first `keep` images.
double evaluate(CategoricalVae& model, const examples::Dataset& data, Index batch_size, float tau,
                gumbel::Generator& noise, Estimator estimator, Index rao_samples, Index keep,
                Matrix& kept);

/// Sets each pixel to 255 with probability byte / 255 and to 0 otherwise, image after image
/// from the start of `gen`'s stream (so the first n images do not depend on how many follow).
void binarize_bytes(examples::ByteMatrix& bytes, gumbel::Generator gen);

/// Estimates of the test set's bounds from `samples` discrete codes per image; progress on
/// stderr when asked. Throws NonFiniteError when the encoder's logits are not finite.
gumbel::CategoricalBounds test_bounds(CategoricalVae& model, const examples::Dataset& data,
                                      Index samples, gumbel::Generator& gen, bool show_progress);

/// Mean and standard error over images of -values.
std::pair<double, double> negated_mean_se(const Eigen::VectorXd& values);

}  // namespace vae
