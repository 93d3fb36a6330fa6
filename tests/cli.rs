//! The `explore` binary end to end on a tiny sweep over the committed
//! Fashion-MNIST subset: every point verified under encryption, counts that
//! agree with `explore count` on the saved checkpoint, resuming that
//! recomputes nothing finished, per-image outcomes and the noise profile of
//! three seeds, the regression check, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn explore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_explore"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("explore runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_spec(dir: &Path) -> PathBuf {
    write_spec_seeds(dir, "[0]")
}

fn write_spec_seeds(dir: &Path, seeds: &str) -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset");
    let spec = format!(
        "name: e2e
output: {out}
data: {{dataset: fashion-mnist, path: {data}, train_size: 300, validation: 100, test_size: 100, download: false}}
model: {{arch: resnet20, width: 0.25}}
train: {{epochs: 1, batch_size: 32, lr: 0.05}}
prune:
  strategies: [diagonal, unstructured]
  targets: [0.6]
  seeds: {seeds}
  regularization: {{lambda: 1.0e-3, train: {{epochs: 1, batch_size: 32, lr: 0.02}}}}
  finetune: {{epochs: 1, batch_size: 32, lr: 0.02}}
he: {{images: 1}}
threads: 2
",
        out = dir.join("out").display(),
        data = data.display()
    );
    let path = dir.join("e2e.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

/// Column `name` of every row of a CSV file.
fn column(path: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(i).unwrap().to_string())
        .collect()
}

/// The row of `points` (a CSV file) with this strategy and seed, under the
/// `best` schedule, as (header, cells).
fn row(path: &Path, strategy: &str, seed: &str) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let cells = lines
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>())
        .find(|c| {
            c[at("strategy")] == strategy && c[at("seed")] == seed && c[at("schedule")] == "best"
        })
        .unwrap_or_else(|| panic!("no {strategy} seed {seed} in {}", path.display()));
    (header, cells)
}

fn cell(path: &Path, strategy: &str, seed: &str, column: &str) -> String {
    let (header, cells) = row(path, strategy, seed);
    cells[header.iter().position(|h| h == column).unwrap()].clone()
}

#[test]
fn sweep_counts_resumes_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec_seeds(tmp.path(), "[0, 1, 2]");
    let spec = spec.to_str().unwrap();
    let out = tmp.path().join("out");

    let run = explore(&["sweep", spec]);
    assert!(run.status.success(), "{}", text(&run));
    let points = out.join("points.csv");
    // Per seed: the dense model under the spec's schedule, under Gazelle's
    // (the paper's reference) and under coefficient encoding (the baseline
    // without rotations); the two strategies; and the budget-matched dense
    // twin of the target.
    let mut strategies = column(&points, "strategy");
    strategies.sort();
    let mut expected: Vec<String> = [
        "dense",
        "dense",
        "dense",
        "dense-matched",
        "diagonal",
        "unstructured",
    ]
    .iter()
    .flat_map(|s| std::iter::repeat_n(s.to_string(), 3))
    .collect();
    expected.sort();
    assert_eq!(strategies, expected);
    assert!(column(&points, "he_verified").iter().all(|v| v == "true"));
    assert!(column(&points, "val_images").iter().all(|v| v == "100"));
    // The coefficient rows: verified on ciphertexts and end to end, with no
    // rotation and no Galois key; the report names the cheapest dense model.
    let schedules = column(&points, "schedule");
    let coefficients: Vec<usize> = (0..schedules.len())
        .filter(|&i| schedules[i] == "coefficients")
        .collect();
    assert_eq!(coefficients.len(), 3);
    for c in ["rotations", "galois_keys", "galois_key_bytes"] {
        let values = column(&points, c);
        assert!(
            coefficients.iter().all(|&i| values[i] == "0"),
            "{c}: {values:?}"
        );
    }
    let moduli = column(&points, "ciphertext_moduli");
    assert!(
        coefficients.iter().all(|&i| !moduli[i].contains('P')),
        "{moduli:?}"
    );
    let images = column(&points, "infer_images");
    assert!(coefficients.iter().all(|&i| images[i] != "0"), "{images:?}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("Cheapest dense model among the schedules run")
            && report.contains("vs coefficients"),
        "{report}"
    );
    for f in [
        "front.csv",
        "noise.json",
        "report.md",
        "accuracy-vs-rotations.png",
        "accuracy-vs-latency.svg",
        "layer-rotations.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // Equal budgets: the twin took the diagonal point's optimizer steps
    // (dense, the regularization phase, fine-tuning), dense fewer.
    for seed in ["0", "1", "2"] {
        let steps = |s: &str| {
            cell(&points, s, seed, "train_steps")
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(steps("diagonal"), steps("dense-matched"));
        assert_eq!(steps("unstructured"), steps("dense-matched"));
        assert!(steps("dense") < steps("diagonal"));
    }
    // Per-image outcomes beside each point agree with its row.
    let outcomes: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("points/diagonal-0.6-s1/outcomes.json")).unwrap(),
    )
    .unwrap();
    let correct = outcomes["test"]["correct"].as_f64().unwrap();
    let acc: f64 = cell(&points, "diagonal", "1", "accuracy_quantized")
        .parse()
        .unwrap();
    assert!((correct / 100.0 - acc).abs() < 1e-9, "{correct} vs {acc}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Speedup at iso-accuracy") && !report.contains("within noise"));

    // The rotations recorded for the diagonal point are what `explore count`
    // finds in its saved checkpoint.
    let point = out.join("points/diagonal-0.6-s0");
    let count = explore(&[
        "count",
        "--model",
        "resnet20",
        "--dataset",
        "fashion-mnist",
        "--width",
        "0.25",
        "--checkpoint",
        point.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(count.status.success(), "{}", text(&count));
    let csv = String::from_utf8(count.stdout).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let rot = header.iter().position(|h| *h == "rotations").unwrap();
    let total = csv.lines().find(|l| l.starts_with("total,")).unwrap();
    let counted = total.split(',').nth(rot).unwrap().to_string();
    assert_eq!(counted, cell(&points, "diagonal", "0", "rotations"));
    assert!(
        counted.parse::<u64>().unwrap()
            < cell(&points, "diagonal", "0", "rotations_dense")
                .parse()
                .unwrap()
    );

    // A kill after points trained but before their rows landed: the rerun
    // measures them again but does not retrain them, and nothing else reruns.
    let trained = point.join("trained.json");
    let trained_at = std::fs::metadata(&trained).unwrap().modified().unwrap();
    let rows = std::fs::read_to_string(&points).unwrap();
    let kept: Vec<&str> = rows.lines().filter(|l| !l.contains(",diagonal,")).collect();
    std::fs::write(&points, kept.join("\n") + "\n").unwrap();
    let rerun = explore(&["sweep", spec, "--resume"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_eq!(
        std::fs::metadata(&trained).unwrap().modified().unwrap(),
        trained_at
    );
    assert_eq!(column(&points, "strategy").len(), 18);
    let unchanged = explore(&["sweep", spec]);
    assert!(unchanged.status.success());
    assert_eq!(column(&points, "strategy").len(), 18);

    // A schedule added to a finished point keeps the outcomes its rows
    // report. As if seed 0's dense model had been measured on another CPU
    // (one test image the other way, in its file and its rows), and the
    // coefficient schedule were new: the resume measures that schedule but
    // reports the point's outcomes, and leaves the file as it was.
    let dense_outcomes = out.join("points/dense-0-s0/outcomes.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dense_outcomes).unwrap()).unwrap();
    let bits = file["test"]["bits"].as_str().unwrap().to_string();
    let first = u8::from_str_radix(&bits[..2], 16).unwrap();
    let (flipped, delta) = (first ^ 1, if first & 1 == 1 { -1 } else { 1 });
    file["test"]["bits"] = format!("{flipped:02x}{}", &bits[2..]).into();
    let correct = file["test"]["correct"].as_i64().unwrap() + delta;
    file["test"]["correct"] = correct.into();
    let moved = correct as f64 / file["test"]["images"].as_f64().unwrap();
    let doctored_file = serde_json::to_string_pretty(&file).unwrap();
    std::fs::write(&dense_outcomes, &doctored_file).unwrap();
    let rows = std::fs::read_to_string(&points).unwrap();
    let header: Vec<&str> = rows.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let kept: Vec<String> = rows
        .lines()
        .filter_map(|l| {
            let mut c: Vec<String> = l.split(',').map(String::from).collect();
            if c[at("strategy")] != "dense" || c[at("seed")] != "0" {
                return Some(l.to_string());
            }
            c[at("accuracy_quantized")] = moved.to_string();
            // The float accuracy too, as if trained.json had been rewritten.
            c[at("accuracy")] = "0.123".into();
            (c[at("schedule")] != "coefficients").then(|| c.join(","))
        })
        .collect();
    std::fs::write(&points, kept.join("\n") + "\n").unwrap();
    let added = explore(&["sweep", spec, "--resume"]);
    assert!(added.status.success(), "{}", text(&added));
    assert_eq!(column(&points, "strategy").len(), 18);
    assert_eq!(
        std::fs::read_to_string(&dense_outcomes).unwrap(),
        doctored_file
    );
    let schedules = column(&points, "schedule");
    let (seeds, strategies) = (column(&points, "seed"), column(&points, "strategy"));
    let accuracies = column(&points, "accuracy_quantized");
    let coefficient_row = (0..schedules.len())
        .find(|&i| schedules[i] == "coefficients" && seeds[i] == "0" && strategies[i] == "dense")
        .unwrap();
    let float = column(&points, "accuracy")[coefficient_row].parse::<f64>();
    assert_eq!(float, Ok(0.123));
    assert_eq!(
        accuracies[coefficient_row].parse::<f64>().unwrap(),
        moved,
        "{}",
        text(&added)
    );

    // The front passes against itself, paired on the same test images and
    // calibrated on the three seeds' noise profile beside it.
    let front = out.join("front.csv");
    let check = |points: &Path, baseline: &Path, extra: &[&str]| {
        let mut args = vec![
            "check",
            points.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        explore(&args)
    };
    let ok = check(&points, &front, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains("paired on the same test images"),
        "{}",
        text(&ok)
    );
    // `compare` pairs two sweeps point by point, seed by seed, from their
    // outcome files: the sweep against itself is one model per point, on
    // all three seeds; a table without those files, or a margin given as
    // a fraction, is bad input.
    let same = explore(&[
        "compare",
        points.to_str().unwrap(),
        points.to_str().unwrap(),
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let diagonal = text(&same)
        .lines()
        .find(|l| l.starts_with("| diagonal 0.6"))
        .map(String::from)
        .unwrap_or_else(|| panic!("{}", text(&same)));
    assert!(
        diagonal.contains("| 3 ") && diagonal.matches("identical on every image").count() == 2,
        "{diagonal}"
    );
    let alone = tmp.path().join("front-alone.csv");
    std::fs::copy(&front, &alone).unwrap();
    let unpaired = explore(&["compare", points.to_str().unwrap(), alone.to_str().unwrap()]);
    assert_eq!(unpaired.status.code(), Some(2), "{}", text(&unpaired));
    assert!(
        text(&unpaired).contains("front-alone.csv") && text(&unpaired).contains("outcomes.json"),
        "{}",
        text(&unpaired)
    );
    let fraction = explore(&[
        "compare",
        points.to_str().unwrap(),
        points.to_str().unwrap(),
        "--margin",
        "0.005",
    ]);
    assert_eq!(fraction.status.code(), Some(2), "{}", text(&fraction));
    assert!(text(&fraction).contains("--margin"), "{}", text(&fraction));
    // It fails against a clearly better baseline (no outcomes, no image-set
    // fingerprint and no profile beside it: unpaired, and the new run's own
    // three seeds give the noise).
    let better = tmp.path().join("better.csv");
    let front_text = std::fs::read_to_string(&front).unwrap();
    let mut lines = front_text.lines();
    let header = lines.next().unwrap();
    let acc = header
        .split(',')
        .position(|h| h == "accuracy_quantized")
        .unwrap();
    let rot = header.split(',').position(|h| h == "rotations").unwrap();
    let set = header.split(',').position(|h| h == "test_set").unwrap();
    let improved: Vec<String> = lines
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(String::from).collect();
            f[acc] = "0.99".into();
            f.remove(set);
            f[rot] = (f[rot].parse::<u64>().unwrap() / 2).to_string();
            f.join(",")
        })
        .collect();
    let mut header: Vec<&str> = header.split(',').collect();
    header.remove(set);
    let header = header.join(",");
    std::fs::write(&better, format!("{header}\n{}\n", improved.join("\n"))).unwrap();
    let bad = check(&points, &better, &[]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("unpaired"), "{}", text(&bad));
    assert!(
        text(&bad).contains("diagonal") || text(&bad).contains("dense"),
        "{}",
        text(&bad)
    );
    // One seed and no profile: no statistical verdict, but the fixed rule.
    let one = tmp.path().join("one.csv");
    let rows = std::fs::read_to_string(&points).unwrap();
    let seed0: Vec<&str> = rows
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.split(',').nth(7) == Some("0"))
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&one, seed0.join("\n") + "\n").unwrap();
    let o = check(&one, &better, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no noise profile") && text(&o).contains("--tolerance"),
        "{}",
        text(&o)
    );
    let o = check(&one, &better, &["--tolerance", "0.01"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Outcomes that disagree with their table are refused, naming the file.
    let (h, c) = row(&points, "diagonal", "0");
    let at = h.iter().position(|x| x == "accuracy_quantized").unwrap();
    let mut doctored = c.clone();
    doctored[at] = format!("{:.3}", c[at].parse::<f64>().unwrap() * 0.5);
    std::fs::write(&points, rows.replacen(&c.join(","), &doctored.join(","), 1)).unwrap();
    let o = check(&points, &front, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("diagonal-0.6-s0/outcomes.json"),
        "{}",
        text(&o)
    );
    std::fs::write(&points, &rows).unwrap();

    // One point through `explore prune`: reuses the trained point, ends in JSON.
    let prune = explore(&["prune", spec, "--strategy", "diagonal", "--target", "0.6"]);
    assert!(prune.status.success(), "{}", text(&prune));
    let stdout = String::from_utf8(prune.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["rotations"].to_string(), counted);
    assert_eq!(json["strategy"], "diagonal");
    assert_eq!(json["val_images"], 100);

    // Private inference end to end on a point: every image's encrypted
    // logits equal the integer model's; with dense keys the client is asked
    // for the dense network's rotations, with live keys for fewer or as many.
    let infer = |extra: &[&str]| {
        let mut args = vec!["infer", spec];
        args.extend_from_slice(extra);
        explore(&args)
    };
    let last_json = |o: &Output| -> serde_json::Value {
        let stdout = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };
    let dense = infer(&["--point", "diagonal/0.6/0", "--images", "3"]);
    assert!(dense.status.success(), "{}", text(&dense));
    let d = last_json(&dense);
    assert_eq!(
        (d["images"].clone(), d["matches"].clone()),
        (3.into(), 3.into())
    );
    assert_eq!(d["keys_mode"], "dense");
    assert_eq!(d["keys"], d["keys_dense"]);
    // Dense keys default to constant time: the server does the dense work.
    assert_eq!(d["constant_time"], true);
    assert!(d["bytes_up"].as_f64().unwrap() > 0.0 && d["rounds"] == 20);
    assert!(d["reply_primes"].as_u64().unwrap() < 4, "{d}");
    let live = infer(&[
        "--point",
        "diagonal/0.6/0",
        "--images",
        "2",
        "--keys",
        "live",
        "--flooding",
        "0",
    ]);
    assert!(live.status.success(), "{}", text(&live));
    let l = last_json(&live);
    assert_eq!(l["keys"], l["keys_live"]);
    assert_eq!(l["constant_time"], false);
    assert!(l["keys_live"].as_u64() <= l["keys_dense"].as_u64());
    // Bad input exits 2 naming the flag or file and the fix.
    for (args, wanted) in [
        (vec!["--point", "hybrid/0.6/0"], "diagonal/0.6/0"),
        (
            vec!["--point", "diagonal/0.6/0", "--images", "0"],
            "--images",
        ),
        (
            vec!["--point", "diagonal/0.6/0", "--images", "101"],
            "give 1 to 100",
        ),
        (
            vec!["--point", "diagonal/0.6/0", "--flooding", "120"],
            "he.poly_degree",
        ),
        (vec!["--point", "diagonal"], "STRATEGY/TARGET/SEED"),
        (
            vec![
                "--point",
                "diagonal/0.6/0",
                "--keys",
                "live",
                "--constant-time",
                "on",
            ],
            "--constant-time",
        ),
    ] {
        let o = infer(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(wanted), "{args:?}: {}", text(&o));
    }
    // A checkpoint of another network, and a damaged one.
    let folded_path = out.join("points/diagonal-0.6-s0/folded.json");
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&folded_path).unwrap()).unwrap();
    other["spec"]["fc"]["out_features"] = 100.into();
    let other_path = tmp.path().join("other-folded.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let o = infer(&["--checkpoint", other_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("other-folded.json"), "{}", text(&o));
    let bytes = std::fs::read(&folded_path).unwrap();
    std::fs::write(&folded_path, &bytes[..bytes.len() / 2]).unwrap();
    let o = infer(&["--point", "diagonal/0.6/0", "--images", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("folded.json") && text(&o).contains("delete"),
        "{}",
        text(&o)
    );
}

/// The deterministic columns of a points table, row by row (timings and
/// train seconds vary from run to run).
fn deterministic(path: &Path) -> Vec<Vec<String>> {
    let keep = [
        "schedule",
        "strategy",
        "target",
        "seed",
        "accuracy",
        "accuracy_quantized",
        "weight_sparsity",
        "rotations",
        "rotations_dense",
        "pmults",
        "adds",
        "galois_keys",
        "galois_key_bytes",
    ];
    let columns: Vec<Vec<String>> = keep.iter().map(|c| column(path, c)).collect();
    (0..columns[0].len())
        .map(|r| columns.iter().map(|c| c[r].clone()).collect())
        .collect()
}

#[test]
fn shards_run_concurrently_and_merge_into_the_single_process_result() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let spec = spec.to_str().unwrap();
    let single = tmp.path().join("single");
    let run = explore(&["sweep", spec, "--output", single.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));

    // The shared stage, then three shards at once into one directory.
    let sharded = tmp.path().join("sharded");
    let out = sharded.to_str().unwrap();
    let shared = explore(&["sweep", spec, "--output", out, "--stage", "shared"]);
    assert!(shared.status.success(), "{}", text(&shared));
    let children: Vec<_> = (1..=3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_explore"))
                .args(["sweep", spec, "--output", out, "--shard", &format!("{i}/3")])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    for i in 1..=3 {
        assert!(sharded.join(format!("points-{i}-of-3.csv")).is_file());
    }
    // A shard whose last point was lost (killed before its row landed)
    // reruns only that point.
    let table = sharded.join("points-3-of-3.csv");
    let rows = std::fs::read_to_string(&table).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    std::fs::write(&table, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let rerun = explore(&["sweep", spec, "--output", out, "--shard", "3/3"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_eq!(
        std::fs::read_to_string(&table).unwrap().lines().count(),
        lines.len()
    );

    let merged = explore(&["merge", out, "--output", out]);
    assert!(merged.status.success(), "{}", text(&merged));
    assert_eq!(
        deterministic(&sharded.join("points.csv")),
        deterministic(&single.join("points.csv"))
    );
    for f in [
        "front.csv",
        "report.md",
        "accuracy-vs-rotations.png",
        "layer-rotations.png",
    ] {
        assert!(sharded.join(f).is_file(), "{f} missing");
    }

    // A partial merge says what is missing; another spec's shard is refused.
    let partial = tmp.path().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    for f in ["spec.lock.json", "spec.yaml", "points-1-of-3.csv"] {
        std::fs::copy(sharded.join(f), partial.join(f)).unwrap();
    }
    let o = explore(&[
        "merge",
        partial.to_str().unwrap(),
        "--output",
        tmp.path().join("m").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("missing 2 point(s)") && text(&o).contains("diagonal 0.6 seed 0"),
        "{}",
        text(&o)
    );
    let lock = partial.join("spec.lock.json");
    let changed = std::fs::read_to_string(&lock)
        .unwrap()
        .replace("\"width\": 0.25", "\"width\": 0.5");
    std::fs::write(&lock, changed).unwrap();
    let o = explore(&[
        "merge",
        out,
        partial.to_str().unwrap(),
        "--output",
        tmp.path().join("m2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("model.width"), "{}", text(&o));
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let text_of = std::fs::read_to_string(&spec).unwrap();

    std::fs::write(&spec, format!("{text_of}learning_rate: 3\n")).unwrap();
    let o = explore(&["sweep", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("learning_rate") && text(&o).contains("line"),
        "{}",
        text(&o)
    );

    for (from, to, words) in [
        ("validation: 100", "validation: 5000", "data.validation"),
        (
            "he: {images: 1}",
            "he: {images: 1}\nreport: {margin: -1}",
            "report.margin",
        ),
    ] {
        std::fs::write(&spec, text_of.replace(from, to)).unwrap();
        let o = explore(&["sweep", spec.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(words), "{}", text(&o));
    }

    std::fs::write(&spec, text_of.replace("targets: [0.6]", "targets: [1.0]")).unwrap();
    let o = explore(&["sweep", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("prune.targets"), "{}", text(&o));

    let o = explore(&[
        "prune",
        spec.to_str().unwrap(),
        "--strategy",
        "magnitude",
        "--target",
        "0.5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("magnitude"), "{}", text(&o));

    // The overrides go through the spec's own checks: a strategy that does
    // not exist is named, and a seed listed twice too.
    for (flag, value, words) in [
        ("--strategies", "diagonal,hybird", "hybird"),
        ("--seeds", "0,1,0", "seed 0 twice"),
    ] {
        let o = explore(&["sweep", spec.to_str().unwrap(), flag, value]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(words), "{}", text(&o));
    }

    let o = explore(&[
        "count",
        "--model",
        "resnet20",
        "--dataset",
        "cifar10",
        "--poly-degree",
        "5000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("5000"), "{}", text(&o));

    std::fs::write(&spec, &text_of).unwrap();
    for (args, words) in [
        (
            vec!["sweep", spec.to_str().unwrap(), "--shard", "3/2"],
            "3/2",
        ),
        (
            vec!["sweep", spec.to_str().unwrap(), "--shard", "0/0"],
            "0/0",
        ),
        (
            vec!["merge", tmp.path().to_str().unwrap(), "--output", "x"],
            "no sweep",
        ),
    ] {
        let o = explore(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).contains(words), "{}", text(&o));
    }
    if !cfg!(feature = "wgpu") {
        let o = explore(&["train", spec.to_str().unwrap(), "--device", "wgpu"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("--features wgpu"), "{}", text(&o));
    }

    let o = explore(&["sweep", tmp.path().join("missing.yaml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("missing.yaml"), "{}", text(&o));

    std::fs::write(&spec, text_of.replace("model: {", "model: {{")).unwrap();
    let o = explore(&["train", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("e2e.yaml"), "{}", text(&o));
}

#[test]
fn a_truncated_data_file_exits_2_naming_it_and_its_size() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let subset = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset");
    let data = tmp.path().join("fashion-mnist");
    std::fs::create_dir(&data).unwrap();
    for name in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(subset.join(name), data.join(name)).unwrap();
    }
    let mut images = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(subset.join("train-images-idx3-ubyte.gz")).unwrap(),
    )
    .read_to_end(&mut images)
    .unwrap();
    let full = images.len();
    std::fs::write(data.join("train-images-idx3-ubyte"), &images[..full / 3]).unwrap();
    let spec = write_spec(tmp.path());
    let text_of = std::fs::read_to_string(&spec).unwrap();
    let subset_path = subset.display().to_string();
    std::fs::write(
        &spec,
        text_of.replace(&subset_path, &data.display().to_string()),
    )
    .unwrap();

    let o = explore(&["train", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let message = text(&o);
    assert!(message.contains("train-images-idx3-ubyte"), "{message}");
    assert!(message.contains(&full.to_string()), "{message}");
}

/// A sweep of two recovery budgets: each pruned point and its twin once
/// per budget, in directories of their own, the twin's fine-tuning steps
/// equal to its point's, the three accuracies recorded, the recovery curve
/// drawn and tabled, and a resumed run that trains nothing again. Under
/// `independent` the twins of one budget are one model, trained and
/// measured once: the second target's is the first's, its training time to
/// the nanosecond, its measured encrypted time and per-image outcomes too.
#[test]
fn several_budgets_are_points_of_their_own_with_a_recovery_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-subset");
    let out = tmp.path().join("out");
    let spec = tmp.path().join("budgets.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: budgets
output: {out}
data: {{dataset: fashion-mnist, path: {data}, train_size: 300, validation: 100, test_size: 100, download: false}}
model: {{arch: resnet20, width: 0.25}}
train: {{epochs: 1, batch_size: 32, lr: 0.05}}
prune:
  strategies: [diagonal]
  targets: [0.4, 0.6]
  schedule: independent
  finetune: {{epochs: [1, 2], batch_size: 32, lr: 0.05, warmup: 0.1, bn_recalibration: 3}}
  gradual: {{ramp: 0.5, updates: 4}}
he: {{images: 1, infer_images: 0}}
threads: 2
",
            out = out.display(),
            data = data.display()
        ),
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let run = explore(&["sweep", spec]);
    assert!(run.status.success(), "{}", text(&run));
    let points = out.join("points.csv");
    let (strategies, targets, budgets, steps) = (
        column(&points, "strategy"),
        column(&points, "target"),
        column(&points, "budget"),
        column(&points, "recovery_steps"),
    );
    let (seconds, accuracy, measured) = (
        column(&points, "train_seconds"),
        column(&points, "accuracy"),
        column(&points, "latency_measured_ms"),
    );
    // 300 images in batches of 32: 10 steps an epoch.
    let at_target = |strategy: &str, target: &str, budget: &str| {
        (0..strategies.len())
            .find(|&i| strategies[i] == strategy && targets[i] == target && budgets[i] == budget)
            .unwrap_or_else(|| panic!("no {strategy} {target} at budget {budget}"))
    };
    let at = |strategy: &str, budget: &str| at_target(strategy, "0.6", budget);
    for budget in ["1", "2"] {
        let (point, twin) = (at("diagonal", budget), at("dense-matched", budget));
        let want = (10 * budget.parse::<u64>().unwrap()).to_string();
        assert_eq!((&steps[point], &steps[twin]), (&want, &want));
        let dir = out.join(format!("points/diagonal-0.6-e{budget}-s0"));
        assert!(dir.join("outcomes.json").is_file(), "{}", dir.display());
        let first = at_target("dense-matched", "0.4", budget);
        let secs = |i: usize| seconds[i].parse::<f64>().unwrap();
        assert!((secs(twin) - secs(first)).abs() < 1e-9, "{seconds:?}");
        assert_eq!(accuracy[twin], accuracy[first]);
        assert_eq!(measured[twin], measured[first]);
        let outcomes = |target: &str| {
            let dir = out.join(format!("points/dense-matched-{target}-e{budget}-s0"));
            std::fs::read(dir.join("outcomes.json")).unwrap()
        };
        assert_eq!(outcomes("0.6"), outcomes("0.4"));
    }
    for name in [
        "pruned_accuracy",
        "pruned_val_accuracy",
        "recovered_accuracy",
        "recovered_val_accuracy",
    ] {
        let values = column(&points, name);
        let diagonal = at("diagonal", "2");
        let v: f64 = values[diagonal].parse().unwrap();
        assert!((0.0..=1.0).contains(&v), "{name} {v}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Recovery: validation accuracy against budget"));
    assert!(report.contains("## Recovery budget: 2 epochs"));
    assert!(out.join("recovery.png").is_file() && out.join("recovery.svg").is_file());
    // Resuming finds every point finished.
    let before = std::fs::read_to_string(&points).unwrap();
    let again = explore(&["sweep", spec]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&points).unwrap(), before);
}

/// Every committed spec parses and passes the spec's checks.
#[test]
fn every_committed_spec_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    let mut specs = Vec::new();
    let dirs = ["", "ablation", "convergence", "lasso"].map(|d| root.join(d));
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                specs.push(path);
            }
        }
    }
    assert!(specs.len() >= 14, "{specs:?}");
    for path in specs {
        if let Err(e) = explore_spec::Spec::load(&path) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// The CIFAR path end to end on a tiny CIFAR-10 set in the official binary
/// layout, written from the 20 real test images of the fixture (each batch
/// file holds the official 10,000 records, cycling through them): loading,
/// the validation split, training, pruning, the encrypted run, private
/// inference and the report.
#[test]
fn the_cifar_path_runs_end_to_end_on_real_fixture_images() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/data/tests/fixtures/cifar10-test-first20.bin"),
    )
    .unwrap();
    let records: Vec<&[u8]> = fixture.chunks(3073).collect();
    assert_eq!(records.len(), 20);
    let batch: Vec<u8> = (0..10_000).flat_map(|i| records[i % 20].to_vec()).collect();
    let dir = tmp.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for name in (1..=5)
        .map(|i| format!("data_batch_{i}.bin"))
        .chain(["test_batch.bin".to_string()])
    {
        std::fs::write(dir.join(name), &batch).unwrap();
    }
    let spec = format!(
        "name: cifar-e2e
output: {out}
data: {{dataset: cifar10, path: {data}, train_size: 60, validation: 20, test_size: 20, download: false}}
model: {{arch: resnet20, width: 0.25}}
train: {{epochs: 1, batch_size: 20, lr: 0.05}}
prune:
  strategies: [hybrid]
  targets: [0.5]
  seeds: [0]
  regularization: {{method: proximal, lambda: 0.3, weighting: he_cost, train: {{epochs: 1, batch_size: 20, lr: 0.02}}}}
  finetune: {{epochs: 1, batch_size: 20, lr: 0.02}}
  gradual: {{ramp: 0.5, updates: 2}}
  distill: {{weight: 0.5, temperature: 4}}
he: {{images: 1, infer_images: 1}}
threads: 2
",
        out = tmp.path().join("out").display(),
        data = tmp.path().join("cifar10").display()
    );
    let spec_path = tmp.path().join("cifar.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let run = explore(&["sweep", spec_path.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));
    let points = tmp.path().join("out/points.csv");
    assert!(column(&points, "dataset").iter().all(|d| d == "cifar10"));
    assert!(column(&points, "he_verified").iter().all(|v| v == "true"));
    assert!(column(&points, "infer_images").iter().all(|v| v == "1"));
    assert!(column(&points, "rounds").iter().all(|v| v == "20"));
    assert!(column(&points, "strategy").contains(&"hybrid".to_string()));
    let report = std::fs::read_to_string(tmp.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("## End-to-end private inference"),
        "{report}"
    );
}

/// An anchor file of `benches/seal_primitives.py --json`'s format, with
/// made-up prices.
fn seal_anchor(dir: &Path) -> std::path::PathBuf {
    let anchor = dir.join("seal.json");
    std::fs::write(
        &anchor,
        r#"{"setting": "SEAL 4, test prices", "rot_ms": 2.0, "pmul_ms": 0.15, "add_ms": 0.05}"#,
    )
    .unwrap();
    anchor
}

/// `he-bench --anchor` prices the layers at SEAL's sequential costs and sets
/// the measured time against them on one thread and on the pool's threads,
/// both measured in the same run; and each layer's measured noise budget
/// sits beside (and never below) the worst-case bound's.
#[test]
fn he_bench_sets_the_seal_anchor_against_one_thread_and_the_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let anchor = seal_anchor(tmp.path());
    let run = Command::new(env!("CARGO_BIN_EXE_explore"))
        .args(["he-bench", "--model", "resnet20", "--dataset", "cifar10"])
        .args(["--width", "0.25", "--layers", "fc,0", "--repeat", "1"])
        .args(["--format", "csv", "--anchor", anchor.to_str().unwrap()])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let all = text(&run);
    assert!(run.status.success(), "{all}");
    assert!(all.contains("hoisting on, measured in this run"), "{all}");
    assert!(all.contains("on 1 thread is "), "{all}");
    assert!(all.contains("on 2 threads is "), "{all}");
    let csv = String::from_utf8_lossy(&run.stdout);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (measured, bound) = (at("noise_budget_bits"), at("bound_budget_bits"));
    let layers: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[0] != "total")
        .collect();
    assert_eq!(layers.len(), 2, "{csv}");
    for r in layers {
        let (m, b): (f64, f64) = (r[measured].parse().unwrap(), r[bound].parse().unwrap());
        assert!(m >= b.floor(), "{}: {m} measured, {b} bound", r[0]);
    }
}

/// `count --schedule coefficients` lays out every layer in coefficients: no
/// rotation and no key anywhere, and the total row sums the layers'
/// products and additions (its key cell is the network's distinct keys).
#[test]
fn count_under_coefficients_has_no_rotations_and_sums_its_layers() {
    let o = explore(&[
        "count",
        "--model",
        "resnet20",
        "--dataset",
        "cifar10",
        "--schedule",
        "coefficients",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let (total, layers) = rows.split_last().unwrap();
    assert_eq!(total[0], "total");
    let sum = |c: &str| -> usize {
        layers
            .iter()
            .map(|r| r[at(c)].parse::<usize>().unwrap())
            .sum()
    };
    for c in ["pmults", "adds"] {
        assert_eq!(total[at(c)].parse::<usize>().unwrap(), sum(c), "{c}: {csv}");
    }
    assert!(sum("adds") > 0, "{csv}");
    for c in ["rotations", "keys"] {
        assert_eq!(total[at(c)], "0", "{c}: {csv}");
    }
    assert!(
        layers
            .iter()
            .all(|r| r[at("schedule")].starts_with("coefficients ")),
        "{csv}"
    );
}

/// `he-bench --schedule coefficients` runs the layers under Cheetah's
/// coefficient encoding: every layer verified, no rotation modelled or
/// executed, the executed products equal to the modelled ones, the measured
/// noise budget at or above the bound's, and the ciphertexts' weight and
/// the anchor stated.
#[test]
fn he_bench_runs_the_coefficient_encoding_baseline_without_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let anchor = seal_anchor(tmp.path());
    let run = Command::new(env!("CARGO_BIN_EXE_explore"))
        .args(["he-bench", "--model", "resnet20", "--dataset", "cifar10"])
        .args(["--width", "0.25", "--layers", "0,7,fc", "--repeat", "1"])
        .args(["--format", "csv", "--schedule", "coefficients"])
        .args(["--anchor", anchor.to_str().unwrap()])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let all = text(&run);
    assert!(run.status.success(), "{all}");
    assert!(
        all.contains("Galois keys: 0 distinct rotations, 0.0 MB"),
        "{all}"
    );
    assert!(all.contains("MB down"), "{all}");
    assert!(all.contains("on 1 thread is "), "{all}");
    let csv = String::from_utf8_lossy(&run.stdout);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[0] != "total")
        .collect();
    assert_eq!(rows.len(), 3, "{csv}");
    for r in rows {
        assert!(r[at("schedule")].starts_with("coefficients "), "{csv}");
        assert_eq!(
            (r[at("rotations")], r[at("executed_rotations")]),
            ("0", "0")
        );
        assert_eq!(r[at("pmults")], r[at("executed_pmults")]);
        assert!(r[at("pmults")].parse::<usize>().unwrap() > 0);
        let m: f64 = r[at("noise_budget_bits")].parse().unwrap();
        let b: f64 = r[at("bound_budget_bits")].parse().unwrap();
        assert!(m >= b.floor(), "{}: {m} measured, {b} bound", r[0]);
    }
}
