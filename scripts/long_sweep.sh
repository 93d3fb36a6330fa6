#!/usr/bin/env bash
# A sweep too long for one session (the budget study of issue 28, the
# Fashion-MNIST evidence), run over sessions: a session's background job
# dies with it, so each run resumes from what the last one committed and
# leaves behind what the next one needs.
#
#   bash scripts/long_sweep.sh sweeps/fashion-mnist-budget.yaml               # every point
#   bash scripts/long_sweep.sh sweeps/fashion-mnist-budget.yaml --shard 1/4   # one shard
#   EXPLORE=/tmp/ttch/release/explore bash scripts/long_sweep.sh sweeps/fashion-mnist.yaml \
#       --seeds 0,1 --strategies diagonal,hybrid                              # some seeds
#
# Every flag after the spec goes to both `explore sweep` calls. It copies
# the committed partial results, reports/<name>/, into the sweep's output
# directory, results/<name>/ (what is there already wins); trains the stage
# every shard shares (the dense and group-Lasso models of the seeds and
# strategies asked for); runs the points; saves what a resume needs back
# into reports/<name>/ (scripts/save_partial.sh: tables, dense checkpoints,
# per-point outcomes); and merges the tables into points.csv, plots and
# report.md there, listing the points still missing. Commit reports/<name>/
# after each run.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:?usage: long_sweep.sh SPEC [explore sweep flags]}
shift
explore=${EXPLORE:-target/release/explore}
[ -x "$explore" ] || cargo build --release
name=$(sed -n 's/^name: //p' "$spec")
out=results/$name
keep=reports/$name
mkdir -p "$out"
if [ -d "$keep" ]; then cp -rn "$keep/." "$out/"; fi
"$explore" sweep "$spec" --stage shared "$@"
"$explore" sweep "$spec" "$@"
bash scripts/save_partial.sh "$out" "$keep"
"$explore" merge "$out" --output "$out"
cp "$out"/report.md "$out"/points.csv "$keep"/
for f in "$out"/*.png "$out"/*.svg; do
  if [ -f "$f" ]; then cp "$f" "$keep"/; fi
done
