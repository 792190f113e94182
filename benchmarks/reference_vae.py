#!/usr/bin/env python3
"""The reference articles' categorical VAE in PyTorch, trained on the same IDX files.

Used to check the C++ example's figures against PyTorch on this machine: prints per-epoch
train and test loss and seconds. The model, loss and temperature schedule follow the articles;
the data are read from IDX files (no torchvision needed).
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


class VaeGumbel(nn.Module):
    def __init__(self, latents, classes, hidden=512):
        super().__init__()
        self.latents, self.classes = latents, classes
        h1, h2 = hidden, hidden // 2
        self.fc1, self.fc2 = nn.Linear(784, h1), nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, latents * classes)
        self.fc4, self.fc5 = nn.Linear(latents * classes, h2), nn.Linear(h2, h1)
        self.fc6 = nn.Linear(h1, 784)

    def forward(self, x, temp, hard):
        q = F.relu(self.fc3(F.relu(self.fc2(F.relu(self.fc1(x))))))
        q_y = q.view(q.size(0), self.latents, self.classes)
        z = F.gumbel_softmax(q_y, tau=temp, hard=hard).view(q.size(0), -1)
        recon = torch.sigmoid(self.fc6(F.relu(self.fc5(F.relu(self.fc4(z))))))
        return recon, F.softmax(q_y, dim=-1).reshape(*q.size())


def loss_function(recon_x, x, qy, classes):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum") / x.shape[0]
    log_ratio = torch.log(qy * classes + 1e-20)
    kld = torch.sum(qy * log_ratio, dim=-1).mean()
    return bce + kld


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", default="data/mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--hard", action="store_true")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train = torch.from_numpy(read_idx(f"{a.data_dir}/train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    test = torch.from_numpy(read_idx(f"{a.data_dir}/t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    model = VaeGumbel(30, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        temp, total = 1.0, 0.0
        order = torch.randperm(train.shape[0])
        for b in range(train.shape[0] // 100):
            x = train[order[b * 100:(b + 1) * 100]]
            opt.zero_grad()
            recon, qy = model(x, temp, a.hard)
            loss = loss_function(recon, x, qy, 10)
            loss.backward()
            opt.step()
            total += loss.item() * 100
            if b % 100 == 1:
                temp = np.maximum(temp * np.exp(-3e-5 * b), 0.5)
        seconds = time.time() - start
        with torch.no_grad():
            test_loss = 0.0
            for i in range(0, test.shape[0], 100):
                x = test[i:i + 100]
                recon, qy = model(x, 1.0, a.hard)
                test_loss += loss_function(recon, x, qy, 10).item() * x.shape[0]
            test_loss /= test.shape[0]
        print(f"epoch {epoch} train {total / train.shape[0]:.4f} test {test_loss:.4f} seconds {seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
