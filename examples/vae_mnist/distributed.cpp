#include "distributed.hpp"

#include <map>
#include <string>
#include <vector>

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

/// Every option that must be the same on all ranks, as "key=value" lines: what shapes the
/// results (run_settings), the run's length and output folder, and the exchange's settings.
/// Threads may differ (results do not depend on them), and so may --data-dir (a copy of the
/// data on each node); the images read are compared by the training itself.
std::string agreed_text(const Options& o, const DistributedSettings& s) {
  std::map<std::string, std::string> all = checkpoint_settings(o);
  all["epochs"] = std::to_string(o.epochs);
  all["output_dir"] = o.output_dir;
  all["resume"] = o.resume ? "true" : "false";
  all["overwrite"] = o.overwrite ? "true" : "false";
  all["final_bound"] = o.final_bound ? "true" : "false";
  all["eval_samples"] = std::to_string(o.eval_samples);
  all["reduction"] = s.reduction;
  all["bucket_kib"] = std::to_string(s.bucket_kib);
  std::string text;
  for (const auto& [key, value] : all) text += key + "=" + value + "\n";
  return text;
}

std::map<std::string, std::string> parse_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    const std::size_t eq = line.find('=');
    out[line.substr(0, eq)] = line.substr(eq + 1);
    at = end + 1;
  }
  return out;
}

}  // namespace

std::string settings_disagreement(const Options& o, const DistributedSettings& s) {
  const std::string mine = agreed_text(o, s);
  const int ranks = gumbel::distributed::size(MPI_COMM_WORLD);
  std::vector<int> lengths(std::size_t(ranks), 0), offsets(std::size_t(ranks), 0);
  const int length = int(mine.size());
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  long long total = 0;
  for (int r = 0; r < ranks; ++r) {
    offsets[std::size_t(r)] = int(total);
    total += lengths[std::size_t(r)];
  }
  std::string all(std::size_t(total), '\0');
  MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(),
                 MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::map<std::string, std::string>> per_rank;
  for (int r = 0; r < ranks; ++r) {
    per_rank.push_back(parse_lines(
        all.substr(std::size_t(offsets[std::size_t(r)]), std::size_t(lengths[std::size_t(r)]))));
  }
  // The first setting (in name order, over every rank's names) whose values differ.
  std::map<std::string, bool> names;
  for (const auto& settings : per_rank) {
    for (const auto& entry : settings) names[entry.first] = true;
  }
  for (const auto& entry : names) {
    const std::string& key = entry.first;
    std::map<std::string, std::string> ranks_of;  // value -> "0, 2"
    for (int r = 0; r < ranks; ++r) {
      const auto found = per_rank[std::size_t(r)].find(key);
      const std::string value =
          found == per_rank[std::size_t(r)].end() ? "(default)" : found->second;
      std::string& list = ranks_of[value];
      list += (list.empty() ? "" : ", ") + std::to_string(r);
    }
    if (ranks_of.size() < 2) continue;
    std::string option = "--" + key;
    for (char& c : option) c = c == '_' ? '-' : c;
    std::string message = option + " differs between the ranks:";
    bool first = true;
    for (const auto& [value, list] : ranks_of) {
      message += std::string(first ? " " : "; ") + value + " on rank" +
                 (list.find(',') != std::string::npos ? "s " : " ") + list;
      first = false;
    }
    return message + " (start every rank with the same settings)";
  }
  return "";
}

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
