#!/usr/bin/env bash
# Keeps what a sweep's output directory needs to resume in a later session,
# small enough to commit (a background job dies with its session, and
# results/ is not kept):
#   - the spec, its lock, every points table (points.csv and shard tables);
#   - each seed's dense checkpoint (dense-*/);
#   - for every finished point, what `explore merge` keeps (layers.json,
#     outcomes.json: the per-image files the paired statistics read);
#   - on a trajectory, the whole directory of each unfinished trajectory's
#     last finished point, which the next target starts from; and of any
#     point trained but not yet measured.
# The group-Lasso models (regularized/) are left out: each retrains in about
# two minutes, where a checkpoint with its folded weights is 4.5 MB.
#
#   bash scripts/save_partial.sh results/fashion-mnist reports/fashion-mnist
#   cp -r reports/fashion-mnist/. results/fashion-mnist/   # to resume
set -euo pipefail
src=${1:?usage: save_partial.sh OUTPUT_DIR DEST}
dest=${2:?usage: save_partial.sh OUTPUT_DIR DEST}
[ -f "$src/spec.lock.json" ] || { echo "$src holds no sweep (no spec.lock.json)" >&2; exit 2; }
mkdir -p "$dest/points"
cp "$src"/spec.yaml "$src"/spec.lock.json "$src"/points*.csv "$dest"/
for d in "$src"/dense-*/; do
  [ -d "$d" ] && cp -r "$d" "$dest"/
done
# Point directories are named strategy-target-sSEED (dense-0-s0, hybrid-0.9-s1),
# or strategy-target-eBUDGET-sSEED in a sweep of several recovery budgets.
# Under the independent schedule every target starts from the regularized
# model, so no point's checkpoint is ever a start.
independent=0
grep -q '"schedule": "independent"' "$src/spec.lock.json" && independent=1
declare -A last=()
for d in "$src"/points/*/; do
  name=$(basename "$d")
  if [ -f "$d/layers.json" ]; then
    mkdir -p "$dest/points/$name"
    cp "$d/layers.json" "$d/outcomes.json" "$dest/points/$name/"
    # From the right: strategy names may hold a hyphen (dense-matched).
    seed=${name##*-}
    rest=${name%-*}
    # A point with a recovery budget (-e<epochs>) is independent too.
    { [ $independent = 1 ] || [[ $rest =~ -e[0-9]+$ ]]; } && continue
    target=${rest##*-}
    strategy=${rest%-*}
    group="$strategy-$seed"
    if [ "$strategy" != dense ]; then
      best=${last[$group]:-}
      if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best" "$target" | sort -g | tail -1)" = "$target" ]; then
        last[$group]=$target
      fi
    fi
  elif [ -f "$d/trained.json" ]; then
    cp -r "$d" "$dest/points/"
  fi
done
# A trajectory that reached the highest target any reached is finished: its
# checkpoint is not needed (one stopped below it, even by an unreachable
# target, is: a resume starts the next target from it).
[ ${#last[@]} -eq 0 ] && { du -sh "$dest"; exit 0; }
top=$(printf '%s\n' "${last[@]}" | sort -g | tail -1)
for group in "${!last[@]}"; do
  [ "${last[$group]}" = "$top" ] && continue
  name="${group%-*}-${last[$group]}-${group##*-}"
  cp -r "$src/points/$name/." "$dest/points/$name/"
done
du -sh "$dest"
