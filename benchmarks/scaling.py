#!/usr/bin/python3
"""How cost grows with work: gumbel beside PyTorch, one thread, and the pictures of
docs/performance.md.

Times, alternating ours (build/benchmarks/bench_scaling) and PyTorch's case by case:
  - a training step of the MNIST VAE (soft Gumbel-Softmax, Adam) against the batch size (10 to
    2000, hidden width 512) and against the hidden width (64 to 2048, batch 100);
  - a soft Gumbel-Softmax forward sample of 2^20 logits against the number of classes K (2 to
    65,536), with a copy of the same bytes as the floor.
Each figure is the median of --repetitions timings. Writes step_batch.svg, step_hidden.svg and
sampling_k.svg to --out-dir (matplotlib, Debian's python3-matplotlib) and the table as JSON.

    /usr/bin/python3 benchmarks/scaling.py --build-dir build --out-dir docs/img
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_pytorch import run_ours, time_torch  # noqa: E402

BATCHES = [10, 20, 50, 100, 200, 500, 1000, 2000]
HIDDEN = [64, 128, 256, 512, 1024, 2048]
KS = [2 ** e for e in range(1, 17)]
ELEMENTS = 1 << 20


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--out-dir", default="docs/img")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--json", help="write the measurements here (default: OUT_DIR/scaling.json)")
    a = p.parse_args()
    a.threads = 1
    if a.repetitions < 2:  # Google Benchmark reports medians from two repetitions on
        p.error(f"--repetitions must be at least 2, got {a.repetitions}")
    return a


def main():
    a = parse_args()
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    from reference_vae import VaeGumbel, loss_function
    binary = os.path.join(a.build_dir, "benchmarks", "bench_scaling")

    def ours(name):
        return run_ours(binary, f"^{name}$", a)[name] / 1e9  # seconds

    def torch_step(batch, hidden):
        torch.manual_seed(1)
        model = VaeGumbel(30, 10, hidden)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.rand(batch, 784)

        def run():
            opt.zero_grad()
            recon, qy = model(x, 0.9, False)
            loss_function(recon, x, qy, 10).backward()
            opt.step()
        return time_torch(run, a)

    def torch_sample(k):
        logits = torch.randn(ELEMENTS // k, k)

        def run():
            with torch.no_grad():
                F.gumbel_softmax(logits, tau=0.5)
        return time_torch(run, a)

    rows = []
    for batch, hidden in [(b, 512) for b in BATCHES] + [(100, h) for h in HIDDEN if h != 512]:
        name = f"scaling_step/batch:{batch}/hidden:{hidden}"
        rows.append({"case": "step", "batch": batch, "hidden": hidden, "ours_s": ours(name),
                     "torch_s": torch_step(batch, hidden)})
        print(f"step batch {batch:5d} hidden {hidden:5d}: {rows[-1]['ours_s'] * 1e3:9.3f} ms  "
              f"PyTorch {rows[-1]['torch_s'] * 1e3:9.3f} ms", flush=True)
    for k in KS:
        row = {"case": "sample", "k": k, "ours_s": ours(f"scaling_sample/K:{k}"),
               "torch_s": torch_sample(k), "copy_s": ours(f"scaling_copy/K:{k}")}
        rows.append(row)
        print(f"sample K {k:6d}: {ELEMENTS / row['ours_s'] / 1e6:8.1f} M/s  PyTorch "
              f"{ELEMENTS / row['torch_s'] / 1e6:8.1f} M/s  copy {ELEMENTS / row['copy_s'] / 1e6:8.1f} M/s",
              flush=True)

    os.makedirs(a.out_dir, exist_ok=True)
    with open(a.json or os.path.join(a.out_dir, "scaling.json"), "w") as f:
        json.dump({"torch": torch.__version__, "rows": rows}, f, indent=1)
    draw(rows, a.out_dir)


def draw(rows, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "gumbel"  # stable ids: the files diff cleanly

    def work(r):
        """Multiply-adds of a step's products, which is what should grow linearly: per example,
        encoder 784-H-H/2-300 and decoder 300-H/2-H-784, three products per layer."""
        h = r["hidden"]
        per_example = 784 * h + h * (h // 2) + (h // 2) * 300
        return 3 * 2 * per_example * r["batch"]

    def step_plot(key, values, fixed, xlabel, filename):
        sel = [r for r in rows if r["case"] == "step" and r[fixed[0]] == fixed[1]]
        sel = sorted((r for r in sel if r[key] in values), key=lambda r: r[key])
        xs = [r[key] for r in sel]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.loglog(xs, [r["ours_s"] * 1e3 for r in sel], "o-", label="gumbel")
        ax.loglog(xs, [r["torch_s"] * 1e3 for r in sel], "s-", label="PyTorch 1.13")
        # Time proportional to the products' work, through our largest point.
        top = sel[-1]
        ax.loglog(xs, [top["ours_s"] * 1e3 * work(r) / work(top) for r in sel], ":", color="grey",
                  label="proportional to the products' work")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time per training step (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, filename), metadata={"Date": None})
        plt.close(fig)

    step_plot("batch", BATCHES, ("hidden", 512), "batch size (hidden width 512)", "step_batch.svg")
    step_plot("hidden", HIDDEN, ("batch", 100), "hidden width (batch 100)", "step_hidden.svg")

    sel = sorted((r for r in rows if r["case"] == "sample"), key=lambda r: r["k"])
    ks = [r["k"] for r in sel]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(ks, [ELEMENTS / r["ours_s"] / 1e9 for r in sel], "o-", label="gumbel", base=2)
    ax.semilogx(ks, [ELEMENTS / r["torch_s"] / 1e9 for r in sel], "s-", label="PyTorch 1.13", base=2)
    ax.semilogx(ks, [ELEMENTS / r["copy_s"] / 1e9 for r in sel], "--", color="grey",
                label="memory copy of the same bytes", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("classes K (2^20 logits per sample)")
    ax.set_ylabel("soft forward sample (G logits/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "sampling_k.svg"), metadata={"Date": None})
    plt.close(fig)


if __name__ == "__main__":
    main()
