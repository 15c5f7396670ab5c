"""Trains LeNet on Fashion-MNIST in PyTorch and saves it as a TorchScript file, for
fashion_mnist_jpeg_torchscript (the JPEG-version selection for a pre-trained, frozen network that
lives outside selmask).

    python3 examples/lenet_torchscript.py [--out lenet.pt] [--epochs 4] [--seed 1]

The network is the LeNet of selmask's main job (conv 1->20 5x5, ReLU, max-pool 2, conv 20->50 5x5,
ReLU, max-pool 2, dense 800->500, ReLU, dense 500->10), the input pixels scaled to [0, 1] as
selmask's loader does (byte / 255), trained with AdamW (lr 1e-3, betas 0.5/0.999, weight decay 1e-4,
amsgrad) in batches of 128 on the first 55,000 training images. Reads the IDX files of Debian's
dataset-fashion-mnist (no torchvision needed). Runs with Debian's python3-torch (1.13) or a current
PyPI torch; the file is written to a temporary name and renamed into place.
"""
import argparse
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    ndims = raw[3]
    dims = struct.unpack(">" + "I" * ndims, raw[4 : 4 + 4 * ndims])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims)
    if data.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: {data.size} values for dimensions {dims} (truncated?)")
    return data.reshape(dims)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="lenet.pt")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-limit", type=int, default=55000)
    ap.add_argument("--dir", default=DATA)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    x = torch.from_numpy(read_idx(os.path.join(args.dir, "train-images-idx3-ubyte.gz")).copy())
    y = torch.from_numpy(read_idx(os.path.join(args.dir, "train-labels-idx1-ubyte.gz")).copy()).long()
    xt = torch.from_numpy(read_idx(os.path.join(args.dir, "t10k-images-idx3-ubyte.gz")).copy())
    yt = torch.from_numpy(read_idx(os.path.join(args.dir, "t10k-labels-idx1-ubyte.gz")).copy()).long()
    n = min(args.train_limit, x.shape[0])
    x = x[:n].float().div(255.0).unsqueeze(1)
    y = y[:n]
    xt = xt.float().div(255.0).unsqueeze(1)

    net = lenet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=1e-4, amsgrad=True)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(n)
        total = 0.0
        for i in range(0, n, 128):
            idx = order[i : i + 128]
            opt.zero_grad()
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        net.eval()
        with torch.no_grad():
            acc = (net(xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}  loss {total / n:.4f}  test acc {acc:.4f}", flush=True)

    scripted = torch.jit.script(net.eval())
    tmp = args.out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} (TorchScript, torch {torch.__version__})")


if __name__ == "__main__":
    main()
