#!/usr/bin/env python3
"""Recomputes a sweep's paired differences from its per-image files alone.

An independent check of the report's "Paired differences from the dense
controls" table (crates/results/src/paired.rs, crates/stats/src/lib.rs),
written with nothing but the Python standard library: it reads
DIR/points.csv and each point's
points/<strategy>-<target>-s<seed>/outcomes.json (or
<strategy>-<target>-e<budget>-s<seed> in a sweep of several recovery
budgets, one table per budget, as the report's), and prints, for every
pruned point, its integer-model accuracy minus its budget-matched twin's and
minus the plain dense model's, paired seed by seed on the same images, in
points, in the report's own format, so that the two tables can be compared
cell by cell:

    python3 scripts/paired.py reports/quick [--margin 0.5]

The last column is the equivalence test's power against the twin
(validation / test): 2 T_df(margin / se - t(0.95, df)) - 1, floored at 0.

The statistics (the same definitions as the report's, computed
independently; the t quantile here integrates the density numerically where
the Rust code uses the incomplete beta function):
  - per seed s, the difference d_s = mean over images of (a_i - b_i);
  - the mean over seeds, d = mean(d_s);
  - its variance, images crossed with seeds, from the two-way analysis of
    variance of the differences x[s][i]: (MS_images + MS_seeds - MS_residual)
    / (n k), where MS_images = k * SS(per-image means) / (n - 1), MS_seeds =
    n * SS(per-seed means) / (k - 1) and MS_residual the interaction's
    residual mean square over (n - 1)(k - 1), unbiased (the seed part may be
    negative; only a variance that is not positive falls back to
    MS_images / (n k)); with one seed it is MS_images / n, McNemar's;
  - the degrees of freedom by Welch-Satterthwaite over those mean squares;
  - the 95 % interval d +- t(0.975, df) se; "equivalent within +-m" when the
    90 % interval lies inside (-m, m), else "worse" (or "better") when the
    95 % one excludes 0, else "inconclusive".
"""

import argparse
import csv
import json
import math
import os
import sys


def bits(correct):
    """The per-image booleans of an outcomes.json entry (LSB of each byte first)."""
    raw = bytes.fromhex(correct["bits"])
    n = correct["images"]
    out = [(raw[i // 8] >> (i % 8)) & 1 for i in range(n)]
    if sum(out) != correct["correct"]:
        sys.exit(f"an outcomes file's bits do not add up to its count {correct['correct']}")
    return out


def t_cdf(x, df):
    """Student's t distribution function by Simpson's rule on the density."""
    if math.isinf(df) or df > 1e7:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(t):
        return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))

    steps = 4000
    h = abs(x) / steps
    area = density(0) + density(abs(x))
    for i in range(1, steps):
        area += (4 if i % 2 else 2) * density(i * h)
    area *= h / 3
    return 0.5 + math.copysign(area, x)


def t_quantile(p, df):
    lo, hi = 0.0, 1e3
    for _ in range(100):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired(pairs):
    """(mean, se, df) of a - b over seeds; pairs[s] = (a, b) per-image lists."""
    k, n = len(pairs), len(pairs[0][0])
    x = [[ai - bi for ai, bi in zip(a, b)] for a, b in pairs]
    grand = sum(map(sum, x)) / (n * k)
    img = [sum(x[s][i] for s in range(k)) / k for i in range(n)]
    seed = [sum(row) / n for row in x]
    ms_img = k * sum((m - grand) ** 2 for m in img) / (n - 1)
    if k == 1:
        return grand, math.sqrt(ms_img / n), n - 1
    ms_seed = n * sum((m - grand) ** 2 for m in seed) / (k - 1)
    ss_res = sum(
        (x[s][i] - img[i] - seed[s] + grand) ** 2 for s in range(k) for i in range(n)
    )
    df_res = (n - 1) * (k - 1)
    ms_res = ss_res / df_res
    var = (ms_img + ms_seed - ms_res) / (n * k)
    if var <= 0:
        return grand, math.sqrt(ms_img / (n * k)), n - 1
    parts = [(ms_img, n - 1), (ms_seed, k - 1), (ms_res, df_res)]
    df = (ms_img + ms_seed - ms_res) ** 2 / sum(v * v / d for v, d in parts)
    return grand, math.sqrt(var), df


def verdict(mean, se, df, margin):
    q90, q95 = t_quantile(0.95, df), t_quantile(0.975, df)
    if mean - q90 * se > -margin and mean + q90 * se < margin:
        return f"equivalent within ±{100 * margin:.2f}"
    if mean + q95 * se < 0:
        return "worse"
    if mean - q95 * se > 0:
        return "better"
    return "inconclusive"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="a sweep's output directory (points.csv, points/)")
    ap.add_argument("--margin", type=float, default=0.5, help="equivalence margin in points")
    args = ap.parse_args()
    margin = args.margin / 100
    with open(os.path.join(args.dir, "points.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    pruned = [r for r in rows if not r["strategy"].startswith("dense")]
    schedule = (pruned or rows)[0]["schedule"]
    rows = [r for r in rows if r["schedule"] == schedule]

    def budget(r):
        """The recovery budget of a point of a sweep of several budgets, else
        None (a table of one budget records 0, or has no column)."""
        return int(r["budget"]) if r.get("budget") and int(r["budget"]) > 0 else None

    def outcomes(r):
        epochs = f"-e{budget(r)}" if budget(r) is not None else ""
        name = f"{r['strategy']}-{float(r['target']):g}{epochs}-s{r['seed']}"
        if r["strategy"] == "dense":
            name = f"dense-0-s{r['seed']}"
        path = os.path.join(args.dir, "points", name, "outcomes.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    by_key = {(r["strategy"], float(r["target"]), budget(r), int(r["seed"])): r for r in rows}
    files = {key: outcomes(r) for key, r in by_key.items()}

    def measured(point, seeds, control, which):
        pairs = []
        for seed in seeds:
            a = files.get((*point, seed))
            b = files.get((*control, seed))
            if a is None or b is None or a[which]["set"] != b[which]["set"]:
                continue
            pairs.append((bits(a[which]), bits(b[which])))
        return paired(pairs) if pairs else None

    def cell(m, interval):
        if m is None:
            return "n/a"
        mean, se, df = m
        text = f"{100 * mean:.2f}"
        if interval:
            q = t_quantile(0.975, df)
            text += f" [{100 * (mean - q * se):.2f}, {100 * (mean + q * se):.2f}]"
        return f"{text}, {verdict(mean, se, df, margin)}"

    def power(m):
        """TOST power for a true difference of 0: 2 T(margin/se - q) - 1."""
        if m is None:
            return "n/a"
        _, se, df = m
        if se <= 0:
            return "1.00"
        p = 2 * t_cdf(margin / se - t_quantile(0.95, df), df) - 1
        return f"{max(p, 0.0):.2f}"

    # The plain dense model, whatever budget its row records (0, or none).
    dense = next((k[:3] for k in by_key if k[0] == "dense"), ("dense", 0.0, None))
    budgets = sorted({budget(r) for r in pruned}, key=lambda b: -1 if b is None else b)
    for b in budgets:
        if b is not None:
            print(f"\nRecovery budget: {b} epochs\n")
        print("| strategy | target | seeds | validation vs twin | test vs twin (95 % CI) "
              "| validation vs dense | test vs dense (95 % CI) | power vs twin |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        points = sorted({(r["strategy"], float(r["target"])) for r in pruned if budget(r) == b})
        for strategy, target in points:
            point = (strategy, target, b)
            seeds = sorted(s for (*k, s) in by_key if tuple(k) == point)
            twin = ("dense-matched", target, b)
            m = {
                (c, w): measured(point, seeds, control, w)
                for c, control in (("twin", twin), ("dense", dense))
                for w in ("validation", "test")
            }
            cells = [
                cell(m["twin", "validation"], False),
                cell(m["twin", "test"], True),
                cell(m["dense", "validation"], False),
                cell(m["dense", "test"], True),
                f"{power(m['twin', 'validation'])} / {power(m['twin', 'test'])}",
            ]
            print(f"| {strategy} | {target:g} | {len(seeds)} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
