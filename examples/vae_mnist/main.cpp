// Trains the categorical-latent VAE of the reference articles on MNIST and writes pictures,
// curves, metrics, a checkpoint and the weights to the output folder. Built with VAE_MPI it is
// vae_mnist_mpi: the same program with each step's blocks shared among MPI ranks
// (mpirun -np 2 vae_mnist_mpi ...); rank 0 writes the outputs.
#include <CLI/CLI.hpp>

#include <iostream>
#include <new>
#include <string>

#include "checkpoint.hpp"
#include "idx.hpp"
#include "train.hpp"

#ifdef VAE_MPI
#include <gumbel/distributed/mpi.hpp>

#include "distributed.hpp"
#endif

namespace {

#ifdef VAE_MPI
// On any error a rank prints it and stops every rank: a rank left waiting in a collective for
// one that has gone would never return.
int finish(int code) {
  if (code != 0) MPI_Abort(MPI_COMM_WORLD, code);
  MPI_Finalize();
  return code;
}
const char* const kName = "vae_mnist_mpi";
#else
int finish(int code) {
  return code;
}
const char* const kName = "vae_mnist";
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef VAE_MPI
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  const std::string name = std::string(kName) + " (rank " +
                           std::to_string(gumbel::distributed::rank(MPI_COMM_WORLD)) + ")";
  vae::DistributedSettings distributed;
#else
  const std::string name = kName;
#endif
  vae::Options o;
  CLI::App app{
      "Train a VAE with N categorical latents of K classes on MNIST using the Gumbel-Softmax "
      "relaxation (soft), the straight-through Gumbel estimator (--hard) or Gumbel-Rao."};
  // A later flag overrides an earlier one, so wrapper scripts can set defaults; the help shows
  // every default.
  app.option_defaults()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->always_capture_default();
  app.add_option("--epochs", o.epochs, "Training epochs");
  app.add_option("--batch-size", o.batch_size, "Images per step");
  app.add_option("-N,--latents", o.latents, "Number of categorical latents N");
  app.add_option("-K,--classes", o.classes, "Classes per latent K");
  app.add_option("--lr", o.lr, "Adam learning rate");
  app.add_option("--lr-decay", o.lr_decay,
                 "Multiply the learning rate by this every --lr-decay-every steps");
  app.add_option("--lr-decay-every", o.lr_decay_every, "Steps between learning-rate decays");
  app.add_option("--tau0", o.tau0, "Initial temperature");
  app.add_option("--tau-min", o.tau_min, "Lowest temperature");
  app.add_option("--anneal-rate", o.anneal_rate, "Temperature decay rate");
  app.add_option("--schedule", o.schedule,
                 "Temperature schedule: articles (restart every epoch, decay every 100 batches), "
                 "exponential (max(tau_min, tau0 exp(-rate step)) on the global step), constant");
  app.add_option("--anneal-every", o.anneal_every,
                 "exponential schedule: update the temperature every n steps");
  app.add_option("--binarize", o.binarize,
                 "none: grey levels as targets; fixed: each pixel drawn once as "
                 "Bernoulli(intensity) from --binarize-seed; dynamic: training pixels drawn "
                 "anew each time an image is used (test pixels as for fixed)");
  app.add_option("--binarize-seed", o.binarize_seed, "Seed of the fixed binarization");
  app.add_option("--encoder", o.encoder,
                 "articles: ReLU on the encoder's logits (the reference articles); linear: none "
                 "(Jang et al. 2017)");
  app.add_flag("--final-bound", o.final_bound,
               "After training, estimate the test ELBO and the importance-weighted bound with "
               "--eval-samples discrete codes per image (bounds.json)");
  app.add_option("--eval-samples", o.eval_samples,
                 "Codes per test image for --final-bound and --evaluate");
#ifndef VAE_MPI
  app.add_option("--evaluate", o.evaluate,
                 "Train nothing: the test bounds of this checkpoint.npz or weights.npz with "
                 "--eval-samples codes per image on --test-limit images, to "
                 "<output-dir>/bounds.json");
#endif
  app.add_option("--estimator", o.estimator, "Gradient estimator: soft, st, gumbel-rao");
  app.add_flag("--hard", o.hard,
               "Straight-through: one-hot forward, soft gradient (= --estimator st)");
  app.add_option("--rao-samples", o.rao_samples, "Conditional samples M of Gumbel-Rao");
  app.add_option("--seed", o.seed, "Seed of initialisation, shuffling and noise");
  app.add_option("--threads", o.threads,
                 "Threads sharing each step's blocks and the evaluation (results do not depend "
                 "on it)");
  app.add_option("--blocks", o.blocks,
                 "Blocks of examples per batch, their gradients summed in a fixed order (at most "
                 "this many threads compute a step; results depend on it)");
  app.add_option("--data-dir", o.data_dir, "Folder with the MNIST IDX files (plain or .gz)");
  app.add_option("--output-dir", o.output_dir, "Folder for pictures, metrics and checkpoint");
  app.add_flag("--resume", o.resume, "Continue from the output folder's checkpoint");
  app.add_flag("--overwrite", o.overwrite, "Replace an existing run in the output folder");
  app.add_option("--train-limit", o.train_limit, "Use only the first n training images (0: all)");
  app.add_option("--test-limit", o.test_limit, "Use only the first n test images (0: all)");
  app.add_flag("--quiet", o.quiet,
               "No progress bar (the summary line of each epoch is still printed)");
#ifdef VAE_MPI
  app.add_option("--reduction", distributed.reduction,
                 "How the ranks' gradients are summed: exact (the blocks' fixed order: the same "
                 "bits on any number of ranks) or fast (MPI_Iallreduce)");
  app.add_option("--bucket-kib", distributed.bucket_kib,
                 "Gradient bucket size: each bucket's exchange starts as soon as backward has "
                 "finished its parameters");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // every rank parses the same arguments
    const int code = app.exit(e);
    MPI_Finalize();
    return code;
  }
#else
  CLI11_PARSE(app, argc, argv);
#endif

  try {
    vae::validate(o);
#ifdef VAE_MPI
    // Every rank learns whether all were started alike before any reads data or trains: ranks
    // with other batch sizes or block counts would otherwise wait on each other for ever.
    vae::validate(distributed);
    const std::string disagreement = vae::settings_disagreement(o, distributed);
    if (!disagreement.empty()) {
      if (gumbel::distributed::rank(MPI_COMM_WORLD) == 0) {
        std::cerr << kName << ": invalid setting: " << disagreement << "\n";
      }
      MPI_Finalize();
      return 2;
    }
    vae::run(o, vae::distributed_engine(distributed));
#else
    if (o.evaluate.empty()) {
      vae::run(o);
    } else {
      vae::evaluate_file(o);
    }
#endif
  } catch (const gumbel::ValueError& e) {
    std::cerr << name << ": invalid setting: " << e.what() << "\n";
    return finish(2);
  } catch (const std::bad_alloc&) {
    std::cerr << name
              << ": out of memory: the sizes asked for (--batch-size, --latents, "
                 "--classes, --rao-samples, --eval-samples) need more memory than this machine "
                 "has\n";
    return finish(1);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return finish(1);
  }
  return finish(0);
}
