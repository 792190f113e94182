#include "train.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "evaluation.hpp"
#include "files.hpp"
#include "idx.hpp"
#include "output.hpp"
#include "shuffle.hpp"
#include "streams.hpp"

namespace vae {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string fixed(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// The temperature for a step, per the chosen schedule.
class Temperature {
 public:
  explicit Temperature(const Options& o)
      : kind_(o.schedule),
        articles_(o.tau0, o.tau_min, o.anneal_rate),
        exponential_(o.tau0, o.tau_min, o.anneal_rate, o.anneal_every) {}
  double at(std::int64_t batch_in_epoch, std::int64_t global_step) const {
    if (kind_ == "articles") return articles_(batch_in_epoch);
    if (kind_ == "exponential") return exponential_(global_step);
    return articles_.tau0;
  }

 private:
  std::string kind_;
  gumbel::EpochRestartDecay articles_;
  gumbel::ExponentialDecay exponential_;
};

/// One line that redraws itself on a terminal; a line per 10% when stderr is a file or pipe.
class Progress {
 public:
  Progress(int epoch, Index steps, bool quiet)
      : epoch_(epoch), steps_(steps), quiet_(quiet), tty_(::isatty(2) != 0), start_(Clock::now()) {}
  void update(Index step, double loss, double tau, Index images) {
    if (quiet_) return;
    const bool last = step == steps_;
    if (!tty_ && !last && step % std::max<Index>(1, steps_ / 10) != 0) return;
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = double(images) / std::max(seconds, 1e-9);
    const double eta = seconds / double(step) * double(steps_ - step);
    const int width = 24;
    const int filled = int(double(width) * double(step) / double(steps_));
    std::string bar(std::size_t(filled), '#');
    bar.append(std::size_t(width - filled), '.');
    std::fprintf(stderr, "%sepoch %d [%s] %lld/%lld  loss %.2f  tau %.3f  %.0f img/s  ETA %.0fs%s",
                 tty_ ? "\r" : "", epoch_, bar.c_str(), (long long)step, (long long)steps_, loss,
                 tau, rate, eta, tty_ && !last ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  int epoch_;
  Index steps_;
  bool quiet_;
  bool tty_;
  Clock::time_point start_;
};

void write_reports(const fs::path& dir, const Options& o, Estimator estimator,
                   const std::vector<EpochRecord>& history) {
  std::ostringstream csv;
  csv << "epoch,train_loss,test_loss,test_nelbo,temperature,seconds,images_per_second\n";
  std::vector<LossPoint> points;
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochRecord& r : history) {
    csv << r.epoch << ',' << fixed(r.train_loss) << ',' << fixed(r.test_loss) << ','
        << fixed(r.test_nelbo) << ',' << fixed(r.temperature, 6) << ',' << fixed(r.seconds, 3)
        << ',' << fixed(r.images_per_second, 1) << '\n';
    points.push_back({double(r.epoch), r.train_loss, r.test_loss});
    epochs.push_back({{"epoch", r.epoch},
                      {"train_loss", r.train_loss},
                      {"test_loss", r.test_loss},
                      {"test_nelbo", r.test_nelbo},
                      {"temperature", r.temperature},
                      {"seconds", r.seconds},
                      {"images_per_second", r.images_per_second}});
  }
  write_file_atomic((dir / "loss.csv").string(), csv.str());
  write_loss_svg((dir / "loss.svg").string(), points);

  nlohmann::json settings;
  for (const auto& [key, value] : run_settings(o, estimator)) settings[key] = value;
  settings["epochs"] = o.epochs;
  nlohmann::json metrics = {{"settings", settings}, {"epochs", epochs}};
  if (!history.empty()) {
    double seconds = 0, rate = 0;
    for (const EpochRecord& r : history) seconds += r.seconds, rate += r.images_per_second;
    metrics["final_train_loss"] = history.back().train_loss;
    metrics["final_test_loss"] = history.back().test_loss;
    metrics["final_test_nelbo"] = history.back().test_nelbo;
    metrics["mean_seconds_per_epoch"] = seconds / double(history.size());
    metrics["mean_images_per_second"] = rate / double(history.size());
  }
  write_file_atomic((dir / "metrics.json").string(), metrics.dump(2) + "\n");
}

std::string epoch_file(const char* stem, std::int64_t epoch) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_epoch%03lld.png", stem, static_cast<long long>(epoch));
  return buf;
}

/// Each step's blocks on this process's threads.
class LocalEngine : public StepEngine {
 public:
  LocalEngine(const gumbel::ParameterList<float>& parameters, const Options& o)
      : data_parallel_(parameters, o.blocks, o.threads) {}
  double step(Index rows, LossOf loss_of, void* context,
              gumbel::optim::Optimizer<float>& optimizer) override {
    return step_of(data_parallel_, rows, loss_of, context, optimizer);
  }
  bool writes_outputs() const override { return true; }

 private:
  gumbel::parallel::DataParallel<float> data_parallel_;
};

}  // namespace

std::vector<EpochRecord> run(const Options& options, const EngineFactory& make_engine) {
  validate(options);
  // A distributed run: the engine's rank 0 alone writes and reports. The engine is made once
  // the model exists; until then every rank does the same (reading, checking).
  Options o = options;
  const Estimator estimator = o.hard ? Estimator::straight_through : parse_estimator(o.estimator);
  gumbel::set_threads(o.threads);
  Eigen::setNbThreads(o.threads);

  const fs::path out_dir(o.output_dir);
  fs::create_directories(out_dir);
  // Found now rather than after the first epoch: a folder nothing can be written into, and the
  // temporary files of an earlier run that was killed while writing.
  examples::require_writable_dir(out_dir.string());
  examples::remove_stale_temporaries(out_dir.string());
  // checkpoint.bin: the binary format of releases before 1.1, refused by name on --resume.
  const std::string checkpoint_path = (out_dir / "checkpoint.npz").string();
  std::string resume_from = checkpoint_path;
  if (!fs::exists(resume_from) && fs::exists(out_dir / "checkpoint.bin")) {
    resume_from = (out_dir / "checkpoint.bin").string();
  }
  const bool have_checkpoint = fs::exists(resume_from);
  if (have_checkpoint && !fs::is_regular_file(resume_from)) {
    throw CheckpointError(resume_from + ": is not a regular file (a folder?); move it away " +
                          "or choose another --output-dir");
  }
  if (have_checkpoint && !o.resume && !o.overwrite) {
    throw gumbel::ValueError(resume_from +
                             " already exists: pass --resume to continue that run, --overwrite to "
                             "replace it, or choose another --output-dir");
  }
  if (o.resume && !have_checkpoint) {
    std::cerr << "vae_mnist: --resume: no checkpoint at " << checkpoint_path
              << ", starting a new run\n";
  }

  // Images stay bytes (47 MB for the training set, not 188 MB of floats); each batch is scaled
  // to [0, 1] as it is gathered.
  examples::Splits splits =
      examples::load_mnist(o.data_dir, o.train_limit, o.test_limit, {false, false});
  examples::Dataset& train = splits.train;
  examples::Dataset& test = splits.test;
  if (o.binarize != "none") {  // the test set is binarized once for either kind
    binarize_bytes(test.bytes, gumbel::Generator(o.binarize_seed, kBinarizeTestStream));
  }
  if (o.binarize == "fixed") {
    binarize_bytes(train.bytes, gumbel::Generator(o.binarize_seed, kBinarizeTrainStream));
  }
  const bool dynamic = o.binarize == "dynamic";
  const Index n_train = train.bytes.rows();

  const ModelShape shape = model_shape(o, train.bytes.cols());
  gumbel::Generator init(o.seed, kInitStream);
  CategoricalVae model(shape, init);
  gumbel::optim::AdamOptions<float> adam_options;
  adam_options.lr = float(o.lr);
  gumbel::optim::Adam<float> adam(model.parameters(), adam_options);

  Checkpoint progress;
  progress.settings = run_settings(o, estimator);
  if (o.resume && have_checkpoint) {
    progress = load_checkpoint(resume_from, progress.settings, model, adam);
    if (!o.quiet) {
      std::cerr << "resuming " << resume_from << " after epoch " << progress.epochs_done << "\n";
    }
  }

  // Fixed latent codes drawn from the uniform prior: the same 64 codes every epoch, so the
  // sample grids show how the decoder changes.
  Matrix prior_codes = Matrix::Zero(64, o.latents * o.classes);
  {
    gumbel::Generator prior(o.seed, kPriorStream);
    const Matrix flat = Matrix::Zero(64 * o.latents, o.classes);
    const auto classes = gumbel::gumbel_max(flat, prior);
    for (Index i = 0; i < classes.size(); ++i) {
      prior_codes(i / o.latents, (i % o.latents) * o.classes + classes(i)) = 1.0f;
    }
  }

  const Temperature temperature(o);
  const std::unique_ptr<StepEngine> engine =
      make_engine ? make_engine(model.parameters(), o)
                  : std::make_unique<LocalEngine>(model.parameters(), o);
  const bool writes = engine->writes_outputs();
  if (!writes) o.quiet = true;
  Matrix batch(o.batch_size, shape.pixels);
  Matrix uniforms(dynamic ? o.batch_size : 0, shape.pixels);
  std::vector<Index> order(static_cast<std::size_t>(n_train));
  const Index steps = (n_train + o.batch_size - 1) / o.batch_size;
  if (o.resume && have_checkpoint && adam.steps() != progress.epochs_done * steps) {
    throw CheckpointError(resume_from + ": holds " + std::to_string(adam.steps()) +
                          " optimizer steps after " + std::to_string(progress.epochs_done) +
                          " epochs, but these settings take " + std::to_string(steps) +
                          " steps per epoch (corrupt checkpoint)");
  }

  for (std::int64_t epoch = progress.epochs_done + 1; epoch <= o.epochs; ++epoch) {
    gumbel::Generator shuffle(o.seed, kShuffleStream + std::uint64_t(epoch));
    gumbel::Generator noise(o.seed, kNoiseStream + std::uint64_t(epoch));
    gumbel::Generator pixels(o.seed, kDynamicStream + std::uint64_t(epoch));
    examples::shuffle(order, shuffle);

    Progress bar(int(epoch), steps, o.quiet);
    const auto start = Clock::now();
    double loss_sum = 0;
    double tau = o.tau0;
    for (Index step = 0; step < steps; ++step) {
      const Index begin = step * o.batch_size;
      const Index rows = std::min(o.batch_size, n_train - begin);
      // Dynamic binarisation: each pixel 1 with probability byte / 255, drawn anew. Every
      // process draws the whole batch's uniforms, so a row's pixels do not depend on the split.
      if (dynamic) pixels.fill_uniform(uniforms.data(), rows * shape.pixels);
      tau = temperature.at(step, adam.steps());
      if (o.lr_decay != 1.0) {  // a function of the global step, so a resume continues it
        adam.set_lr(float(o.lr * std::pow(o.lr_decay, double(adam.steps() / o.lr_decay_every))));
      }
      const auto diverged = [&](const std::string& why) {
        return std::runtime_error("the loss became NaN or inf at epoch " + std::to_string(epoch) +
                                  ", step " + std::to_string(step + 1) + " (" + why +
                                  "); try a lower --lr");
      };
      // Block b of this step: its rows' share of the batch's loss. One block draws its noise
      // from the epoch's stream in sequence (as releases before blocks did); several draw
      // from their own subsequences, the same whichever thread or process computes them.
      const auto block_loss = [&](gumbel::Tape<float>& tape, Index b, Index first, Index last) {
        gumbel::Generator own = o.blocks == 1
                                    ? gumbel::Generator()
                                    : noise.subsequence(std::uint64_t(step * o.blocks + b));
        // The block gathers its own rows of the batch, on the thread that computes it.
        for (Index r = first; r < last; ++r) {
          const auto image = train.bytes.row(order[std::size_t(begin + r)]);
          if (dynamic) {
            batch.row(r) =
                ((uniforms.row(r).array() * 255.0f) < image.cast<float>().array()).cast<float>();
          } else {
            batch.row(r) = examples::to_unit_range(image);
          }
        }
        const Var x = tape.constant(batch.middleRows(first, last - first));
        return model
            .forward(x, float(tau), o.blocks == 1 ? noise : own, estimator, o.rao_samples, rows)
            .loss;
      };
      const StepEngine::LossOf call = [](void* context, gumbel::Tape<float>& tape, Index b,
                                         Index first, Index last) {
        return (*static_cast<decltype(block_loss)*>(context))(tape, b, first, last);
      };
      double loss = 0;
      try {
        loss = engine->step(rows, call, const_cast<void*>(static_cast<const void*>(&block_loss)),
                            adam);
      } catch (const NonFiniteError& e) {
        throw diverged(e.what());
      }
      if (!std::isfinite(loss)) throw diverged("loss = " + std::to_string(loss));
      loss_sum += loss * double(rows);
      bar.update(step + 1, loss, tau, begin + rows);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

    gumbel::Generator test_noise(o.seed, kTestStream + std::uint64_t(epoch));
    Matrix recon;
    const double test_loss =
        evaluate(model, test, o.batch_size, 1.0f, test_noise, estimator, o.rao_samples, 32, recon);
    gumbel::Generator bound_noise(o.seed, kBoundStream + std::uint64_t(epoch));
    const auto bounds = test_bounds(model, test, 1, bound_noise, false);
    EpochRecord record;
    record.epoch = epoch;
    record.test_nelbo = -bounds.elbo.mean();
    record.train_loss = loss_sum / double(n_train);
    record.test_loss = test_loss;
    record.temperature = tau;
    record.seconds = seconds;
    record.images_per_second = double(n_train) / seconds;
    progress.history.push_back(record);
    progress.epochs_done = epoch;

    engine->synchronize_state(adam);
    if (!writes) continue;  // another rank writes the pictures, reports and checkpoint

    // Originals above their reconstructions, up to 16 per row; unused cells stay black.
    const Index shown = recon.rows();
    const Index per_row = std::min<Index>(16, shown);
    const Index pairs = (shown + per_row - 1) / per_row;
    Matrix grid = Matrix::Zero(2 * per_row * pairs, shape.pixels);
    for (Index i = 0; i < shown; ++i) {
      const Index cell = (i / per_row) * 2 * per_row + i % per_row;
      grid.row(cell) = examples::to_unit_range(test.bytes.row(i));
      grid.row(cell + per_row) = recon.row(i);
    }
    write_image_grid((out_dir / epoch_file("reconstructions", epoch)).string(), grid, test.rows,
                     test.cols, per_row);
    {
      gumbel::Tape<float> decode_tape;
      decode_tape.set_grad_enabled(false);
      const Var probs = model.decode(decode_tape.constant(prior_codes));
      write_image_grid((out_dir / epoch_file("samples", epoch)).string(), probs.value(), test.rows,
                       test.cols, 8);
    }
    write_reports(out_dir, o, estimator, progress.history);
    save_checkpoint(checkpoint_path, progress, model, adam);
    {
      std::printf(
          "epoch %3lld  train loss %.4f  test loss %.4f  test -ELBO %.2f  tau %.4f  %.1f s  "
          "%.0f img/s\n",
          static_cast<long long>(epoch), record.train_loss, record.test_loss, record.test_nelbo,
          tau, seconds, record.images_per_second);
      std::fflush(stdout);
    }
  }

  // The trained weights by name, for numpy.load or a PyTorch model's load_state_dict: written
  // before the bounds, which may take long.
  if (writes) gumbel::io::save(model, (out_dir / "weights.npz").string());
  if (o.final_bound && writes) final_bounds(model, test, o, progress.epochs_done, out_dir);
  return progress.history;
}

}  // namespace vae
