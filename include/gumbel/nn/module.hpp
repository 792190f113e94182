// nn::Module: a model's parameters and sub-modules under hierarchical names (encoder.fc1.weight),
// registered by reference in the constructor, as libtorch's register_parameter/register_module
// but without shared pointers. A module can be neither copied nor moved, so the addresses an
// optimizer or a tape holds stay valid for the module's whole life (a compile error otherwise).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/parameter.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel::nn {

template <class T>
class Module {
 public:
  using NamedParameters = std::vector<std::pair<std::string, Parameter<T>*>>;

  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;
  virtual ~Module() = default;

  /// Every parameter of this module and its sub-modules, depth first in registration order
  /// (the order optimizers and files rely on).
  ParameterList<T> parameters() const {
    ParameterList<T> list;
    for (const auto& named : named_parameters()) list.push_back(named.second);
    return list;
  }

  /// The same with their names: a parameter's own name prefixed by its modules' names and dots.
  NamedParameters named_parameters() const {
    NamedParameters out;
    collect("", out);
    return out;
  }

  /// The direct sub-modules with their names.
  const std::vector<std::pair<std::string, Module*>>& children() const { return children_; }

  void zero_grad() const {
    for (Parameter<T>* p : parameters()) p->zero_grad();
  }

  /// Training or evaluation mode of this module and every sub-module (layers such as dropout
  /// and gates read it); modules start in training mode.
  void train(bool on = true) {
    training_ = on;
    for (auto& child : children_) child.second->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  /// Registers a parameter member under `name` (no dot, unique in this module); returns it.
  Parameter<T>& register_parameter(std::string name, Parameter<T>& p) {
    check_name("register_parameter", name);
    if (p.name.empty()) p.name = name;
    parameters_.emplace_back(std::move(name), &p);
    return p;
  }

  /// Registers a sub-module member under `name`; returns it.
  template <class M>
  M& register_module(std::string name, M& child) {
    static_assert(std::is_base_of_v<Module<T>, M>, "register_module takes an nn::Module<T>");
    check_name("register_module", name);
    child.train(training_);
    children_.emplace_back(std::move(name), &child);
    return child;
  }

 private:
  void check_name(const char* op, const std::string& name) const {
    if (name.empty() || name.find('.') != std::string::npos) {
      detail::fail<ValueError>(op, "name '", name, "' must be non-empty and without a dot");
    }
    for (const auto& p : parameters_) {
      if (p.first == name) detail::fail<ValueError>(op, "name '", name, "' is already registered");
    }
    for (const auto& c : children_) {
      if (c.first == name) detail::fail<ValueError>(op, "name '", name, "' is already registered");
    }
  }

  void collect(const std::string& prefix, NamedParameters& out) const {
    for (const auto& p : parameters_) out.emplace_back(prefix + p.first, p.second);
    for (const auto& c : children_) c.second->collect(prefix + c.first + ".", out);
  }

  std::vector<std::pair<std::string, Parameter<T>*>> parameters_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

/// A module with one input and one output, which nn::Sequential can chain.
template <class T>
class Layer : public Module<T> {
 public:
  virtual Var<T> forward(const Var<T>& x) = 0;
  Var<T> operator()(const Var<T>& x) { return forward(x); }
};

}  // namespace gumbel::nn
