#!/usr/bin/env bash
# The ablations of reports/fashion-mnist/README.md. Each spec of the
# directory is one row, swept into results/<directory>/<row>/ from the same
# seed-0 dense model of sweeps/fashion-mnist.yaml (trained once by
# `explore train`, copied into each row, where its settings hash finds it).
#
#   bash scripts/ablation.sh                # the recipe ablation (sweeps/ablation/)
#   bash scripts/ablation.sh sweeps/lasso   # the group-Lasso arms on hybrid
#   bash scripts/ablation.sh sweeps/lasso --seeds 0   # a part: flags go to every sweep
#
# Like scripts/long_sweep.sh it runs over sessions: each row resumes from
# reports/<directory>/<row>/ (what is in results/ already wins) and saves
# back into it after its sweep (scripts/save_partial.sh); commit
# reports/<directory>/ after each part.
#
# A row that differs from sweeps/fashion-mnist.yaml in the penalty alone
# (`lambda`, `weighting`; the strategies, seeds and timing counts do not
# shape results) also starts from the main sweep's seed-0 phases that take
# no penalty: the unpenalized regularization phase and the budget-matched
# dense twins, which a penalty cannot change. A row whose penalty is the
# main sweep's too is the main sweep's seed 0, and takes its points as well.
# Likewise a row that differs from the directory's first row (by name) in
# the penalty alone takes that row's dense points and twins of every seed
# (the group-Lasso arms: he-cost's, for none and uniform). What a row
# copies it does not retrain; everything else it trains.
#
# It prints one table: per row, strategy and target, the integer model's
# validation accuracy and its twin's (what a choice between rows reads),
# the float and integer test accuracies, the rotations, the steps and the
# training seconds of the point. Then the first row minus each later one,
# paired seed by seed on the same images (`explore compare`).
set -euo pipefail
cd "$(dirname "$0")/.."
explore=${EXPLORE:-target/release/explore}
[ -x "$explore" ] || cargo build --release
main_spec=sweeps/fashion-mnist.yaml
main=results/fashion-mnist
"$explore" train "$main_spec" >/dev/null

# adopt SRC DIR: copies the directory SRC into DIR unless DIR has it. A
# missing SRC (save_partial.sh keeps no regularized/ model, so a main sweep
# restored from it has none) is skipped: the row's sweep trains it.
adopt() {
  if [ -d "$1" ] && [ ! -d "$2/$(basename "$1")" ]; then cp -r "$1" "$2/"; fi
}

# A spec's result-shaping lines, and its penalty's.
shaping() { grep -v -E '^[[:space:]]*(#|$)|^[[:space:]]*(name|strategies|seeds|images|repeats|lambda|weighting):' "$1"; }
penalty() { grep -E '^[[:space:]]*(lambda|weighting):' "$1"; }

# share SRC OUT SEEDS PATTERN...: copies the points of the sweep in SRC
# named by the patterns (and their rows of points.csv) into OUT, unless OUT
# has them: those of seed 0 (SEEDS=0) or of every seed (SEEDS=all).
share() {
  local src=$1 out=$2 seeds=$3; shift 3
  local glob=$seeds
  [ "$seeds" = all ] && glob='*'
  mkdir -p "$out/points"
  for pattern in "$@"; do
    for dir in "$src"/points/$pattern-s$glob; do
      [ -d "$dir" ] || continue
      [ -d "$out/points/$(basename "$dir")" ] || cp -r "$dir" "$out/points/"
    done
  done
  [ -f "$src/points.csv" ] || return 0
  [ -f "$out/points.csv" ] || head -n 1 "$src/points.csv" >"$out/points.csv"
  awk -F, -v patterns="$*" -v seeds="$seeds" '
    FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    FNR == NR { have[$col["strategy"] "," $col["target"] "," $col["seed"] "," $col["schedule"]] = 1; next }
    (seeds == "all" || $col["seed"] == seeds) && !have[$col["strategy"] "," $col["target"] "," $col["seed"] "," $col["schedule"]] {
      n = split(patterns, p, " ")
      for (i = 1; i <= n; i++) {
        name = $col["strategy"] "-" $col["target"]
        if ($col["strategy"] == "dense") name = "dense-0"
        if (name ~ "^" p[i] "$" || (p[i] ~ /\*$/ && index(name, substr(p[i], 1, length(p[i]) - 1)) == 1)) { print; break }
      }
    }' "$out/points.csv" "$src/points.csv" >>"$out/points.csv"
}

specs=${1:-sweeps/ablation}
shift $(($# > 0 ? 1 : 0))
first=$(ls "$specs"/*.yaml | head -n 1)
for spec in "$specs"/*.yaml; do
  row=$(basename "$spec" .yaml)
  out=results/$(basename "$specs")/$row
  keep=reports/$(basename "$specs")/$row
  mkdir -p "$out"
  if [ -d "$keep" ]; then cp -rn "$keep/." "$out/"; fi
  for dense in "$main"/dense-*/; do
    adopt "$dense" "$out"
  done
  if diff -q <(shaping "$spec") <(shaping "$main_spec") >/dev/null; then
    mkdir -p "$out/regularized"
    adopt "$main/regularized/plain-s0" "$out/regularized"
    if diff -q <(penalty "$spec") <(penalty "$main_spec") >/dev/null; then
      echo "$row: the main sweep's seed 0 (same settings): its points are copied" >&2
      for reg in "$main"/regularized/*-s0; do
        adopt "$reg" "$out/regularized"
      done
      share "$main" "$out" 0 'dense-0' 'dense-matched-*' 'hybrid-*'
    else
      echo "$row: differs from the main sweep in the penalty alone: dense, the unpenalized phase and the twins are copied" >&2
      share "$main" "$out" 0 'dense-0' 'dense-matched-*'
    fi
  fi
  # A row that differs from the directory's first row in the penalty alone
  # takes that row's unpenalized phases, dense points and budget-matched
  # twins, every seed of them so far: a twin starts from the unpenalized
  # phase (regularized/plain-sN), so no penalty shapes any of them.
  if [ "$spec" != "$first" ] && diff -q <(shaping "$spec") <(shaping "$first") >/dev/null; then
    from=results/$(basename "$specs")/$(basename "$first" .yaml)
    echo "$row: differs from $(basename "$first" .yaml) in the penalty alone: its unpenalized phases, dense points and twins are copied" >&2
    mkdir -p "$out/regularized"
    for plain in "$from"/regularized/plain-s*; do
      adopt "$plain" "$out/regularized"
    done
    share "$from" "$out" all 'dense-0' 'dense-matched-*'
  fi
  "$explore" sweep "$spec" --output "$out" "$@" >&2
  bash scripts/save_partial.sh "$out" "$keep"
  # The dense models are the main sweep's, adopted afresh on every run.
  rm -rf "$keep"/dense-*/
done
echo "| row | strategy | target | validation, integer (%) | twin, validation (%) | test, float (%) | test, integer (%) | rotations | dense rotations | steps | train (s) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for spec in "$specs"/*.yaml; do
  row=$(basename "$spec" .yaml)
  csv=results/$(basename "$specs")/$row/points.csv
  awk -F, -v row="$row" '
    FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    FNR == NR { if ($col["strategy"] == "dense-matched") twin[$col["target"] "," $col["seed"]] = $col["val_accuracy"]; next }
    $col["strategy"] != "dense" && $col["strategy"] != "dense-matched" && $col["schedule"] == "best" {
      t = $col["target"] "," $col["seed"]
      printf "| %s | %s | %s | %.2f | %s | %.2f | %.2f | %s | %s | %s | %.0f |\n", row,
        $col["strategy"], $col["target"], 100 * $col["val_accuracy"],
        (t in twin) ? sprintf("%.2f", 100 * twin[t]) : "",
        100 * $col["accuracy"], 100 * $col["accuracy_quantized"], $col["rotations"],
        $col["rotations_dense"], $col["train_steps"], $col["train_seconds"]
    }' "$csv" "$csv"
done
for spec in "$specs"/*.yaml; do
  [ "$spec" = "$first" ] && continue
  echo
  "$explore" compare "results/$(basename "$specs")/$(basename "$first" .yaml)/points.csv" \
    "results/$(basename "$specs")/$(basename "$spec" .yaml)/points.csv"
done
