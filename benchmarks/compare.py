"""Runs the selmask and PyTorch sides of one workload in the same go and prints their ratios.

usage: compare.py SELMASK_BENCH_EPOCH PYTHON [--epochs E] [--threads T] [--train-limit N]
The last line is `epoch_time_ratio=<selmask seconds / PyTorch seconds>`.
"""
import argparse
import os
import subprocess
import sys


def run(cmd, env):
    print("$ " + " ".join(cmd), flush=True)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"{cmd[0]} failed with exit code {res.returncode}")
    out = res.stdout
    values = {}
    for line in out.splitlines():
        if "=" in line and " " not in line:
            k, v = line.split("=", 1)
            values[k] = v
        else:
            print("  " + line, flush=True)
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench_epoch")
    ap.add_argument("python")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0)
    a = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    common = ["--epochs", str(a.epochs), "--train-limit", str(a.train_limit)]
    here = os.path.dirname(os.path.abspath(__file__))
    sm = run([a.bench_epoch] + common, env)
    pt = run([a.python, os.path.join(here, "pytorch_epoch.py"), "--threads", str(a.threads)] + common, env)

    rows = [
        ("epoch seconds", "epoch_seconds", "{:.2f}"),
        ("images / s", "images_per_second", "{:.0f}"),
        ("test accuracy", "test_accuracy", "{:.4f}"),
        ("mask Q", "q", "{:.4f}"),
    ]
    print(f"\nLeNet + pixel(any), batch 128, {a.threads} threads, {a.epochs} epoch(s); "
          f"PyTorch {pt.get('torch_version', '?')}")
    print(f"{'':16}{'selmask':>12}{'PyTorch':>12}{'ratio':>10}")
    for label, key, fmt in rows:
        s, p = float(sm[key]), float(pt[key])
        ratio = s / p if p else float("nan")
        print(f"{label:16}{fmt.format(s):>12}{fmt.format(p):>12}{ratio:>10.3f}")
    print(f"{'mask share':16}{float(sm['mask_share']):>12.4f}{'':>12}")
    print(f"accuracy_difference_points={100 * (float(sm['test_accuracy']) - float(pt['test_accuracy'])):.2f}")
    print(f"epoch_time_ratio={float(sm['epoch_seconds']) / float(pt['epoch_seconds']):.3f}")


if __name__ == "__main__":
    sys.exit(main())
