#!/usr/bin/env bash
# The recipe ablation of reports/fashion-mnist/README.md: each spec of
# sweeps/ablation/ (today's recipe, then one change added per row) prunes
# the Fashion-MNIST dense model with diagonal groups to 0.8 and 0.9 and
# tests on all 10,000 test images. Every row starts from the same dense
# model: trained once (by `explore train sweeps/fashion-mnist.yaml`, whose
# data, model and training sections the ablation specs share) and copied
# into each row's output directory, where its settings hash finds it.
#
#   bash scripts/ablation.sh            # writes results/ablation/<row>/
#
# It prints one table: per row and target, the float and integer
# accuracies, the rotations and the training seconds of the point.
set -euo pipefail
cd "$(dirname "$0")/.."
explore=${EXPLORE:-target/release/explore}
[ -x "$explore" ] || cargo build --release
"$explore" train sweeps/fashion-mnist.yaml >/dev/null
dense=$(ls -d results/fashion-mnist/dense-*/ | head -n 1)
for spec in sweeps/ablation/*.yaml; do
  row=$(basename "$spec" .yaml)
  out=results/ablation/$row
  mkdir -p "$out"
  [ -d "$out/$(basename "$dense")" ] || cp -r "$dense" "$out/"
  "$explore" sweep "$spec" --output "$out" >&2
done
echo "| row | target | accuracy, float (%) | accuracy, integer (%) | rotations | dense rotations | train (s) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for spec in sweeps/ablation/*.yaml; do
  row=$(basename "$spec" .yaml)
  awk -F, -v row="$row" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["strategy"] == "diagonal" {
      printf "| %s | %s | %.2f | %.2f | %s | %s | %.0f |\n", row, $col["target"],
        100 * $col["accuracy"], 100 * $col["accuracy_quantized"], $col["rotations"],
        $col["rotations_dense"], $col["train_seconds"]
    }' "results/ablation/$row/points.csv"
done
