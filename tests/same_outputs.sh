#!/usr/bin/env bash
# Whether two runs of the main job wrote the same outputs, byte for byte:
#   tests/same_outputs.sh DIR_A DIR_B
# front.csv, summary.txt, epochs.csv (but for its last column, the wall-clock seconds, which differ
# between any two runs) and every file of checkpoints/ (the same set in both). Prints what it
# compared; exits 1 naming the first difference.
set -euo pipefail
a=$1
b=$2
fail() { echo "same_outputs.sh: $*" >&2; exit 1; }
for f in front.csv summary.txt; do cmp "$a/$f" "$b/$f" || fail "$f differs"; done
diff <(cut -d, -f1-9 "$a/epochs.csv") <(cut -d, -f1-9 "$b/epochs.csv") || fail "epochs.csv differs"
[ "$(wc -l < "$a/epochs.csv")" -gt 5 ] || fail "epochs.csv has too few rows"
n=0
for f in "$a"/checkpoints/*; do
  cmp "$f" "$b/checkpoints/$(basename "$f")" || fail "checkpoints/$(basename "$f") differs"
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "only $n checkpoint files to compare"
[ "$(ls "$b/checkpoints" | wc -l)" = "$n" ] || fail "the second run wrote other checkpoints"
echo "front.csv, summary.txt, epochs.csv and $n checkpoint files identical"
