// The options' checks and the settings that define a run's results (stored in checkpoints and
// settings.json, and compared on resume).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "train.hpp"

namespace vae {
namespace {

template <class... Parts>
[[noreturn]] void invalid(const char* name, Parts&&... parts) {
  std::ostringstream out;
  out << "--" << name << ": ";
  (out << ... << parts);
  throw gumbel::ValueError(out.str());
}

/// The shortest decimal text that reads back as exactly v (settings are compared and stored
/// exactly: 1e-11 and 4e-11 must not both print as 0.0000000000).
std::string exact(double v) {
  char buf[64];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

std::map<std::string, std::string> run_settings(const Options& o, Estimator estimator) {
  std::map<std::string, std::string> s = {{"latents", std::to_string(o.latents)},
                                          {"classes", std::to_string(o.classes)},
                                          {"batch_size", std::to_string(o.batch_size)},
                                          {"lr", exact(o.lr)},
                                          {"tau0", exact(o.tau0)},
                                          {"tau_min", exact(o.tau_min)},
                                          {"anneal_rate", exact(o.anneal_rate)},
                                          {"schedule", o.schedule},
                                          {"estimator", to_string(estimator)},
                                          {"rao_samples", std::to_string(o.rao_samples)},
                                          {"seed", std::to_string(o.seed)},
                                          {"blocks", std::to_string(o.blocks)},
                                          {"train_limit", std::to_string(o.train_limit)},
                                          {"test_limit", std::to_string(o.test_limit)}};
  // Added after checkpoint version 1: stored only when not at their default.
  if (o.anneal_every != 1) s["anneal_every"] = std::to_string(o.anneal_every);
  if (o.lr_decay != 1.0) {
    s["lr_decay"] = exact(o.lr_decay);
    s["lr_decay_every"] = std::to_string(o.lr_decay_every);
  }
  if (o.binarize != "none") {
    s["binarize"] = o.binarize;
    s["binarize_seed"] = std::to_string(o.binarize_seed);
  }
  if (o.encoder != "articles") s["encoder"] = o.encoder;
  return s;
}

std::map<std::string, std::string> checkpoint_settings(const Options& o) {
  return run_settings(o, o.hard ? Estimator::straight_through : parse_estimator(o.estimator));
}

void validate(const Options& o) {
  if (o.epochs < 1) invalid("epochs", "must be at least 1, got ", o.epochs);
  if (o.batch_size < 1) invalid("batch-size", "must be at least 1, got ", o.batch_size);
  if (o.latents < 1) invalid("latents", "must be at least 1, got ", o.latents);
  if (o.classes < 2) invalid("classes", "a categorical needs at least 2 classes, got ", o.classes);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) invalid("lr", "must be positive, got ", o.lr);
  if (!(o.lr_decay > 0) || o.lr_decay > 1) {
    invalid("lr-decay", "must lie in (0, 1], got ", o.lr_decay);
  }
  if (o.lr_decay_every < 1) invalid("lr-decay-every", "must be at least 1, got ", o.lr_decay_every);
  if (!(o.tau0 > 0) || !std::isfinite(float(o.tau0))) {
    invalid("tau0", "must be positive and finite as a float, got ", o.tau0);
  }
  if (!(o.tau_min > 0) || o.tau_min > o.tau0) {
    invalid("tau-min", "must be positive and at most tau0 = ", o.tau0, ", got ", o.tau_min);
  }
  // The model samples in float: 1/tau must be a finite float.
  const double smallest_tau = 1.0 / double(std::numeric_limits<float>::max());
  if (!(float(o.tau_min) > 0) || !std::isfinite(1.0f / float(o.tau_min))) {
    invalid("tau-min", o.tau_min, " is too small for float samples: 1/tau overflows (at least ",
            smallest_tau, ")");
  }
  if (!(o.anneal_rate >= 0) || !std::isfinite(o.anneal_rate)) {
    invalid("anneal-rate", "must be non-negative, got ", o.anneal_rate);
  }
  if (o.schedule != "articles" && o.schedule != "exponential" && o.schedule != "constant") {
    invalid("schedule", "must be articles, exponential or constant, got '", o.schedule, "'");
  }
  if (o.anneal_every < 1) invalid("anneal-every", "must be at least 1, got ", o.anneal_every);
  if (o.binarize != "none" && o.binarize != "fixed" && o.binarize != "dynamic") {
    invalid("binarize", "must be none, fixed or dynamic, got '", o.binarize, "'");
  }
  if (o.encoder != "articles" && o.encoder != "linear") {
    invalid("encoder", "must be articles or linear, got '", o.encoder, "'");
  }
  if (o.eval_samples < 1) invalid("eval-samples", "must be at least 1, got ", o.eval_samples);
  const Estimator e = parse_estimator(o.estimator);
  if (o.hard && e != Estimator::soft && e != Estimator::straight_through) {
    invalid("hard", "conflicts with --estimator ", o.estimator);
  }
  // The model's matrices (a weight of N*K x 512 floats, a batch of B x max(784, N*K)) must be
  // addressable; sizes that are addressable but too large end in an out-of-memory error.
  if (!gumbel::detail::fits(o.latents, o.classes, 512 * sizeof(float))) {
    invalid("latents", "N = ", o.latents, " times K = ", o.classes, " is too large");
  }
  if (!gumbel::detail::fits(o.batch_size, std::max<Index>(784, o.latents * o.classes),
                            sizeof(float))) {
    invalid("batch-size", o.batch_size, " is too large for N * K = ", o.latents * o.classes);
  }
  // The bounds decode all of an image's codes at once: per code its N*K one-hot values, the
  // decoder's 256 + 512 hidden units and 784 outputs, and the 784 targets, a few times over.
  // Refused up front when that exceeds kBoundBytes, not after training (N*K fits, see above).
  const Index per_code = 4 * (2 * o.latents * o.classes + 256 + 512 + 3 * 784);
  const Index most = kBoundBytes / Index(sizeof(float)) / per_code;
  if (o.eval_samples > most) {
    invalid("eval-samples", o.eval_samples, " codes per image need more than ", kBoundBytes >> 30,
            " GiB at once for N * K = ", o.latents * o.classes, " (at most ", most, ")");
  }
  if (o.rao_samples < 1) invalid("rao-samples", "must be at least 1, got ", o.rao_samples);
  if (o.blocks < 1 || o.blocks > o.batch_size) {
    invalid("blocks", "must lie in [1, batch-size = ", o.batch_size, "], got ", o.blocks);
  }
  if (o.threads < 1 || o.threads > gumbel::kMaxThreads) {
    invalid("threads", "must lie in [1, ", gumbel::kMaxThreads, "], got ", o.threads);
  }
  if (o.train_limit < 0) invalid("train-limit", "must not be negative, got ", o.train_limit);
  if (o.test_limit < 0) invalid("test-limit", "must not be negative, got ", o.test_limit);
  if (!o.evaluate.empty() && (o.resume || o.overwrite)) {
    invalid("evaluate", "reads ", o.evaluate, " and trains nothing: it cannot be combined with ",
            o.resume ? "--resume" : "--overwrite");
  }
  if (o.resume && o.overwrite) {
    invalid("overwrite", "cannot be combined with --resume (one continues the run in ",
            o.output_dir, ", the other replaces it)");
  }
}

}  // namespace vae
