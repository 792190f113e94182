// vae_mnist_mpi's step engine: each step's blocks shared among the ranks of MPI_COMM_WORLD
// (gumbel/distributed/mpi.hpp); rank 0 writes every output.
#pragma once

#include <string>

#include "train.hpp"

namespace vae {

struct DistributedSettings {
  std::string reduction = "exact";  ///< exact (the same bits on any rank count) or fast
  Index bucket_kib = 1024;          ///< gradient bucket size
};

/// Throws gumbel::ValueError naming a bad setting.
void validate(const DistributedSettings& settings);

/// Collective over MPI_COMM_WORLD: "" when every rank has the same settings (all but the thread
/// count), else the same message on every rank naming the first setting that differs and the
/// ranks that hold each of its values.
std::string settings_disagreement(const Options& options, const DistributedSettings& settings);

/// An engine factory for run(): MPI must be initialised, every rank calls run() alike.
EngineFactory distributed_engine(const DistributedSettings& settings);

}  // namespace vae
