"""The workload of benchmarks/bench_epoch.cpp in PyTorch, for a side-by-side comparison.

LeNet + a pixel(any) mask (straight-through sigmoid: forward the hard 0/1 mask, backward through
sigmoid(w/tau)) on Fashion-MNIST, batch 128, AdamW(amsgrad, betas 0.5/0.999) for the network
(lr 1e-3, weight decay 1e-4) and the mask (lr 5e-3, weight decay 1e-7), loss = cross-entropy +
lambda * Q with lambda = 0.05, data pre-loaded as tensors, torch.set_num_threads(threads).
Prints the same key=value summary as bench_epoch.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# the IDX reader and the LeNet of examples/lenet_torchscript.py (the TorchScript example's network)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from lenet_torchscript import DATA, lenet, read_idx  # noqa: E402


class PixelMask(nn.Module):
    def __init__(self, h, w, generator):
        super().__init__()
        self.w = nn.Parameter(3.0 + 0.01 * torch.randn(1, 1, h, w, generator=generator))

    def forward(self, x, tau=1.0):
        soft = torch.sigmoid(self.w / tau)
        hard = (soft >= 0.5).to(x.dtype)
        m = hard + soft - soft.detach()  # straight-through
        return x * m, m.mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    xtr = torch.from_numpy(read_idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0)
    ytr = torch.from_numpy(read_idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0)
    yte = torch.from_numpy(read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if a.train_limit:
        xtr, ytr = xtr[: a.train_limit], ytr[: a.train_limit]
    xtr, xte = xtr.unsqueeze(1).contiguous(), xte.unsqueeze(1).contiguous()

    g = torch.Generator().manual_seed(a.seed)
    mask, net = PixelMask(28, 28, g), lenet()
    opt_net = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=1e-4, amsgrad=True)
    opt_mask = torch.optim.AdamW(mask.parameters(), lr=5e-3, betas=(0.5, 0.999), weight_decay=1e-7, amsgrad=True)
    lam = 0.05
    n = xtr.shape[0]
    total = 0.0
    for e in range(a.epochs):
        perm = torch.randperm(n, generator=g)
        t0 = time.perf_counter()
        loss_sum = 0.0
        for b in range(0, n, 128):
            idx = perm[b : b + 128]
            x, y = xtr[idx], ytr[idx]
            opt_net.zero_grad(set_to_none=False)
            opt_mask.zero_grad(set_to_none=False)
            xm, q = mask(x)
            ce = F.cross_entropy(net(xm), y)
            (ce + lam * q).backward()
            opt_mask.step()
            opt_net.step()
            loss_sum += ce.item() * x.shape[0]
        s = time.perf_counter() - t0
        total += s
        print(f"pytorch epoch {e + 1}: {s:.2f} s, {n / s:.0f} images/s, train loss {loss_sum / n:.4f}", flush=True)
    with torch.no_grad():
        correct = 0
        for b in range(0, xte.shape[0], 500):
            xm, q = mask(xte[b : b + 500])
            correct += (net(xm).argmax(1) == yte[b : b + 500]).sum().item()
    print(f"epoch_seconds={total / a.epochs:.4f}")
    print(f"images_per_second={n * a.epochs / total:.1f}")
    print(f"test_accuracy={correct / xte.shape[0]:.4f}")
    print(f"q={q.item():.4f}")
    print(f"torch_version={torch.__version__}")


if __name__ == "__main__":
    main()
