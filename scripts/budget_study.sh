#!/usr/bin/env bash
# The recovery-budget study of issue 28 (sweeps/fashion-mnist-budget.yaml,
# and sweeps/fashion-mnist-budget-old.yaml under the old recipe), in shards
# over sessions: a session's background job dies with it, so each run
# resumes from what the last one committed and leaves behind what the next
# one needs.
#
#   bash scripts/budget_study.sh sweeps/fashion-mnist-budget.yaml 1/4   # one shard
#   bash scripts/budget_study.sh sweeps/fashion-mnist-budget.yaml       # every point
#
# It copies the committed partial results, reports/<name>/, into the
# sweep's output directory, results/<name>/ (what is there already wins);
# trains the stage every shard shares (the dense model); runs the shard's
# points, or all of them; saves what a resume needs back into
# reports/<name>/ (scripts/save_partial.sh: tables, dense checkpoints,
# per-point outcomes); and merges the tables into points.csv, the recovery
# curve and report.md there, listing the points still missing. Commit
# reports/<name>/ after each run.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:?usage: budget_study.sh SPEC [SHARD i/n]}
shard=${2:-}
explore=${EXPLORE:-target/release/explore}
[ -x "$explore" ] || cargo build --release
name=$(sed -n 's/^name: //p' "$spec")
out=results/$name
keep=reports/$name
mkdir -p "$out"
if [ -d "$keep" ]; then cp -rn "$keep/." "$out/"; fi
"$explore" sweep "$spec" --stage shared
if [ -n "$shard" ]; then
  "$explore" sweep "$spec" --shard "$shard"
else
  "$explore" sweep "$spec"
fi
bash scripts/save_partial.sh "$out" "$keep"
"$explore" merge "$out" --output "$out"
cp "$out"/report.md "$out"/points.csv "$keep"/
for f in "$out"/*.png "$out"/*.svg; do
  if [ -f "$f" ]; then cp "$f" "$keep"/; fi
done
