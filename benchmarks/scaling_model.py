#!/usr/bin/env python3
"""The speed-up of data-parallel training on paper (README, "Data-parallel training").

A step of R ranks computes 1/R of the global batch on each and then exchanges the gradients:
    T(R) = C / R + X(R),   X(R) = 2 (R-1)/R * B / W + 2 (R-1) * a + h * B   (R > 1),   T(1) = C
C: compute of one step on one core (measured), B: bytes of the gradients and mask logits, W: the
network's bandwidth, a: the latency of one message step, h: the host work per byte of the exchange
(copies to and from the host, the ordered sums; measured by bench_exchange between 2 ranks on one
machine, minus what MPI_Allreduce itself takes). The exchange is the trainer's two-step one
(train/data_parallel.hpp), which moves what a ring all-reduce moves: 2(R-1)/R of the vector.
Speed-up S(R) = T(1) / T(R); efficiency S/R.

  benchmarks/scaling_model.py [C_ms] [h_ms_per_MB]
"""
import sys

C_lenet = float(sys.argv[1]) if len(sys.argv) > 1 else 41.0  # ms per step of 128 images, 1 core
h = float(sys.argv[2]) if len(sys.argv) > 2 else 0.4          # ms per MB of host work
a = 0.02                                                      # ms per message step (TCP, 20 us)
ranks = [2, 4, 8, 16, 32, 64]
networks = {"10 Gbit/s": 1.25, "25 Gbit/s": 3.125, "100 Gbit/s": 12.5}  # GB/s = MB per ms

# LeNet (431,080 parameters) + a 28x28 pixel mask (784 logits), float32
B_lenet = (431080 + 784) * 4 / 1e6
# a remote-sensing case: 200 bands of 64x64, a pixel mask per band (819,200 logits), LeNet-like
# network conv 200->20 5x5, pool, conv 20->50 5x5, pool, dense 8450->500->10 (4.35 M parameters);
# multiply-adds per image 381 M against LeNet's 2.3 M: compute per step taken as 166x LeNet's
B_rs = (4.35e6 + 819200) * 4 / 1e6
C_rs = C_lenet * 166


def speedup(C, B, W, R):
    x = 2 * (R - 1) / R * B / W + 2 * (R - 1) * a + h * B
    return C / (C / R + x)


for name, C, B in [("LeNet, Fashion-MNIST (B = %.2f MB, C = %.0f ms)" % (B_lenet, C_lenet), C_lenet, B_lenet),
                   ("200 bands of 64x64, pixel mask per band (B = %.1f MB, C = %.1f s)" % (B_rs, C_rs / 1000), C_rs, B_rs)]:
    print("\n%s: speed-up (efficiency) at R ranks\n" % name)
    print("| network | " + " | ".join("R = %d" % r for r in ranks) + " |")
    print("|---|" + "---|" * len(ranks))
    for net, W in networks.items():
        cells = ["%.1f (%.0f %%)" % (speedup(C, B, W, r), 100 * speedup(C, B, W, r) / r) for r in ranks]
        print("| %s | %s |" % (net, " | ".join(cells)))
