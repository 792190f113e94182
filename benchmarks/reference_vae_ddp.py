#!/usr/bin/env python3
"""The reference VAE (reference_vae.py) under PyTorch's DistributedDataParallel on the gloo
backend: `--processes` processes of `--threads` threads each on this machine, one global batch
of 100 images per step split evenly among them (DistributedSampler's way: every process a
disjoint part), gradients averaged by DDP's bucketed all-reduce. Prints rank 0's training
seconds per epoch as reference_vae.py does, for benchmarks/epoch_scaling.py --processes.

    /usr/bin/python3 benchmarks/reference_vae_ddp.py --data-dir data/mnist --processes 2
"""
import argparse
import os
import socket
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from reference_vae import VaeGumbel, loss_function, read_idx


def worker(rank, a, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", rank=rank, world_size=a.processes)
    torch.manual_seed(a.seed)  # the same initial model and order on every process
    train = torch.from_numpy(read_idx(f"{a.data_dir}/train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    model = DistributedDataParallel(VaeGumbel(30, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = 100
    share = batch // a.processes
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        temp = 1.0
        order = torch.randperm(train.shape[0])
        for b in range(train.shape[0] // batch):
            rows = order[b * batch + rank * share:b * batch + (rank + 1) * share]
            x = train[rows]
            opt.zero_grad()
            recon, qy = model(x, temp, False)
            loss = loss_function(recon, x, qy, 10)  # this process's mean: DDP averages them
            loss.backward()
            opt.step()
            if b % 100 == 1:
                temp = np.maximum(temp * np.exp(-3e-5 * b), 0.5)
        seconds = time.time() - start
        if rank == 0:
            print(f"epoch {epoch} seconds {seconds:.2f}", flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="per process")
    p.add_argument("--seed", type=int, default=2020)
    a = p.parse_args()
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(a, port), nprocs=a.processes, join=True)


if __name__ == "__main__":
    main()
