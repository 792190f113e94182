// The optimizer family against torch.optim (PyTorch 1.13, float64) on the same gradients for
// 100 steps: SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW, parameter groups,
// every learning-rate schedule and clip_grad_norm. The gradients go to PyTorch in an .npz, its
// trajectories come back in one. Skipped where /usr/bin/python3 has no torch.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;
namespace fs = std::filesystem;

namespace {

constexpr int kSteps = 100;

// Each configuration as PyTorch builds it, and below as we do.
const char* const kTorchScript = R"(import sys, numpy as np, torch
d = np.load(sys.argv[1] + '/grads.npz')
names = ['w', 'b']
shapes = {n: d['init.' + n].shape for n in names}
def run(config):
    params = [torch.tensor(d['init.' + n], requires_grad=True) for n in names]
    w, b = params
    S = torch.optim
    clip = None
    sched = lambda o: None
    if config == 'sgd': o = S.SGD(params, lr=0.05)
    elif config == 'sgd_momentum':
        o = S.SGD(params, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)
    elif config == 'sgd_nesterov':
        o = S.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    elif config == 'adam':
        o = S.Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.02)
    elif config == 'adamw': o = S.AdamW(params, lr=0.01, weight_decay=0.1)
    elif config == 'groups_step':
        o = S.SGD([{'params': [w]}, {'params': [b], 'lr': 0.2}], lr=0.05, momentum=0.5)
        sched = lambda o: S.lr_scheduler.StepLR(o, step_size=30, gamma=0.5)
    elif config == 'adam_exponential':
        o = S.Adam(params, lr=0.02)
        sched = lambda o: S.lr_scheduler.ExponentialLR(o, gamma=0.97)
    elif config == 'adamw_cosine':
        o = S.AdamW(params, lr=0.02, weight_decay=0.05)
        sched = lambda o: S.lr_scheduler.CosineAnnealingLR(o, T_max=40, eta_min=1e-4)
    elif config == 'sgd_linear':
        o = S.SGD(params, lr=0.1, momentum=0.9)
        sched = lambda o: S.lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0,
                                                  total_iters=20)
    elif config == 'adam_clip':
        o = S.Adam(params, lr=0.05)
        clip = 1.0
    s = sched(o)
    out = {n: [] for n in names}
    for t in range(%STEPS%):
        for n, p in zip(names, params):
            r = shapes[n][0]
            p.grad = torch.tensor(d['grad.' + n][t * r:(t + 1) * r])
        if clip is not None: torch.nn.utils.clip_grad_norm_(params, clip)
        o.step()
        if s is not None: s.step()
        for n, p in zip(names, params): out[n].append(p.detach().numpy().copy())
    return {config + '.' + n: np.concatenate(out[n]) for n in names}
result = {}
for config in sys.argv[2:]: result.update(run(config))
np.savez(sys.argv[1] + '/torch.npz', **result)
)";

const std::vector<std::string> kConfigs = {
    "sgd",         "sgd_momentum",     "sgd_nesterov", "adam",       "adamw",
    "groups_step", "adam_exponential", "adamw_cosine", "sgd_linear", "adam_clip"};

/// Our run of a configuration: the parameters after every step, stacked (steps * rows) x cols.
std::map<std::string, Md> run_ours(const std::string& config, const Md& w0, const Md& b0,
                                   const Md& gw, const Md& gb) {
  Parameter<double> w(w0), b(b0);
  std::unique_ptr<optim::Optimizer<double>> o;
  std::unique_ptr<optim::LRScheduler<double>> s;
  double clip = 0;
  optim::SGDOptions<double> sgd;
  optim::AdamOptions<double> adam;
  optim::AdamWOptions<double> adamw;
  if (config == "sgd") {
    sgd.lr = 0.05;
    o = std::make_unique<optim::SGD<double>>(ParameterList<double>{&w, &b}, sgd);
  } else if (config == "sgd_momentum" || config == "sgd_nesterov") {
    sgd.lr = 0.05;
    sgd.momentum = 0.9;
    sgd.weight_decay = 0.01;
    if (config == "sgd_momentum") sgd.dampening = 0.1;
    sgd.nesterov = config == "sgd_nesterov";
    o = std::make_unique<optim::SGD<double>>(ParameterList<double>{&w, &b}, sgd);
  } else if (config == "adam") {
    adam.lr = 0.01;
    adam.beta1 = 0.8;
    adam.beta2 = 0.99;
    adam.eps = 1e-6;
    adam.weight_decay = 0.02;
    o = std::make_unique<optim::Adam<double>>(ParameterList<double>{&w, &b}, adam);
  } else if (config == "adamw") {
    adamw.lr = 0.01;
    adamw.weight_decay = 0.1;
    o = std::make_unique<optim::AdamW<double>>(ParameterList<double>{&w, &b}, adamw);
  } else if (config == "groups_step") {
    sgd.lr = 0.05;
    sgd.momentum = 0.5;
    o = std::make_unique<optim::SGD<double>>(
        std::vector<optim::ParamGroup<double>>{{{&w}, std::nullopt}, {{&b}, 0.2}}, sgd);
    s = std::make_unique<optim::StepLR<double>>(*o, 30, 0.5);
  } else if (config == "adam_exponential") {
    adam.lr = 0.02;
    o = std::make_unique<optim::Adam<double>>(ParameterList<double>{&w, &b}, adam);
    s = std::make_unique<optim::ExponentialLR<double>>(*o, 0.97);
  } else if (config == "adamw_cosine") {
    adamw.lr = 0.02;
    adamw.weight_decay = 0.05;
    o = std::make_unique<optim::AdamW<double>>(ParameterList<double>{&w, &b}, adamw);
    s = std::make_unique<optim::CosineAnnealingLR<double>>(*o, 40, 1e-4);
  } else if (config == "sgd_linear") {
    sgd.lr = 0.1;
    sgd.momentum = 0.9;
    o = std::make_unique<optim::SGD<double>>(ParameterList<double>{&w, &b}, sgd);
    s = std::make_unique<optim::LinearLR<double>>(*o, 0.25, 1.0, 20);
  } else if (config == "adam_clip") {
    adam.lr = 0.05;
    o = std::make_unique<optim::Adam<double>>(ParameterList<double>{&w, &b}, adam);
    clip = 1.0;
  }
  REQUIRE(o);
  Md tw(kSteps * w0.rows(), w0.cols()), tb(kSteps * b0.rows(), b0.cols());
  for (int t = 0; t < kSteps; ++t) {
    w.grad = gw.middleRows(t * w0.rows(), w0.rows());
    b.grad = gb.middleRows(t * b0.rows(), b0.rows());
    if (clip > 0) optim::clip_grad_norm<double>({&w, &b}, clip);
    o->step();
    if (s) s->step();
    tw.middleRows(t * w0.rows(), w0.rows()) = w.value;
    tb.middleRows(t * b0.rows(), b0.rows()) = b.value;
  }
  return {{config + ".w", tw}, {config + ".b", tb}};
}

}  // namespace

TEST_CASE("optimizers, schedules and clipping follow torch.optim for 100 steps (needs torch)") {
  if (!test::have_torch()) return;
  const fs::path dir = test::scratch_dir("torch_optim");
  const Md w0 = test::normal(3, 4, 1), b0 = test::normal(1, 4, 2);
  // Gradients of varied size: every seventh step large, so that clipping acts on some steps.
  Md gw(kSteps * 3, 4), gb(kSteps, 4);
  for (int t = 0; t < kSteps; ++t) {
    const double scale = t % 7 == 0 ? 3.0 : 0.3;
    gw.middleRows(t * 3, 3) = test::normal(3, 4, 100 + std::uint64_t(t), scale);
    gb.row(t) = test::normal(1, 4, 1000 + std::uint64_t(t), scale);
  }
  io::save_npz((dir / "grads.npz").string(), {io::to_npy("init.w", w0), io::to_npy("init.b", b0),
                                              io::to_npy("grad.w", gw), io::to_npy("grad.b", gb)});
  std::string script = kTorchScript;
  script.replace(script.find("%STEPS%"), 7, std::to_string(kSteps));
  std::ofstream((dir / "run.py").string()) << script;
  std::string command = "/usr/bin/python3 " + (dir / "run.py").string() + " " + dir.string();
  for (const std::string& c : kConfigs) command += " " + c;
  REQUIRE(std::system(command.c_str()) == 0);

  std::map<std::string, Md> theirs;
  for (const io::NpyArray& a : io::load_npz((dir / "torch.npz").string())) {
    theirs[a.name] = a.matrix<double>();
  }
  for (const std::string& config : kConfigs) {
    CAPTURE(config);
    for (const auto& [name, ours] : run_ours(config, w0, b0, gw, gb)) {
      REQUIRE(theirs.count(name) == 1);
      const Md& torch = theirs.at(name);
      REQUIRE(torch.rows() == ours.rows());
      // Relative to the trajectory's scale: an entry passing through zero has no relative error
      // of its own. PyTorch's kernels fuse a multiply and an add (FMA) where ours may round
      // twice, so one ulp per step can differ; identical runs are reported as such.
      const double worst = (ours - torch).cwiseAbs().maxCoeff() / torch.cwiseAbs().maxCoeff();
      const std::string verdict = ours == torch ? "bit for bit" : "largest difference / scale";
      MESSAGE(name << ": " << verdict << " " << worst);
      CHECK(worst <= 1e-12);
    }
  }
}

TEST_CASE("a PyTorch state_dict loads into the same model here and back (needs torch)") {
  if (!test::have_torch()) return;
  const fs::path dir = test::scratch_dir("torch_state_dict");
  // The same architecture on both sides: Sequential(Linear(5, 8), Tanh, Linear(8, 3)).
  Generator gen(21);
  nn::Sequential<double> ours;
  ours.add<nn::Linear<double>>(5, 8, gen);
  ours.add<nn::Tanh<double>>();
  ours.add<nn::Linear<double>>(8, 3, gen);
  const Md x = test::normal(6, 5, 22);
  io::save_npz((dir / "x.npz").string(), {io::to_npy("x", x)});
  io::save(ours, (dir / "ours.npz").string());
  // PyTorch: its own initialisation saved as a state_dict, its output on x with those weights,
  // and its output with our weights loaded through load_state_dict (biases reshaped to 1-D).
  const std::string script =
      "import sys, numpy as np, torch\n"
      "torch.manual_seed(0)\n"
      "m = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))"
      ".double()\n"
      "x = torch.from_numpy(np.load(sys.argv[1] + '/x.npz')['x'])\n"
      "np.savez(sys.argv[1] + '/theirs.npz', **{k: v.numpy() for k, v in m.state_dict().items()})\n"
      "y_theirs = m(x).detach().numpy()\n"
      "d = np.load(sys.argv[1] + '/ours.npz')\n"
      "m.load_state_dict({k: torch.from_numpy(d[k]).reshape(v.shape) for k, v in "
      "m.state_dict().items()})\n"
      "np.savez(sys.argv[1] + '/y.npz', theirs=y_theirs, ours=m(x).detach().numpy())\n";
  std::ofstream((dir / "run.py").string()) << script;
  REQUIRE(std::system(
              ("/usr/bin/python3 " + (dir / "run.py").string() + " " + dir.string()).c_str()) == 0);
  std::map<std::string, Md> y;
  for (const io::NpyArray& a : io::load_npz((dir / "y.npz").string()))
    y[a.name] = a.matrix<double>();
  Tape<double> tape;
  const auto close = [](const Md& a, const Md& b) {
    return (a - b).cwiseAbs().maxCoeff() <= 1e-14 * b.cwiseAbs().maxCoeff();
  };
  CHECK(close(ours(tape.constant(x)).value(), y.at("ours")));  // ours in PyTorch
  io::load(ours, (dir / "theirs.npz").string());               // PyTorch's here
  CHECK(close(ours(tape.constant(x)).value(), y.at("theirs")));
  CHECK(!close(y.at("ours"), y.at("theirs")));  // the two sets of weights differ
}
