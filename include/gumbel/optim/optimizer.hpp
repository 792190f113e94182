// The optimizers' common base: parameter groups with their own learning rate, step, zero_grad.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "gumbel/core/parameter.hpp"
#include "gumbel/optim/common.hpp"

namespace gumbel::optim {

/// One kind of per-parameter state of an optimizer under PyTorch's name for it ("exp_avg",
/// "momentum_buffer"): a matrix per parameter, in the order of parameters().
template <class T>
struct StateBuffers {
  const char* name;
  std::vector<Matrix<T>>* values;
};

/// Parameters that share a learning rate; without one, the optimizer's options give it.
template <class T>
struct ParamGroup {
  ParameterList<T> params;
  std::optional<T> lr;
};

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// One update of every parameter from its current gradient.
  virtual void step() = 0;

  /// step() in pieces, for callers that share the parameters' elements among threads:
  /// begin_slices() once (on one thread), then update_slice(i, begin, end) over disjoint element
  /// ranges that together cover every parameter (from any threads, in any order). The update is
  /// element-wise: a split whose ranges start at multiples of 64 elements gives the bits of
  /// step() (other starts may move elements between vector and scalar code, which a compiler
  /// that fuses multiply-adds rounds differently).
  virtual void begin_slices() = 0;
  /// Updates elements [begin, end) of parameters()[i] (its value and its state) from its grad.
  virtual void update_slice(std::size_t i, Index begin, Index end) = 0;
  void zero_grad() { gumbel::zero_grad(params_); }
  /// Everything a resume needs besides steps(): the per-parameter buffers (io::save writes
  /// them as "<parameter>.<name>").
  virtual std::vector<StateBuffers<T>> state() = 0;

  /// Every parameter, groups in order.
  const ParameterList<T>& parameters() const { return params_; }
  std::size_t groups() const { return group_lr_.size(); }
  /// The group of parameters()[i].
  std::size_t group_of(std::size_t i) const { return group_[i]; }
  T lr(std::size_t group = 0) const { return group_lr_.at(group); }
  /// A group's learning rate (schedules), validated as the constructor's.
  void set_lr(std::size_t group, T lr) {
    if (group >= group_lr_.size()) {
      gumbel::detail::fail<ValueError>(name_, "group ", group, " does not exist (", groups(),
                                       " groups)");
    }
    detail::require_range(name_, "lr", lr, T(0), false, T(INFINITY), true);
    group_lr_[group] = lr;
  }
  /// Every group's learning rate.
  void set_lr(T lr) {
    for (std::size_t g = 0; g < groups(); ++g) set_lr(g, lr);
  }
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t steps) { steps_ = steps; }

 protected:
  Optimizer(const char* name, std::vector<ParamGroup<T>> groups, T default_lr) : name_(name) {
    detail::require_range(name_, "lr", default_lr, T(0), false, T(INFINITY), true);
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const T lr = groups[g].lr.value_or(default_lr);
      detail::require_range(name_, "lr", lr, T(0), false, T(INFINITY), true);
      group_lr_.push_back(lr);
      for (Parameter<T>* p : groups[g].params) {
        params_.push_back(p);
        group_.push_back(g);
      }
    }
    detail::require_parameters(name_, params_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (params_[i] == params_[j]) {
          gumbel::detail::fail<ValueError>(name_, "a parameter appears twice (", i, " and ", j,
                                           ")");
        }
      }
    }
  }

  const char* name_;
  ParameterList<T> params_;
  std::vector<std::size_t> group_;  ///< per parameter
  std::vector<T> group_lr_;
  std::int64_t steps_ = 0;
};

}  // namespace gumbel::optim
