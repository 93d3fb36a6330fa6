#!/usr/bin/env bash
# The recipe ablation of reports/fashion-mnist/README.md: each spec of
# sweeps/ablation/ (today's recipe, then one change added per row) prunes
# the Fashion-MNIST dense model with diagonal groups to 0.8 and 0.9 and
# tests on all 10,000 test images. Every row starts from the same dense
# model: trained once (by `explore train sweeps/fashion-mnist.yaml`, whose
# data, model and training sections the ablation specs share) and copied
# into each row's output directory, where its settings hash finds it.
#
#   bash scripts/ablation.sh                # writes results/ablation/<row>/
#   bash scripts/ablation.sh sweeps/lasso   # the group-Lasso arms on hybrid
#
# It prints one table: per row, strategy and target, the integer model's
# validation accuracy (what a choice between rows reads), the float and
# integer test accuracies, the rotations, the steps and the training
# seconds of the point.
set -euo pipefail
cd "$(dirname "$0")/.."
explore=${EXPLORE:-target/release/explore}
[ -x "$explore" ] || cargo build --release
"$explore" train sweeps/fashion-mnist.yaml >/dev/null
dense=$(ls -d results/fashion-mnist/dense-*/ | head -n 1)
specs=${1:-sweeps/ablation}
for spec in "$specs"/*.yaml; do
  row=$(basename "$spec" .yaml)
  out=results/$(basename "$specs")/$row
  mkdir -p "$out"
  [ -d "$out/$(basename "$dense")" ] || cp -r "$dense" "$out/"
  "$explore" sweep "$spec" --output "$out" >&2
done
echo "| row | strategy | target | validation, integer (%) | test, float (%) | test, integer (%) | rotations | dense rotations | steps | train (s) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for spec in "$specs"/*.yaml; do
  row=$(basename "$spec" .yaml)
  awk -F, -v row="$row" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["strategy"] != "dense" && $col["schedule"] == "best" {
      printf "| %s | %s | %s | %.2f | %.2f | %.2f | %s | %s | %s | %.0f |\n", row,
        $col["strategy"], $col["target"], 100 * $col["val_accuracy"],
        100 * $col["accuracy"], 100 * $col["accuracy_quantized"], $col["rotations"],
        $col["rotations_dense"], $col["train_steps"], $col["train_seconds"]
    }' "results/$(basename "$specs")/$row/points.csv"
done
