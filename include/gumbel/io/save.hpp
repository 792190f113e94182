// Saving and loading a model's parameters and an optimizer's state by name, as .npz
// (io/npz.hpp), in PyTorch's naming: a module's parameters under their dotted names
// (encoder.fc1.weight), and an optimizer's buffers as "<name>.exp_avg", "<name>.exp_avg_sq"
// (Adam) or "<name>.momentum_buffer" (SGD) with "step", as torch.optim's state holds them.
// A checkpoint holds both with a prefix each ("model.", "optimizer.") and the caller's extra
// arrays. Loading checks every name, shape and element type before it changes anything.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gumbel/io/npz.hpp"
#include "gumbel/nn/module.hpp"
#include "gumbel/optim/optimizer.hpp"

namespace gumbel::io {
namespace detail {

/// What a file must hold: an array of this name, shape and element size (0: any array).
struct Expected {
  std::string name;
  Index rows, cols;
  int itemsize;
};

/// The arrays of `path` by name, checked against `expected`: every name present, no other
/// name, the element type, the shape (a 1-D array of n, as PyTorch stores a bias, fits 1 x n;
/// a 0-D one 1 x 1). FileError naming the file and the array.
inline std::map<std::string, NpyArray> checked_arrays(const std::string& path,
                                                      std::vector<NpyArray> arrays,
                                                      const std::vector<Expected>& expected) {
  std::map<std::string, NpyArray> by_name;
  for (NpyArray& a : arrays) {
    const std::string name = a.name;
    if (!by_name.emplace(name, std::move(a)).second) {
      throw FileError(path + ": the array " + name + " appears twice");
    }
  }
  for (const Expected& e : expected) {
    const auto found = by_name.find(e.name);
    if (found == by_name.end()) throw FileError(path + ": no array named " + e.name);
    const NpyArray& a = found->second;
    if (e.itemsize == 0) continue;  // any array of this name (the caller checks it)
    if (a.kind != 'f' || a.itemsize != e.itemsize) {
      throw FileError(path + ": " + e.name + " holds " + a.dtype() + " values, float" +
                      std::to_string(8 * e.itemsize) + " are needed");
    }
    const bool fits = a.dims == 2 ? a.rows == e.rows : e.rows == 1;
    if (!fits || a.cols != e.cols) {
      throw FileError(path + ": " + e.name + " has shape " +
                      (a.dims == 2 ? shape_str(a.rows, a.cols)
                                   : "(" + (a.dims == 1 ? std::to_string(a.cols) : "") + ")") +
                      ", " + shape_str(e.rows, e.cols) + " is needed");
    }
  }
  for (const auto& [name, array] : by_name) {
    bool known = false;
    for (const Expected& e : expected) known = known || e.name == name;
    if (!known) throw FileError(path + ": the array " + name + " belongs to nothing loaded here");
  }
  return by_name;
}

/// The optimizer's parameters must be the module's, in order.
template <class T>
void require_same_parameters(const std::string& path, const optim::Optimizer<T>& optimizer,
                             const typename nn::Module<T>::NamedParameters& named) {
  const ParameterList<T>& params = optimizer.parameters();
  if (params.size() != named.size()) {
    throw FileError(path + ": the optimizer has " + std::to_string(params.size()) +
                    " parameters, the module " + std::to_string(named.size()));
  }
  for (std::size_t i = 0; i < named.size(); ++i) {
    if (params[i] != named[i].second) {
      throw FileError(path + ": the optimizer's parameter " + std::to_string(i) + " is not the " +
                      "module's " + named[i].first);
    }
  }
}

// Each state below comes as three parts: its arrays (to write), what a file must hold for it
// (to check), and the assignment from checked arrays. `prefix` goes before every name.

template <class T>
void add_arrays(std::vector<NpyView>& out, const nn::Module<T>& module, const std::string& prefix) {
  for (const auto& [name, p] : module.named_parameters())
    out.push_back(npy_view(prefix + name, p->value));
}

template <class T>
void add_expected(std::vector<Expected>& out, const nn::Module<T>& module,
                  const std::string& prefix) {
  for (const auto& [name, p] : module.named_parameters())
    out.push_back({prefix + name, p->rows(), p->cols(), int(sizeof(T))});
}

template <class T>
void assign(nn::Module<T>& module, const std::map<std::string, NpyArray>& arrays,
            const std::string& prefix) {
  for (const auto& [name, p] : module.named_parameters())
    p->value = arrays.at(prefix + name).template matrix<T>();
}

/// The optimizer's buffers and `step` (its step count, which must outlive the views).
template <class T>
void add_arrays(std::vector<NpyView>& out, optim::Optimizer<T>& optimizer,
                const typename nn::Module<T>::NamedParameters& named, const std::string& prefix,
                const Matrix<double>& step) {
  const auto state = optimizer.state();
  for (std::size_t i = 0; i < named.size(); ++i) {
    for (const optim::StateBuffers<T>& s : state)
      out.push_back(npy_view(prefix + named[i].first + "." + s.name, (*s.values)[i]));
  }
  out.push_back(npy_view(prefix + "step", step));
}

template <class T>
void add_expected(std::vector<Expected>& out, optim::Optimizer<T>& optimizer,
                  const typename nn::Module<T>::NamedParameters& named, const std::string& prefix) {
  out.push_back({prefix + "step", 1, 1, 8});
  const auto state = optimizer.state();
  for (const auto& [name, p] : named) {
    for (const optim::StateBuffers<T>& s : state)
      out.push_back({prefix + name + "." + s.name, p->rows(), p->cols(), int(sizeof(T))});
  }
}

/// The optimizer's step count from its checked array; FileError unless it is a count.
inline std::int64_t step_count(const std::string& path,
                               const std::map<std::string, NpyArray>& arrays,
                               const std::string& prefix) {
  const double steps = arrays.at(prefix + "step").matrix<double>()(0, 0);
  if (!(steps >= 0 && steps < 9.0e15) || steps != double(std::int64_t(steps))) {
    throw FileError(path + ": " + prefix + "step = " + std::to_string(steps) + " is not a count");
  }
  return std::int64_t(steps);
}

template <class T>
void assign(optim::Optimizer<T>& optimizer, const typename nn::Module<T>::NamedParameters& named,
            const std::map<std::string, NpyArray>& arrays, std::int64_t steps,
            const std::string& prefix) {
  for (const optim::StateBuffers<T>& s : optimizer.state()) {
    for (std::size_t i = 0; i < named.size(); ++i)
      (*s.values)[i] = arrays.at(prefix + named[i].first + "." + s.name).template matrix<T>();
  }
  optimizer.set_steps(steps);
}

}  // namespace detail

/// Writes every parameter of `module` under its dotted name (numpy.load(path)["fc1.weight"]).
template <class T>
void save(const nn::Module<T>& module, const std::string& path) {
  std::vector<NpyView> arrays;
  detail::add_arrays(arrays, module, "");
  save_npz(path, arrays);
}

/// Reads every parameter of `module` from `path` (written by save, or by numpy.savez of a
/// PyTorch state_dict). All names, shapes and element types are checked first: on any error
/// nothing is changed.
template <class T>
void load(nn::Module<T>& module, const std::string& path) {
  std::vector<detail::Expected> expected;
  detail::add_expected(expected, module, "");
  detail::assign(module, detail::checked_arrays(path, load_npz(path), expected), "");
}

/// Writes an optimizer's state for the parameters of `module` (which must be the optimizer's,
/// in order): "<name>.<buffer>" for each of its state() buffers (Adam: exp_avg, exp_avg_sq; SGD:
/// momentum_buffer, as torch.optim names them) and "step" (1 x 1, float64).
template <class T>
void save(optim::Optimizer<T>& optimizer, const nn::Module<T>& module, const std::string& path) {
  const auto named = module.named_parameters();
  detail::require_same_parameters(path, optimizer, named);
  std::vector<NpyView> arrays;
  const Matrix<double> step = Matrix<double>::Constant(1, 1, double(optimizer.steps()));
  detail::add_arrays(arrays, optimizer, named, "", step);
  save_npz(path, arrays);
}

/// Reads the state written by save(optimizer, module, path), checked like load(module, path).
template <class T>
void load(optim::Optimizer<T>& optimizer, const nn::Module<T>& module, const std::string& path) {
  const auto named = module.named_parameters();
  detail::require_same_parameters(path, optimizer, named);
  std::vector<detail::Expected> expected;
  detail::add_expected(expected, optimizer, named, "");
  const auto arrays = detail::checked_arrays(path, load_npz(path), expected);
  detail::assign(optimizer, named, arrays, detail::step_count(path, arrays, ""), "");
}

/// Writes a training checkpoint in one file, atomically: the model's parameters under
/// "model.<name>", the optimizer's state under "optimizer.<name>.<buffer>" and
/// "optimizer.step", and the caller's `extra` arrays under their own names (progress, say, as
/// bytes_to_npy(JSON)).
template <class T>
void save_checkpoint(const std::string& path, const nn::Module<T>& model,
                     optim::Optimizer<T>& optimizer, const std::vector<NpyArray>& extra = {}) {
  const auto named = model.named_parameters();
  detail::require_same_parameters(path, optimizer, named);
  std::vector<NpyView> arrays;
  const Matrix<double> step = Matrix<double>::Constant(1, 1, double(optimizer.steps()));
  detail::add_arrays(arrays, model, "model.");
  detail::add_arrays(arrays, optimizer, named, "optimizer.", step);
  for (const NpyArray& a : extra) arrays.push_back(view_of(a));
  save_npz(path, arrays);
}

/// Reads a checkpoint written by save_checkpoint into `model` and `optimizer`, and returns the
/// arrays named `extra` (each must be present; any other name is an error). Everything is
/// checked before anything changes. `arrays_of_file`: the arrays of `path` already read
/// (load_npz or parse_npz), for a caller that looks at arrays of its own in them first.
template <class T>
std::map<std::string, NpyArray> load_checkpoint(const std::string& path,
                                                std::vector<NpyArray> arrays_of_file,
                                                nn::Module<T>& model,
                                                optim::Optimizer<T>& optimizer,
                                                const std::vector<std::string>& extra = {}) {
  const auto named = model.named_parameters();
  detail::require_same_parameters(path, optimizer, named);
  std::vector<detail::Expected> expected;
  detail::add_expected(expected, model, "model.");
  detail::add_expected(expected, optimizer, named, "optimizer.");
  for (const std::string& name : extra) expected.push_back({name, 0, 0, 0});
  auto arrays = detail::checked_arrays(path, std::move(arrays_of_file), expected);
  const std::int64_t steps = detail::step_count(path, arrays, "optimizer.");
  detail::assign(model, arrays, "model.");
  detail::assign(optimizer, named, arrays, steps, "optimizer.");
  std::map<std::string, NpyArray> out;
  for (const std::string& name : extra) out.emplace(name, std::move(arrays.at(name)));
  return out;
}

/// As above, reading the file `path`.
template <class T>
std::map<std::string, NpyArray> load_checkpoint(const std::string& path, nn::Module<T>& model,
                                                optim::Optimizer<T>& optimizer,
                                                const std::vector<std::string>& extra = {}) {
  return load_checkpoint(path, load_npz(path), model, optimizer, extra);
}

}  // namespace gumbel::io
