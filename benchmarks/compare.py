"""Runs the selmask and PyTorch sides of one workload in the same go and prints their ratios.

usage: compare.py SELMASK_BENCH_EPOCH PYTHON [--epochs E] [--threads T] [--train-limit N] [--repeats R]
The two sides run alternately R times (selmask, PyTorch, selmask, ...), so that a slow spell of a
shared machine hits both; each side's epoch time is the median of its R runs. The accuracies come
from the first run of each side (both are seeded). The last line is
`epoch_time_ratio=<selmask seconds / PyTorch seconds>`.
"""
import argparse
import os
import statistics
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
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    common = ["--epochs", str(a.epochs), "--train-limit", str(a.train_limit)]
    here = os.path.dirname(os.path.abspath(__file__))
    sm_runs, pt_runs = [], []
    for _ in range(max(1, a.repeats)):
        sm_runs.append(run([a.bench_epoch] + common, env))
        pt_runs.append(run([a.python, os.path.join(here, "pytorch_epoch.py"), "--threads", str(a.threads)] + common,
                           env))
    sm, pt = dict(sm_runs[0]), dict(pt_runs[0])
    for side, runs in ((sm, sm_runs), (pt, pt_runs)):
        times = sorted(float(r["epoch_seconds"]) for r in runs)
        side["epoch_seconds"] = str(statistics.median(times))
        side["images_per_second"] = str(float(runs[0]["images_per_second"]) * float(runs[0]["epoch_seconds"]) /
                                        statistics.median(times))
        side["all_epoch_seconds"] = " ".join(f"{t:.2f}" for t in times)

    rows = [
        ("epoch seconds", "epoch_seconds", "{:.2f}"),
        ("images / s", "images_per_second", "{:.0f}"),
        ("test accuracy", "test_accuracy", "{:.4f}"),
        ("mask Q", "q", "{:.4f}"),
    ]
    print(f"\nLeNet + pixel(any), batch 128, {a.threads} threads, {a.epochs} epoch(s), median of {a.repeats} runs; "
          f"PyTorch {pt.get('torch_version', '?')}")
    print(f"{'':16}{'selmask':>12}{'PyTorch':>12}{'ratio':>10}")
    for label, key, fmt in rows:
        s, p = float(sm[key]), float(pt[key])
        ratio = s / p if p else float("nan")
        print(f"{label:16}{fmt.format(s):>12}{fmt.format(p):>12}{ratio:>10.3f}")
    print(f"{'mask share':16}{float(sm['mask_share']):>12.4f}{'':>12}")
    print(f"epoch seconds of each run: selmask {sm['all_epoch_seconds']}; PyTorch {pt['all_epoch_seconds']}")
    print(f"accuracy_difference_points={100 * (float(sm['test_accuracy']) - float(pt['test_accuracy'])):.2f}")
    print(f"epoch_time_ratio={float(sm['epoch_seconds']) / float(pt['epoch_seconds']):.3f}")


if __name__ == "__main__":
    sys.exit(main())
