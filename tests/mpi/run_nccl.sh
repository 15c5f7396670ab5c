#!/usr/bin/env bash
# NCCL data-parallel training on GPUs (label cuda; needs a GPU per rank):
#   tests/mpi/run_nccl.sh PATH/TO/nccl_train PATH/TO/mpirun
# as many ranks as GPUs (NCCL takes one GPU per rank): their front and final weights equal, byte for
# byte, those of the same shards computed in one process on the CUDA backend (local_shards).
set -euo pipefail
prog=$(realpath "$1")
mpirun=${2:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
gpus=$(nvidia-smi -L 2> /dev/null | wc -l)
[ "$gpus" -ge 1 ] || { echo "run_nccl.sh: no GPU (nvidia-smi -L lists none)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$mpirun" -np "$gpus" --oversubscribe "$prog" "$work/nccl" > "$work/nccl.log" 2>&1 || { cat "$work/nccl.log"; exit 1; }
"$prog" "$work/local" --local "$gpus" > "$work/local.log" 2>&1 || { cat "$work/local.log"; exit 1; }
cmp "$work/nccl/front.txt" "$work/local/front.txt" || { echo "run_nccl.sh: the fronts differ" >&2; exit 1; }
cmp "$work/nccl/weights.bin" "$work/local/weights.bin" || { echo "run_nccl.sh: the weights differ" >&2; exit 1; }
echo "run_nccl.sh: $gpus rank(s) through NCCL = $gpus shard(s) in one process on the GPU, byte for byte"
