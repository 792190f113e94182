// Training the categorical VAE on MNIST: the loop, evaluation and every output file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "idx.hpp"
#include "model.hpp"

namespace vae {

struct Options {
  int epochs = 10;
  Index batch_size = 100;
  Index latents = 30;  ///< N
  Index classes = 10;  ///< K
  double lr = 1e-3;
  double lr_decay = 1.0;  ///< the learning rate is lr * lr_decay^floor(step / lr_decay_every)
  std::int64_t lr_decay_every = 1000;
  double tau0 = 1.0;
  double tau_min = 0.5;
  double anneal_rate = 3e-5;
  std::string schedule = "articles";  ///< articles | exponential | constant
  std::int64_t anneal_every = 1;      ///< exponential: the temperature changes every n steps
  std::string estimator = "soft";     ///< soft | st | gumbel-rao
  bool hard = false;                  ///< shorthand for estimator = st
  Index rao_samples = 10;
  /// none: grey levels in [0, 1] as targets; fixed: every pixel drawn once as
  /// Bernoulli(intensity) from binarize_seed (train and test); dynamic: training images drawn
  /// anew each time they are used, test images as for fixed.
  std::string binarize = "none";
  std::uint64_t binarize_seed = 0;
  /// articles: ReLU on the encoder's logits (the reference articles); linear: none (Jang et al.)
  std::string encoder = "articles";
  /// Codes per test image for the final bounds (--final-bound).
  Index eval_samples = 1000;
  bool final_bound = false;  ///< estimate the test ELBO and importance-weighted bound at the end
  /// Evaluate-only: the bounds of this checkpoint or weights file (vae_mnist's checkpoint.npz
  /// or weights.npz) on the first test_limit test images, written to output_dir/bounds.json.
  std::string evaluate;
  std::uint64_t seed = 2020;
  /// Threads that share each step's blocks (and evaluation); results do not depend on it.
  /// Default: all the cores OpenMP sees (OMP_NUM_THREADS), 1 without OpenMP.
  int threads = gumbel::max_threads();
  /// Blocks of examples each batch is cut into: each block's gradient is computed on its own
  /// and the blocks' sum is taken in a fixed order, so that any thread count gives the same
  /// bits. Part of the results (another count rounds the gradient sum differently).
  Index blocks = 2;
  std::string data_dir = "data/mnist";
  std::string output_dir = "out/vae_mnist";
  bool resume = false;
  bool overwrite = false;
  Index train_limit = 0;  ///< use only the first n training images (0: all)
  Index test_limit = 0;
  bool quiet = false;
};

/// The settings that define a run's results for these options and estimator, as text (each
/// number written so that it reads back exactly).
std::map<std::string, std::string> run_settings(const Options& options, Estimator estimator);

/// The settings a checkpoint records (and a resume must match) for these options, as text.
std::map<std::string, std::string> checkpoint_settings(const Options& options);

/// The most memory the final bounds may take at once (validate() bounds --eval-samples by it).
constexpr Index kBoundBytes = Index(8) << 30;

/// Throws gumbel::ValueError naming the first invalid option and why.
void validate(const Options& options);

/// Computes one training step's blocks: on this process's threads, or over MPI ranks
/// (vae_mnist_mpi). `loss_of(context, tape, block, begin, end)` records the loss of the global
/// batch's rows [begin, end) (its share of the batch's loss) and returns it.
class StepEngine {
 public:
  using LossOf = Var (*)(void* context, gumbel::Tape<float>& tape, Index block, Index begin,
                         Index end);
  virtual ~StepEngine() = default;
  /// Forward, backward and the optimizer's update for a global batch of `rows`; returns the
  /// batch's loss.
  virtual double step(Index rows, LossOf loss_of, void* context,
                      gumbel::optim::Optimizer<float>& optimizer) = 0;
  /// Whether this process writes pictures, reports and checkpoints (rank 0 of several).
  virtual bool writes_outputs() const = 0;
  /// Makes the optimizer's state whole on this process before it is saved (every process
  /// calls it at the same point).
  virtual void synchronize_state(gumbel::optim::Optimizer<float>& /*optimizer*/) {}

 protected:
  /// data_parallel.step(rows, loss, optimizer) with loss_of(context, ...) as the loss: for
  /// engines built on parallel:: or distributed::DataParallel.
  template <class DataParallel>
  static double step_of(DataParallel& data_parallel, Index rows, LossOf loss_of, void* context,
                        gumbel::optim::Optimizer<float>& optimizer) {
    return data_parallel.step(
        rows,
        [&](gumbel::Tape<float>& tape, Index b, Index first, Index last) {
          return loss_of(context, tape, b, first, last);
        },
        optimizer);
  }
};

/// Makes the engine for a model's parameters, once they are initialised or resumed.
using EngineFactory = std::function<std::unique_ptr<StepEngine>(
    const gumbel::ParameterList<float>& parameters, const Options& options)>;

/// Trains (or resumes) and writes the output folder; returns the history of every epoch. Without
/// an engine, each step runs on this process's threads (gumbel::parallel::DataParallel).
std::vector<EpochRecord> run(const Options& options, const EngineFactory& engine = {});

/// The model's sizes for these options and images of `pixels` pixels.
ModelShape model_shape(const Options& options, Index pixels);

/// The test bounds of `model` with options.eval_samples codes per image (stream
/// kFinalBoundStream of options.seed), written to out_dir/bounds.json and printed; `epochs`
/// trained (-1 when unknown). Returns the report.
nlohmann::json final_bounds(CategoricalVae& model, const examples::Dataset& test,
                            const Options& options, std::int64_t epochs,
                            const std::filesystem::path& out_dir);

/// Evaluate-only (options.evaluate): loads the model from that file (a checkpoint's "model."
/// arrays or a weights file), estimates the test bounds with options.eval_samples codes per
/// image and writes bounds.json into options.output_dir. Returns the bounds' report.
nlohmann::json evaluate_file(const Options& options);

}  // namespace vae
