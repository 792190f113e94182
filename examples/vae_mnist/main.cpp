// Trains the categorical-latent VAE of the reference articles on MNIST and writes pictures,
// curves, metrics, a checkpoint and the weights to the output folder.
#include <CLI/CLI.hpp>

#include <iostream>
#include <new>

#include "checkpoint.hpp"
#include "idx.hpp"
#include "train.hpp"

int main(int argc, char** argv) {
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
  app.add_option("--eval-samples", o.eval_samples, "Codes per test image for --final-bound");
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
  CLI11_PARSE(app, argc, argv);

  try {
    vae::validate(o);
    vae::run(o);
  } catch (const gumbel::ValueError& e) {
    std::cerr << "vae_mnist: invalid setting: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "vae_mnist: out of memory: the sizes asked for (--batch-size, --latents, "
                 "--classes, --rao-samples) need more memory than this machine has\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "vae_mnist: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
