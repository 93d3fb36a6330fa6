//! `explore infer SPEC (--point STRATEGY/TARGET/SEED | --checkpoint DIR)`:
//! a sweep's model run end to end as private inference on test images
//! (client and server in one process, talking only through serialized
//! messages), checked image by image against the integer model; prints
//! the cost per inference, and last one JSON line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use explore::sweep::store;
use explore_he::infer::{self, Deployment, InferReport};
use explore_quant::QuantizedNet;
use explore_spec::Strategy;
use explore_spec::{KeysMode, Link};
use explore_train::checkpoint;

#[derive(clap::Args)]
pub struct Args {
    /// Sweep spec (YAML) whose data, model and `he` settings are used.
    spec: PathBuf,
    /// A point of the sweep's output directory, e.g. hybrid/0.5/0 (the
    /// dense model: dense/0/SEED).
    #[arg(
        long,
        conflicts_with = "checkpoint",
        required_unless_present = "checkpoint"
    )]
    point: Option<String>,
    /// A checkpoint directory (or its folded.json) of the spec's network.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Test images run encrypted (the first N of the test set).
    #[arg(long, default_value_t = 100)]
    images: usize,
    /// two-party (masked replies, ReLUs as garbled circuits on shares: the
    /// model stays private) or client-aided (the client decrypts exact
    /// outputs and so learns the model); default: the spec's he.protocol.
    #[arg(long)]
    protocol: Option<explore_spec::Protocol>,
    /// What carries the messages between the client's and the server's
    /// threads: memory (an in-process channel) or loopback (a TCP socket
    /// on 127.0.0.1, whose time per inference is then measured).
    #[arg(long, default_value_t = explore_spec::Network::Memory)]
    network: explore_spec::Network,
    /// dense (the dense network's keys and packing: nothing about the
    /// pruning leaks) or live (only the keys the pruned network uses);
    /// default: the spec's he.keys.
    #[arg(long)]
    keys: Option<KeysMode>,
    /// on (the server computes every block of the dense network, so its
    /// time says nothing about the pruning) or off (only the nonzero
    /// products); default: the spec's he.constant_time.
    #[arg(long)]
    constant_time: Option<explore_spec::ConstantTime>,
    /// Statistical security (bits) of the replies' noise flooding, 0 for
    /// none; default: the spec's he.flooding.
    #[arg(long)]
    flooding: Option<u32>,
    /// The sweep's output directory (default: the spec's `output`, or
    /// results/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// `strategy/target/seed`.
fn parse_point(text: &str) -> anyhow::Result<(Strategy, f64, u64)> {
    let parts: Vec<&str> = text.split('/').collect();
    let [strategy, target, seed] = parts[..] else {
        bail!("--point {text}: give STRATEGY/TARGET/SEED, e.g. hybrid/0.5/0");
    };
    let strategy: Strategy = strategy
        .parse()
        .map_err(|e| anyhow::anyhow!("--point {text}: {e}"))?;
    let target: f64 = target
        .parse()
        .with_context(|| format!("--point {text}: the target is a number, e.g. 0.5"))?;
    let seed: u64 = seed
        .parse()
        .with_context(|| format!("--point {text}: the seed is a whole number, e.g. 0"))?;
    Ok((strategy, target, seed))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut spec = explore_spec::Spec::load(&args.spec)?;
    if let Some(bits) = args.flooding {
        spec.he.flooding = explore_he::Flooding(bits);
    }
    if let Some(keys) = args.keys {
        spec.he.keys = keys;
    }
    if let Some(c) = args.constant_time {
        spec.he.constant_time = Some(c);
    }
    if let Some(p) = args.protocol {
        spec.he.protocol = p;
    }
    if let Err(e) = spec.he.protocol.check(spec.he.requantization) {
        bail!("--protocol {}: {e}", spec.he.protocol);
    }
    if let Err(e) = spec.he.constant_time() {
        bail!(
            "--keys {} --protocol {} --constant-time: {e}",
            spec.he.keys,
            spec.he.protocol
        );
    }
    let mode = spec.he.keys;
    super::set_threads(spec.threads)?;
    let output = args.output.clone().unwrap_or_else(|| spec.output_dir());
    let point = args.point.as_deref().map(parse_point).transpose()?;
    // Nothing is created or locked before the point is known to exist.
    if point.is_some() && !output.join("spec.lock.json").is_file() {
        bail!(
            "--point: {} holds no sweep: run `explore sweep {}` first, or give --output",
            output.display(),
            args.spec.display()
        );
    }
    let ws = explore::sweep::Workspace::open(spec, Some(output.clone()))?;
    let folded_path = match point {
        Some((strategy, target, seed)) => point_dir(&ws, strategy, target, seed, &args)?,
        None => args.checkpoint.clone().expect("clap requires one"),
    };
    let folded = checkpoint::load_folded(&folded_path, &ws.net).map_err(|e| {
        let retrain = match (&e, point) {
            (checkpoint::CheckpointError::FoldedJson { .. }, Some(_)) => format!(
                ": the file is damaged; delete {} and rerun `explore sweep {}` to retrain the point",
                folded_path.display(),
                args.spec.display()
            ),
            _ => String::new(),
        };
        anyhow::anyhow!("{e}{retrain}")
    })?;
    let spec = &ws.spec;
    let qnet = QuantizedNet::new(&folded, spec.quant_config(), ws.calibration())?;
    let deployment = Deployment::new(&qnet, &spec.scheduler(), &spec.he)?;
    eprintln!(
        "{}: {} layers, keys {} ({} rotations), constant time {}, flooding {}, ciphertext primes {}",
        folded_path.display(),
        deployment.cost.layers.len(),
        mode,
        deployment.keys.rotations().len(),
        if deployment.constant_time {
            "on (the dense network's work)"
        } else {
            "off (the time follows the pruning)"
        },
        if spec.he.flooding.is_on() {
            format!("{} bits", spec.he.flooding.0)
        } else {
            "off (no circuit privacy)".into()
        },
        deployment
            .params
            .moduli_bits()
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("+"),
    );
    let progress = explore_data::progress::add(
        indicatif::ProgressBar::new(args.images as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "encrypted inferences [{bar:30}] {pos}/{len}, {elapsed} elapsed, ETA {eta}",
            )
            .expect("a valid template"),
        ),
    );
    let report = infer::run(
        &deployment,
        &ws.test_data,
        args.images,
        args.network,
        |_| progress.inc(1),
    )?;
    progress.finish_and_clear();
    print_summary(&report);
    println!("{}", serde_json::to_string(&json_line(&report))?);
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint of a sweep point, refused when the point was never
/// finished there.
fn point_dir(
    ws: &explore::sweep::Workspace,
    strategy: Strategy,
    target: f64,
    seed: u64,
    args: &Args,
) -> anyhow::Result<PathBuf> {
    // A sweep of several budgets names its points with theirs: pass such a
    // point as --checkpoint DIR.
    let dir = ws.store.point_dir(&explore_spec::PointKey {
        strategy,
        target,
        budget: None,
        seed,
        schedule: ws.spec.he.schedule,
    });
    let summary = dir.join(store::POINT_SUMMARY);
    if !summary.is_file() {
        bail!(
            "--point {}: no finished point {strategy}/{target}/{seed} in {} (points there: {}): run `explore sweep {}` first, or pick one of those",
            args.point.as_deref().unwrap_or_default(),
            ws.store.dir().display(),
            finished_points(ws.store.dir()).join(", "),
            args.spec.display()
        );
    }
    Ok(dir)
}

/// The finished points of an output directory, as `--point` takes them
/// (`strategy/target/seed`, from directory names `strategy-target-sSEED`).
fn finished_points(dir: &Path) -> Vec<String> {
    let as_point = |name: &str| -> Option<String> {
        let (rest, seed) = name.rsplit_once("-s")?;
        let (strategy, target) = rest.rsplit_once('-')?;
        Some(format!("{strategy}/{target}/{seed}"))
    };
    let mut names: Vec<String> = std::fs::read_dir(dir.join("points"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(store::POINT_SUMMARY).is_file())
        .filter_map(|e| as_point(&e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    if names.is_empty() {
        names.push("none".into());
    }
    names
}

fn print_summary(r: &InferReport) {
    let mb = |b: f64| b / 1e6;
    eprintln!(
        "{} of {} images: encrypted logits equal the integer model's; accuracy {:.1} % ({} test images, one model)",
        r.matches,
        r.images,
        100.0 * r.accuracy,
        r.images
    );
    eprintln!(
        "per inference (mean ± SD over the images): server {:.0} ± {:.0} ms, client {:.0} ± {:.0} ms; {} rounds; {:.2} MB up, {:.2} MB down (replies on {} of {} primes: {:.0} KB against {:.0} KB at the full modulus)",
        r.server_ms.mean,
        r.server_ms.sd,
        r.client_ms.mean,
        r.client_ms.sd,
        r.rounds,
        mb(r.bytes_up.mean),
        mb(r.bytes_down.mean),
        r.reply_primes,
        r.ciphertext_moduli.split('+').count(),
        (r.full_ciphertext_bytes * r.reply_primes) as f64
            / r.ciphertext_moduli.split('+').count() as f64
            / 1e3,
        r.full_ciphertext_bytes as f64 / 1e3,
    );
    eprintln!(
        "keys ({}, uploaded once): {} rotations, {:.1} MB, made in {:.0} ms; dense set {} rotations {:.1} MB, live set {} rotations {:.1} MB; server holds {:.1} MB of encoded weights",
        r.keys_mode,
        r.keys,
        mb(r.key_bytes as f64),
        r.keygen_ms,
        r.keys_dense,
        mb(r.key_bytes_dense as f64),
        r.keys_live,
        mb(r.key_bytes_live as f64),
        mb(r.server_weight_bytes as f64),
    );
    eprintln!(
        "measured: {:.0} ± {:.0} ms per inference end to end, both parties' threads on this machine over {}",
        r.wall_ms.mean,
        r.wall_ms.sd,
        match r.network {
            explore_spec::Network::Memory => "an in-process channel",
            explore_spec::Network::Loopback => "a loopback TCP socket",
        }
    );
    for (link, ms) in [(Link::LAN, r.lan_ms), (Link::WAN, r.wan_ms)] {
        eprintln!(
            "computed, not measured: {} adds {:.0} ms of communication per inference",
            link.name, ms
        );
    }
    match &r.nonlinear {
        Some(g) => eprintln!(
            "two-party steps between linear layers (garbled circuits on shares): {} ReLUs, {} AND gates; server {:.0} ± {:.0} ms, client {:.0} ± {:.0} ms; {:.1} MB offline (base OTs, garbled tables), {:.2} MB online, {} rounds",
            g.relus,
            g.and_gates,
            g.server_ms.mean,
            g.server_ms.sd,
            g.client_ms.mean,
            g.client_ms.sd,
            mb(g.offline_bytes.mean),
            mb(g.online_bytes.mean),
            g.rounds,
        ),
        None => eprintln!(
            "protocol client-aided: the client decrypts every layer's exact output, from which one inference gives it every weight of the model"
        ),
    }
}

/// The last line: the fields as scalars (means over the images).
fn json_line(r: &InferReport) -> serde_json::Value {
    serde_json::json!({
        "images": r.images,
        "matches": r.matches,
        "accuracy": r.accuracy,
        "server_ms": r.server_ms.mean,
        "server_ms_sd": r.server_ms.sd,
        "client_ms": r.client_ms.mean,
        "client_ms_sd": r.client_ms.sd,
        "bytes_up": r.bytes_up.mean,
        "bytes_down": r.bytes_down.mean,
        "rounds": r.rounds,
        "keys": r.keys,
        "key_bytes": r.key_bytes,
        "keys_mode": r.keys_mode,
        "constant_time": r.constant_time,
        "keys_dense": r.keys_dense,
        "key_bytes_dense": r.key_bytes_dense,
        "keys_live": r.keys_live,
        "key_bytes_live": r.key_bytes_live,
        "server_weight_bytes": r.server_weight_bytes,
        "rotations": r.rotations,
        "flooding_bits": r.flooding_bits,
        "ciphertext_moduli": r.ciphertext_moduli,
        "reply_primes": r.reply_primes,
        "full_ciphertext_bytes": r.full_ciphertext_bytes,
        "noise_budget_bits": r.noise_budget_bits,
        "protocol": r.protocol,
        "network": r.network,
        "wall_ms": r.wall_ms.mean,
        "wall_ms_sd": r.wall_ms.sd,
        "relus": r.nonlinear.as_ref().map(|g| g.relus),
        "and_gates": r.nonlinear.as_ref().map(|g| g.and_gates),
        "gc_server_ms": r.nonlinear.as_ref().map(|g| g.server_ms.mean),
        "gc_client_ms": r.nonlinear.as_ref().map(|g| g.client_ms.mean),
        "gc_offline_bytes": r.nonlinear.as_ref().map(|g| g.offline_bytes.mean),
        "gc_online_bytes": r.nonlinear.as_ref().map(|g| g.online_bytes.mean),
        "gc_rounds": r.nonlinear.as_ref().map(|g| g.rounds),
        "lan_ms_computed": r.lan_ms,
        "wan_ms_computed": r.wan_ms,
    })
}
