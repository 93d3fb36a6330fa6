#!/usr/bin/env bash
# The Fashion-MNIST dense model's convergence study: accuracy against the
# number of epochs and the training-set size, everything else as in
# sweeps/fashion-mnist.yaml. The 15,000-image, 8-epoch row (the one chosen)
# is that spec itself, so its dense cache is the sweep's; the others are
# sweeps/convergence/*.yaml. Choices read the validation column (5,000
# held-out training images); the test column only reports.
#
#   bash scripts/convergence.sh            # seed 0
#   SEEDS="0 1" bash scripts/convergence.sh
#
# Each `explore train` is resumable (a trained model is found, not
# retrained), so the script can be rerun after a kill.
set -euo pipefail
cd "$(dirname "$0")/.."
explore=${EXPLORE:-target/release/explore}
[ -x "$explore" ] || cargo build --release
echo "| spec | train images | epochs | seed | steps | validation (%) | test (%) | train (s) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for spec in sweeps/convergence/fm-15k-e2.yaml sweeps/convergence/fm-15k-e4.yaml \
  sweeps/fashion-mnist.yaml sweeps/convergence/fm-55k-e2.yaml; do
  images=$(awk '/train_size:/ { print $2 }' "$spec")
  epochs=$(awk '/^train:/ { t = 1 } t && /epochs:/ { print $2; exit }' "$spec")
  for seed in ${SEEDS:-0}; do
    "$explore" train "$spec" --seeds "$seed" | tail -n 1 |
      python3 -c '
import json, sys
d = json.load(sys.stdin)
spec, images, epochs, seed = sys.argv[1:]
val = "-" if d["val_accuracy"] is None else "%.2f" % (100 * d["val_accuracy"])
cells = [spec, images or "55000", epochs, seed, str(d["steps"]), val,
         "%.2f" % (100 * d["test_accuracy"]), "%.0f" % d["seconds"]]
print("| " + " | ".join(cells) + " |")
' "$(basename "$spec" .yaml)" "$images" "$epochs" "$seed"
  done
done
