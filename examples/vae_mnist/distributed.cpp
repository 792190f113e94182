#include "distributed.hpp"

#include <gumbel/distributed/mpi.hpp>

namespace vae {
namespace {

class MpiEngine : public StepEngine {
 public:
  MpiEngine(const gumbel::ParameterList<float>& parameters, const Options& o,
            const gumbel::distributed::Options& mpi)
      : ddp_(parameters, MPI_COMM_WORLD, with(mpi, o)) {}

  double step(Index rows, LossOf loss_of, void* context,
              gumbel::optim::Optimizer<float>& optimizer) override {
    return step_of(ddp_, rows, loss_of, context, optimizer);
  }
  bool writes_outputs() const override { return ddp_.rank() == 0; }
  void synchronize_state(gumbel::optim::Optimizer<float>& optimizer) override {
    ddp_.synchronize_state(optimizer);
  }

 private:
  static gumbel::distributed::Options with(gumbel::distributed::Options mpi, const Options& o) {
    mpi.blocks = o.blocks;
    mpi.threads = o.threads;
    return mpi;
  }
  gumbel::distributed::DataParallel<float> ddp_;
};

}  // namespace

void validate(const DistributedSettings& s) {
  if (s.reduction != "exact" && s.reduction != "fast") {
    throw gumbel::ValueError("--reduction: must be exact or fast, got " + s.reduction);
  }
  if (s.bucket_kib < 1 || s.bucket_kib > (Index{1} << 20)) {
    throw gumbel::ValueError("--bucket-kib: must lie in [1, 1048576], got " +
                             std::to_string(s.bucket_kib));
  }
}

EngineFactory distributed_engine(const DistributedSettings& s) {
  validate(s);
  gumbel::distributed::Options mpi;
  mpi.reduction = s.reduction == "fast" ? gumbel::distributed::Reduction::fast
                                        : gumbel::distributed::Reduction::exact;
  mpi.bucket_bytes = std::size_t(s.bucket_kib) * 1024;
  return [mpi](const gumbel::ParameterList<float>& parameters, const Options& o) {
    return std::unique_ptr<StepEngine>(new MpiEngine(parameters, o, mpi));
  };
}

}  // namespace vae
