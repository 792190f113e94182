// Score-function (REINFORCE) estimators: the log-probability of a sampled code on the tape, and
// surrogate losses whose gradient is the estimator, with a moving-average baseline or the
// leave-one-out baseline over S samples (RLOO, Kool, van Hoof & Welling 2019).
//
// For a loss f(z) of a discrete z ~ q(z | l), grad_l E[f] = E[(f(z) - b) grad_l log q(z)] for any
// b that does not depend on z. The surrogates below are (f - b) log q with f and b held constant:
// added to a model's loss, their gradient is that estimator; their value means nothing.
#pragma once

#include <cmath>

#include "gumbel/core/tape.hpp"
#include "gumbel/core/types.hpp"
#include "gumbel/ops/loss.hpp"
#include "gumbel/ops/softmax.hpp"
#include "gumbel/relax/sampling.hpp"

namespace gumbel {

/// log softmax(logits)[i, index(i)] for each row i: the log-probability of a sampled class, as a
/// (rows x 1) node ;  dlogits_i += dy_i (onehot(index_i) - softmax(logits_i))
template <class T>
Var<T> categorical_log_prob(const Var<T>& logits, const IndexVector& index) {
  constexpr const char* op = "categorical_log_prob";
  Tape<T>& tape = detail::tape_of(op, logits);
  const Index rows = logits.rows();
  const Index k = logits.cols();
  if (k == 0) detail::fail<ShapeError>(op, "logits have 0 classes: ", shape_str(rows, k));
  if (index.size() != rows) {
    detail::fail<ShapeError>(op, "index has ", index.size(), " entries for logits ",
                             shape_str(rows, k));
  }
  for (Index i = 0; i < rows; ++i) {
    if (index(i) < 0 || index(i) >= k) {
      detail::fail<ValueError>(op, "index ", index(i), " in row ", i, " is outside [0, ", k, ")");
    }
  }
  Var<T> out = tape.make(rows, 1, logits.requires_grad(), op);
  // The backward's factor onehot - softmax, kept so the closure holds no indices.
  T* factor = logits.requires_grad() ? tape.scratch(rows * k) : nullptr;
  const auto l = logits.value();
  for (Index i = 0; i < rows; ++i) {
    const T m = detail::row_max(op, l, i);
    const T lse = m + std::log(detail::exp_flush(l.row(i).array() - m).sum());
    out.value_mut()(i, 0) = l(i, index(i)) - lse;
    if (factor != nullptr) {
      detail::RowArray<T> f(factor + i * k, k);
      f = -detail::exp_flush(l.row(i).array() - lse);
      f(index(i)) += T(1);
    }
  }
  if (factor == nullptr) return out;
  tape.on_backward(out, [logits, out, factor, rows, k] {
    const ConstMatrixMap<T> f(factor, rows, k);
    logits.grad_sink().add(f.array().colwise() * out.grad().col(0).array());
  });
  return out;
}

/// log P(value) of independent Bernoullis with P(1) = sigmoid(logits), elementwise:
/// value l - softplus(l) = -BCE-with-logits(l, value); `value` holds 0s and 1s.
template <class T>
Var<T> bernoulli_log_prob(const Var<T>& logits, const Var<T>& value) {
  return -binary_cross_entropy_with_logits(logits, value, Reduction::none);
}

/// b <- decay b + (1 - decay) mean(f) after each use; the first use sets b = mean(f) (and uses
/// no baseline for that batch, whose mean is not yet known independently of it).
class MovingAverageBaseline {
 public:
  explicit MovingAverageBaseline(double decay = 0.9) : decay_(decay) {
    if (!(decay >= 0) || !(decay < 1)) {
      detail::fail<ValueError>("MovingAverageBaseline", "decay = ", decay, " must lie in [0, 1)");
    }
  }
  double value() const { return value_; }
  bool started() const { return started_; }
  void update(double batch_mean) {
    value_ = started_ ? decay_ * value_ + (1 - decay_) * batch_mean : batch_mean;
    started_ = true;
  }

 private:
  double decay_;
  double value_ = 0;
  bool started_ = false;
};

namespace detail {

/// mean over entries of signal * log_prob, signal a constant of log_prob's shape that
/// fill_signal(MatrixMap) writes into the tape's scratch memory: the surrogate of every estimator.
template <class T, class FillSignal>
Var<T> score_surrogate(const char* op, const Var<T>& log_prob, FillSignal&& fill_signal) {
  Tape<T>& tape = tape_of(op, log_prob);
  const Index rows = log_prob.rows();
  const Index cols = log_prob.cols();
  T* s = tape.scratch(rows * cols);
  MatrixMap<T> signal(s, rows, cols);
  fill_signal(signal);
  Var<T> out = tape.make(1, 1, log_prob.requires_grad(), op);
  const T inv_n = T(1) / T(rows * cols);
  const ConstMatrixMap<T> sm(s, rows, cols);
  out.value_mut()(0, 0) = (sm.array() * log_prob.value().array()).sum() * inv_n;
  if (!out.requires_grad()) return out;
  // y = mean(s * lp) ;  dlp += dy s / n
  tape.on_backward(out, [log_prob, out, s, rows, cols, inv_n] {
    const ConstMatrixMap<T> kept(s, rows, cols);
    log_prob.grad_sink().add(kept.array() * (out.grad()(0, 0) * inv_n));
  });
  return out;
}

/// log_prob and f of one shape with at least one sample: the surrogate is a mean over them.
template <class T>
void require_same_shape(const char* op, const Var<T>& log_prob, const Matrix<T>& f) {
  if (log_prob.rows() != f.rows() || log_prob.cols() != f.cols()) {
    fail<ShapeError>(op, "log_prob ", shape_str(log_prob.rows(), log_prob.cols()), " and f ",
                     shape_str(f.rows(), f.cols()), " differ in shape");
  }
  if (f.size() == 0) {
    fail<ShapeError>(op, "an empty batch: log_prob and f are ", shape_str(f.rows(), f.cols()),
                     " (the mean over no samples is undefined)");
  }
}

}  // namespace detail

/// REINFORCE: the surrogate mean((f - b) log q) for samples with log-probabilities `log_prob`
/// and losses `f` (the same shape, constants), b the baseline's value before this batch; then
/// the baseline takes in mean(f). Its gradient is an unbiased estimate of grad E[f] (b does not
/// depend on this batch's samples).
template <class T>
Var<T> reinforce(const Var<T>& log_prob, const detail::NotDeduced<Matrix<T>>& f,
                 MovingAverageBaseline& baseline) {
  detail::require_same_shape("reinforce", log_prob, f);
  const T b = baseline.started() ? T(baseline.value()) : T(0);
  Var<T> out = detail::score_surrogate(
      "reinforce", log_prob, [&](MatrixMap<T>& signal) { signal.array() = f.array() - b; });
  baseline.update(double(f.mean()));
  return out;
}

/// REINFORCE without a baseline: the surrogate mean(f log q).
template <class T>
Var<T> reinforce(const Var<T>& log_prob, const detail::NotDeduced<Matrix<T>>& f) {
  detail::require_same_shape("reinforce", log_prob, f);
  return detail::score_surrogate("reinforce", log_prob, [&](MatrixMap<T>& signal) { signal = f; });
}

/// RLOO: each row holds S >= 2 samples of one example (B x S log-probabilities and losses);
/// sample s's baseline is the mean loss of the other S - 1, so the surrogate is
/// mean((f_s - mean_{t != s} f_t) log q(z_s)): unbiased, with a baseline from the same batch.
template <class T>
Var<T> rloo(const Var<T>& log_prob, const detail::NotDeduced<Matrix<T>>& f) {
  detail::require_same_shape("rloo", log_prob, f);
  const Index s = f.cols();
  if (s < 2) detail::fail<ValueError>("rloo", "needs at least 2 samples per row, got ", s);
  // f_s - (sum f - f_s) / (S - 1) = (S f_s - sum f) / (S - 1)
  return detail::score_surrogate("rloo", log_prob, [&](MatrixMap<T>& signal) {
    for (Index i = 0; i < f.rows(); ++i) {
      signal.row(i).array() = (f.row(i).array() * T(s) - f.row(i).sum()) / T(s - 1);
    }
  });
}

}  // namespace gumbel
