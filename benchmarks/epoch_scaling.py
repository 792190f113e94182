#!/usr/bin/env python3
"""Training seconds per VAE epoch on the real MNIST for one and two threads (or processes),
ours and PyTorch's, in alternating rounds (this machine's timings drift: never a lone run).

Each round runs, in turn, `vae_mnist --threads 1`, `vae_mnist --threads 2`, the PyTorch
reference (benchmarks/reference_vae.py) with 1 thread and with 2, each for --epochs epochs, and
records every epoch's training seconds. With --processes the two-way runs are processes of one
thread each instead: `mpirun -np 2 vae_mnist_mpi` and PyTorch's DistributedDataParallel on gloo
(benchmarks/reference_vae_ddp.py). Open MPI's shared-memory transport moves our messages
through its shared segment (`--mca btl_vader_single_copy_mechanism none`) unless --mpi-copy cma
asks for its default, a kernel copy by the receiver (`process_vm_readv`), which costs more on
virtual machines like this one (docs/performance.md). Prints each round, then the medians and the ratios the
performance targets are stated in: our scaling from 1 to 2, and our two-way epoch against
PyTorch's (best one-thread, or DDP's two-process).

    /usr/bin/python3 benchmarks/epoch_scaling.py --build-dir build --mnist data/mnist --rounds 3
    /usr/bin/python3 benchmarks/epoch_scaling.py --build-dir build --mnist data/mnist --processes
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build")
    p.add_argument("--mnist", default="data/mnist", help="folder with the MNIST IDX files")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    p.add_argument("--blocks", type=int, default=2, help="vae_mnist --blocks (default 2)")
    p.add_argument("--no-torch", action="store_true", help="ours only")
    p.add_argument("--processes", action="store_true",
                   help="two processes of one thread (MPI; PyTorch DDP on gloo), not two threads")
    p.add_argument("--mpi-copy", choices=["segment", "cma"], default="segment",
                   help="how Open MPI copies a large message between our processes: through its "
                        "shared segment (default) or by the receiver's process_vm_readv (CMA, "
                        "Open MPI's own default)")
    a = p.parse_args()
    if a.rounds < 1 or a.epochs < 1:
        p.error("--rounds and --epochs must be at least 1")
    return a


def ours(a, ways, out):
    name = "vae_mnist_mpi" if a.processes and ways > 1 else "vae_mnist"
    binary = os.path.join(a.build_dir, "examples", "vae_mnist", name)
    if not os.path.exists(binary):
        sys.exit(f"epoch_scaling: {binary} is missing; build the {name} target")
    threads = 1 if a.processes else ways
    command = [binary, "--data-dir", a.mnist, "--output-dir", out, "--overwrite", "--epochs",
               str(a.epochs), "--threads", str(threads), "--blocks", str(a.blocks), "--quiet"]
    if a.processes and ways > 1:
        copy = "none" if a.mpi_copy == "segment" else "cma"
        command = ["mpirun", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", copy,
                   "-np", str(ways)] + command
        if os.geteuid() == 0:
            command.insert(1, "--allow-run-as-root")
    subprocess.run(command, check=True, capture_output=True,
                   env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    with open(os.path.join(out, "loss.csv")) as f:
        return [float(r["seconds"]) for r in csv.DictReader(f)]


def theirs(a, ways):
    here = os.path.dirname(os.path.abspath(__file__))
    threads = 1 if a.processes else ways
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    if a.processes and ways > 1:
        command = [sys.executable, os.path.join(here, "reference_vae_ddp.py"), "--data-dir", a.mnist,
                   "--epochs", str(a.epochs), "--processes", str(ways)]
    else:
        command = [sys.executable, os.path.join(here, "reference_vae.py"), "--data-dir", a.mnist,
                   "--epochs", str(a.epochs), "--threads", str(threads)]
    printed = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return [float(line.split("seconds")[1]) for line in printed.splitlines() if "seconds" in line]


def main():
    a = parse_args()
    two = "2 processes" if a.processes else "2 threads"
    if a.processes:
        print(f"MPI messages between our processes: --mpi-copy {a.mpi_copy}", flush=True)
    runs = {"gumbel 1": [], "gumbel 2": [], "PyTorch 1": [], "PyTorch 2": []}
    with tempfile.TemporaryDirectory() as out:
        for r in range(a.rounds):
            runs["gumbel 1"] += (one := ours(a, 1, out))
            runs["gumbel 2"] += (two_s := ours(a, 2, out))
            line = f"round {r + 1}: gumbel 1 thread {' '.join(f'{s:.2f}' for s in one)} s, " \
                   f"{two} {' '.join(f'{s:.2f}' for s in two_s)} s"
            if not a.no_torch:
                runs["PyTorch 1"] += (t1 := theirs(a, 1))
                runs["PyTorch 2"] += (t2 := theirs(a, 2))
                line += f"; PyTorch 1 thread {' '.join(f'{s:.2f}' for s in t1)} s, " \
                        f"{two} {' '.join(f'{s:.2f}' for s in t2)} s"
            print(line, flush=True)
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    print("median seconds per epoch: " + ", ".join(f"{k}: {v:.2f}" for k, v in med.items()))
    print(f"gumbel scaling 1 thread -> {two}: {med['gumbel 1'] / med['gumbel 2']:.2f}x")
    if not a.no_torch:
        best = min(runs["PyTorch 1"])
        print(f"PyTorch scaling 1 thread -> {two}: {med['PyTorch 1'] / med['PyTorch 2']:.2f}x")
        print(f"gumbel {two} / PyTorch {two}: {med['gumbel 2'] / med['PyTorch 2']:.2f}x")
        print(f"gumbel {two} / PyTorch's best 1-thread epoch ({best:.2f} s): "
              f"{med['gumbel 2'] / best:.2f}x; / PyTorch's median 1-thread epoch: "
              f"{med['gumbel 2'] / med['PyTorch 1']:.2f}x")


if __name__ == "__main__":
    main()
