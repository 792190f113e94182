#!/usr/bin/python3
"""Side by side: gumbel's benchmarks and the same work in PyTorch, in one run, one table.

Runs, with the same thread count: Gumbel-Softmax sampling (soft and hard, forward and
forward + backward through sum(y * w)) at the shapes of bench_sampling, the RNG alone, a copy of
the same bytes, and one training step of the MNIST VAE (batch 100, N = 30, K = 10, Adam).
PyTorch runs F.gumbel_softmax and the reference articles' model (reference_vae.py). Every figure
is the median of --repetitions timings, and the two sides alternate within this one process run.

With --mnist DIR it also times whole training epochs on the real MNIST: examples/vae_mnist and
benchmarks/reference_vae.py, alternating, --epoch-pairs times, two epochs each (training time
only, as both programs report it); the table gains the median epoch of each and their ratio.

Use Debian's interpreter (python3-torch) with libopenblas0-pthread installed:
    /usr/bin/python3 benchmarks/compare_pytorch.py --build-dir build --threads 1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = [(3000, 10), (1024, 1000), (64, 32000)]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build", help="CMake build folder holding benchmarks/")
    p.add_argument("--threads", type=int, default=1, help="threads for both sides (default 1)")
    p.add_argument("--repetitions", type=int, default=5, help="timings per figure (median taken)")
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per timing")
    p.add_argument("--json", help="also write the table here as JSON")
    p.add_argument("--no-epoch", action="store_true",
                   help="skip the VAE epoch-equivalent (600 steps, several seconds per timing)")
    p.add_argument("--mnist", metavar="DIR",
                   help="also time real training epochs on the MNIST IDX files in DIR")
    p.add_argument("--epoch-pairs", type=int, default=4,
                   help="alternating runs of each training program with --mnist (default 4)")
    p.add_argument("--epochs-only", action="store_true",
                   help="with --mnist: time only the training epochs")
    a = p.parse_args()
    if a.epochs_only and not a.mnist:
        p.error("--epochs-only needs --mnist")
    if a.epoch_pairs < 1:
        p.error(f"--epoch-pairs must be at least 1, got {a.epoch_pairs}")
    if a.mnist and not os.path.isdir(a.mnist):
        p.error(f"--mnist {a.mnist}: no such folder")
    if a.threads < 1:
        p.error(f"--threads must be at least 1, got {a.threads}")
    if a.repetitions < 1:
        p.error(f"--repetitions must be at least 1, got {a.repetitions}")
    return a


# ---- ours: Google Benchmark binaries, JSON out -------------------------------------------------

def run_ours(binary, bench_filter, a, repetitions=None):
    """Median real time (ns) of each benchmark matching bench_filter, by name."""
    if not os.path.exists(binary):
        sys.exit(f"compare_pytorch: {binary} is missing; build with -DGUMBEL_BUILD_BENCHMARKS=ON")
    out = subprocess.run(
        [binary, f"--benchmark_filter={bench_filter}", "--benchmark_format=json",
         f"--benchmark_repetitions={repetitions or a.repetitions}", f"--benchmark_min_time={a.min_time}",
         "--benchmark_report_aggregates_only=true"],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS=str(a.threads))).stdout
    medians = {}
    for b in json.loads(out)["benchmarks"]:
        # One repetition reports the run itself: Google Benchmark makes no aggregates of one.
        one = (repetitions or a.repetitions) == 1 and b.get("run_type") == "iteration"
        if b.get("aggregate_name") == "median" or one:
            unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
            medians[b["run_name"]] = b["real_time"] * unit
    return medians


# ---- PyTorch ------------------------------------------------------------------------------------

def time_torch(fn, a):
    """Median seconds per call of fn over a.repetitions timings of about a.min_time each."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.05:
        fn()
        calls += 1
    per_timing = max(1, int(calls * a.min_time / 0.05))
    samples = []
    for _ in range(a.repetitions):
        start = time.perf_counter()
        for _ in range(per_timing):
            fn()
        samples.append((time.perf_counter() - start) / per_timing)
    return statistics.median(samples)


def torch_cases(torch, F, rows, k):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(rows, k, generator=g)
    weights = torch.randn(rows, k, generator=g)
    leaf = logits.clone().requires_grad_(True)

    def forward(hard):
        def run():
            with torch.no_grad():
                F.gumbel_softmax(logits, tau=0.5, hard=hard)
        return run

    def forward_backward(hard):
        def run():
            leaf.grad = None
            (F.gumbel_softmax(leaf, tau=0.5, hard=hard) * weights).sum().backward()
        return run

    out = torch.empty_like(logits)

    def uniform():
        out.uniform_()

    def gumbel_noise():  # what F.gumbel_softmax draws
        -torch.empty_like(logits).exponential_().log()

    def copy():
        out.copy_(logits)

    return {"soft_forward": forward(False), "hard_forward": forward(True),
            "soft_forward_backward": forward_backward(False),
            "hard_forward_backward": forward_backward(True),
            "uniform": uniform, "gumbel_noise": gumbel_noise, "memory_copy": copy}


def torch_vae(torch):
    """One training step on a fixed batch, and an epoch-equivalent as BM_VaeEpoch runs it: 600
    steps over 60,000 random images gathered in a fixed non-sequential order."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from reference_vae import VaeGumbel, loss_function
    torch.manual_seed(1)
    model = VaeGumbel(30, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = torch.rand(100, 784)
    data = torch.rand(60000, 784)
    order = torch.arange(59999, -1, -1)

    def train_on(x):
        opt.zero_grad()
        recon, qy = model(x, 0.9, False)
        loss_function(recon, x, qy, 10).backward()
        opt.step()

    def epoch():
        for b in range(600):
            train_on(data[order[b * 100:(b + 1) * 100]])
    return (lambda: train_on(batch)), epoch


def time_once(fn, repetitions):
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def loaded_blas(torch):
    """The BLAS library PyTorch actually runs on (Debian's torch links the generic libblas.so.3,
    which the alternatives system points at OpenBLAS or at the slow reference BLAS)."""
    a = torch.rand(64, 64)
    a @ a
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "blas" in line.lower()})
    name = ", ".join(os.path.basename(os.path.realpath(l)) for l in libs) or "none found"
    if "openblas" not in name:
        print("compare_pytorch: warning: PyTorch is not running on OpenBLAS; "
              "apt-get install libopenblas0-pthread", file=sys.stderr)
    return name


def mnist_epochs(a):
    """Training seconds per epoch of both programs on the real MNIST, alternating pairs."""
    import csv
    import tempfile
    ours_bin = os.path.join(a.build_dir, "examples", "vae_mnist", "vae_mnist")
    if not os.path.exists(ours_bin):
        sys.exit(f"compare_pytorch: {ours_bin} is missing; build the vae_mnist target")
    reference = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_vae.py")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as out:
        for pair in range(a.epoch_pairs):
            subprocess.run([ours_bin, "--data-dir", a.mnist, "--output-dir", out, "--overwrite",
                            "--epochs", "2", "--threads", str(a.threads), "--quiet"],
                           check=True, capture_output=True, env=env)
            with open(os.path.join(out, "loss.csv")) as f:
                mine = [float(r["seconds"]) for r in csv.DictReader(f)]
            printed = subprocess.run([sys.executable, reference, "--data-dir", a.mnist, "--epochs", "2",
                                      "--threads", str(a.threads)],
                                     check=True, capture_output=True, text=True, env=env).stdout
            other = [float(line.split("seconds")[1]) for line in printed.splitlines() if "seconds" in line]
            print(f"epoch pair {pair + 1}: gumbel {' '.join(f'{s:.2f}' for s in mine)} s, "
                  f"PyTorch {' '.join(f'{s:.2f}' for s in other)} s", flush=True)
            ours += mine
            theirs += other
    return statistics.median(ours), statistics.median(theirs)


def main():
    a = parse_args()
    # OpenBLAS starts one thread per core unless told otherwise; give both sides the same count.
    # (It reads the variable when the library loads, so before torch is imported.)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    bench = os.path.join(a.build_dir, "benchmarks")
    rows_out = []

    def add(case, ours_ns, torch_s, throughput_items=None):
        torch_ns = torch_s * 1e9
        if throughput_items:  # elements per second, higher is better; ratio = our speedup
            rows_out.append((case, throughput_items / ours_ns * 1e3, throughput_items / torch_ns * 1e3,
                             torch_ns / ours_ns, "M elements/s", "x faster"))
        else:  # time per step, lower is better; ratio = our time / PyTorch's
            rows_out.append((case, ours_ns / 1e6, torch_ns / 1e6, ours_ns / torch_ns, "ms", "x the time"))

    for rows, k in [] if a.epochs_only else SHAPES:
        suffix = f"/rows:{rows}/K:{k}/threads:{a.threads}/real_time"
        ours = run_ours(os.path.join(bench, "bench_sampling"), f".*/rows:{rows}/K:{k}/threads:{a.threads}/", a)
        for name, fn in torch_cases(torch, F, rows, k).items():
            add(f"{name} {rows}x{k}", ours[name + suffix], time_torch(fn, a), rows * k)

    step, epoch = torch_vae(torch)
    name = f"BM_VaeTrainStep/estimator:0/threads:{a.threads}/blocks:2"
    if not a.epochs_only:
        ours = run_ours(os.path.join(bench, "bench_vae_step"), name + "/", a)
        add("VAE train step (batch 100, soft)", ours[name + "/real_time"], time_torch(step, a))
    if not a.no_epoch and not a.epochs_only:
        name = f"BM_VaeEpoch/estimator:0/threads:{a.threads}/blocks:2/iterations:1"
        ours = run_ours(os.path.join(bench, "bench_vae_step"), name + "/", a, repetitions=3)
        add("VAE epoch-equivalent (600 steps)", ours[name + "/real_time"], time_once(epoch, 3))

    if a.mnist:
        ours_s, torch_s = mnist_epochs(a)
        add(f"VAE epoch on MNIST (median of {2 * a.epoch_pairs})", ours_s * 1e9, torch_s)

    print(f"gumbel vs PyTorch {torch.__version__}, {a.threads} thread(s), medians of {a.repetitions}; "
          f"PyTorch's BLAS: {loaded_blas(torch)}")
    width = max(len(r[0]) for r in rows_out)
    print(f"{'case':<{width}}  {'gumbel':>12}  {'PyTorch':>12}  {'ratio':>9}  unit")
    for case, ours_v, torch_v, ratio, unit, meaning in rows_out:
        print(f"{case:<{width}}  {ours_v:>12.1f}  {torch_v:>12.1f}  {ratio:>9.2f}  {unit} ({meaning})")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump([dict(zip(["case", "gumbel", "pytorch", "ratio", "unit", "ratio_meaning"], r))
                       for r in rows_out], f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
