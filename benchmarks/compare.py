"""Runs the selmask and PyTorch sides of one workload in the same go and prints their ratios.

usage: compare.py SELMASK_BENCH_EPOCH PYTHON [--epochs E] [--threads T] [--train-limit N] [--repeats R]
                  [--adapter BENCH_EPOCH_TORCH]
With --adapter, a third side runs in the same rotation: the same LeNet written in libtorch's C++
frontend, through selmask's torch adapter (bench_epoch_torch), and its ratios to both others.
The two sides run alternately R times (selmask, PyTorch, selmask, ...), so that a slow spell of a
shared machine hits both; each side's epoch time is the median of its R runs. Run r (1…R) of each
side uses seed r (network initialisation, mask initialisation, batch order), so the test accuracy
and mask Q are the means over R seeds: one seed's accuracy after an epoch varies by about half a
point, as much as the difference being checked. The last line is
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
    ap.add_argument("--adapter", default="")
    a = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    common = ["--epochs", str(a.epochs), "--train-limit", str(a.train_limit)]
    here = os.path.dirname(os.path.abspath(__file__))
    sm_runs, pt_runs, ad_runs = [], [], []
    for r in range(max(1, a.repeats)):
        seed = ["--seed", str(r + 1)]
        sm_runs.append(run([a.bench_epoch] + common + seed, env))
        if a.adapter:
            ad_runs.append(run([a.adapter] + common + seed, env))
        pt_runs.append(run([a.python, os.path.join(here, "pytorch_epoch.py"), "--threads", str(a.threads)] + common +
                           seed, env))
    sm, pt, ad = dict(sm_runs[0]), dict(pt_runs[0]), dict(ad_runs[0]) if ad_runs else None
    sides = [(sm, sm_runs), (pt, pt_runs)] + ([(ad, ad_runs)] if ad else [])
    for side, runs in sides:
        times = sorted(float(r["epoch_seconds"]) for r in runs)
        side["epoch_seconds"] = str(statistics.median(times))
        side["images_per_second"] = str(float(runs[0]["images_per_second"]) * float(runs[0]["epoch_seconds"]) /
                                        statistics.median(times))
        side["all_epoch_seconds"] = " ".join(f"{t:.2f}" for t in times)
        for key in ("test_accuracy", "q"):
            values = [float(r[key]) for r in runs]
            side[key] = str(statistics.mean(values))
            side["all_" + key] = " ".join(f"{v:.4f}" for v in values)

    rows = [
        ("epoch seconds", "epoch_seconds", "{:.2f}"),
        ("images / s", "images_per_second", "{:.0f}"),
        ("test accuracy", "test_accuracy", "{:.4f}"),
        ("mask Q", "q", "{:.4f}"),
    ]
    print(f"\nLeNet + pixel(any), batch 128, {a.threads} threads, {a.epochs} epoch(s), {a.repeats} runs (seeds 1-"
          f"{a.repeats}): times are medians, accuracy and Q means; PyTorch {pt.get('torch_version', '?')}")
    print(f"{'':16}{'selmask':>12}{'PyTorch':>12}{'ratio':>10}")
    for label, key, fmt in rows:
        s, p = float(sm[key]), float(pt[key])
        ratio = s / p if p else float("nan")
        print(f"{label:16}{fmt.format(s):>12}{fmt.format(p):>12}{ratio:>10.3f}")
    print(f"{'mask share':16}{float(sm['mask_share']):>12.4f}{'':>12}")
    print(f"epoch seconds of each run: selmask {sm['all_epoch_seconds']}; PyTorch {pt['all_epoch_seconds']}")
    print(f"test accuracy by seed: selmask {sm['all_test_accuracy']}; PyTorch {pt['all_test_accuracy']}")
    print(f"accuracy_difference_points={100 * (float(sm['test_accuracy']) - float(pt['test_accuracy'])):.2f}")
    if ad:
        print(f"\nthe same LeNet in libtorch (C++ frontend) through selmask's torch adapter:")
        print(f"{'':16}{'adapter':>12}{'/ selmask':>12}{'/ PyTorch':>12}")
        for label, key, fmt in rows:
            v = float(ad[key])
            print(f"{label:16}{fmt.format(v):>12}{v / float(sm[key]):>12.3f}{v / float(pt[key]):>12.3f}")
        print(f"epoch seconds of each run: adapter {ad['all_epoch_seconds']}")
        print(f"adapter_time_ratio_to_selmask={float(ad['epoch_seconds']) / float(sm['epoch_seconds']):.3f}")
        print(f"adapter_time_ratio_to_pytorch={float(ad['epoch_seconds']) / float(pt['epoch_seconds']):.3f}")
    print(f"epoch_time_ratio={float(sm['epoch_seconds']) / float(pt['epoch_seconds']):.3f}")


if __name__ == "__main__":
    sys.exit(main())
