//! `explore he-bench`: runs layers (convs and the FC layer) on real BFV
//! ciphertexts under a schedule, checks each decryption against the integer
//! convolution and the executed operation counts against the cost model,
//! and times them beside a latency model built from measured primitive costs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use explore_he::{self as he, HeContext, HeParamsBuilder, LayerCost, LayerJob, LayerRun, Role};
use explore_quant::quantize_weights;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::count::{print_csv, print_table};

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub net: super::NetworkArgs,
    /// Layer indices (NetSpec order, 0 = stem; `fc` for the classifier),
    /// comma separated, or `all` (every conv and the FC layer).
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// Evaluations per layer; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// A `folded.json` (or its directory): its weights, quantized, replace
    /// the random ones (inputs stay random integers).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Seed of the random weights and inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Plaintext modulus bits; chosen from the accumulator bound when absent.
    #[arg(long)]
    pub plaintext_bits: Option<u32>,
    #[arg(long, default_value_t = 8)]
    pub weight_bits: u32,
    #[arg(long, default_value_t = 8)]
    pub activation_bits: u32,
    /// Native SEAL's primitive costs as `benches/seal_primitives.py --json
    /// FILE` writes them: the same layers' operations under the schedule
    /// without hoisting, every rotation a full key switch, are priced at
    /// them and set against the measured time, on the pool's threads and
    /// again on one thread (SEAL's prices are sequential).
    #[arg(long)]
    pub anchor: Option<PathBuf>,
}

/// One SEAL setting's primitive costs in milliseconds, the anchor file's
/// format (written by `benches/seal_primitives.py --json`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Anchor {
    setting: String,
    rot_ms: f64,
    pmul_ms: f64,
    add_ms: f64,
}

fn read_anchor(path: &std::path::Path) -> anyhow::Result<Anchor> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--anchor {}: cannot read it", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "--anchor {}: not the JSON of benches/seal_primitives.py --json (setting, rot_ms, pmul_ms, add_ms)",
            path.display()
        )
    })
}

/// Layer indices in `spec.layer_shapes()` order (convs, then `fc`).
fn parse_layers(text: &str, convs: usize) -> anyhow::Result<Vec<usize>> {
    if text == "all" {
        return Ok((0..=convs).collect());
    }
    text.split(',')
        .map(|s| match s.trim() {
            "fc" => Ok(convs),
            t => match t.parse::<usize>() {
                Ok(i) if i < convs => Ok(i),
                _ => bail!(
                    "--layers: `{s}` is not a conv layer index in 0..{convs} or fc: use e.g. 0,3,fc or all"
                ),
            },
        })
        .collect()
}

fn random_ints(len: usize, bits: u32, rng: &mut StdRng) -> Vec<i64> {
    let m = explore_quant::max_magnitude(bits) as i64;
    (0..len).map(|_| rng.random_range(-m..=m)).collect()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.repeat == 0 {
        bail!("--repeat 0: use at least 1");
    }
    for (flag, bits) in [
        ("--weight-bits", args.weight_bits),
        ("--activation-bits", args.activation_bits),
    ] {
        if !explore_quant::BITS.contains(&bits) {
            bail!("{flag} {bits} is outside 2..16: use 8");
        }
    }
    let anchor = args.anchor.as_deref().map(read_anchor).transpose()?;
    let spec = args.net.spec()?;
    let scheduler = args.net.scheduler()?;
    let all_shapes = spec.layer_shapes();
    let chosen = parse_layers(&args.layers, spec.convs.len())?;
    let folded = args
        .checkpoint
        .as_deref()
        .map(|p| explore_train::checkpoint::load_folded(p, &spec))
        .transpose()?;
    let shapes: Vec<_> = chosen.iter().map(|&i| all_shapes[i].clone()).collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut data = Vec::with_capacity(chosen.len());
    for (&i, shape) in chosen.iter().zip(&shapes) {
        let role = if i < spec.convs.len() {
            Role::Conv
        } else {
            Role::Fc
        };
        let weights = match (&folded, role) {
            (Some(f), Role::Conv) => {
                quantize_weights(&f.convs[i].weight, shape.c_out, args.weight_bits, true).0
            }
            (Some(f), Role::Fc) => {
                quantize_weights(&f.fc_weight, shape.c_out, args.weight_bits, true).0
            }
            (None, _) => random_ints(shape.weight_len(), args.weight_bits, &mut rng),
        };
        let input = random_ints(
            shape.c_in * shape.h * shape.w,
            args.activation_bits,
            &mut rng,
        );
        data.push((role, weights, input));
    }
    let mut layers = Vec::with_capacity(chosen.len());
    // The anchor's operations: the same schedule with every rotation full
    // (searched only when there is an anchor to price them at).
    let full_scheduler = scheduler.with_hoisting(he::Hoisting::Off);
    let mut unhoisted = LayerCost::default();
    for ((i, shape), (role, weights, input)) in chosen.iter().zip(&shapes).zip(data) {
        let (layout, model) = scheduler
            .layer(shape, role, &weights)
            .with_context(|| format!("laying out layer {i} ({})", shape.name))?;
        if anchor.is_some() {
            unhoisted = unhoisted + full_scheduler.layer(shape, role, &weights)?.1.cost;
        }
        layers.push((layout, model, weights, input));
    }
    let depth = layers
        .iter()
        .map(|(_, model, _, _)| model.depth)
        .fold(he::NoiseDepth::default(), he::NoiseDepth::max);
    let special_prime = scheduler.special_prime(args.net.special_prime);
    let params = sized_params(&args, &shapes, depth, special_prime)?;
    let moduli = params.sized.clone().expect("sized to the noise");
    eprintln!(
        "N = {}, ciphertext primes {} ({} bits: the fewest whose worst-case noise bound leaves the {}-bit margin; it leaves {:.1} bits), plaintext modulus t = {} ({} bits), schedule {}, hoisting {}, {} rayon threads",
        params.poly_degree,
        moduli.describe(),
        params.modulus_bits(),
        args.net.noise_margin,
        moduli.budget_bits,
        params.plaintext_modulus,
        params.plaintext_bits,
        scheduler.schedule(),
        scheduler.hoisting(),
        rayon::current_num_threads()
    );
    let (params_n, params_t_bits) = (params.poly_degree, params.plaintext_bits);
    let mut ctx = HeContext::new(params);
    let jobs = || {
        layers
            .iter()
            .map(|(layout, model, weights, input)| LayerJob {
                layout: layout.clone(),
                weights,
                input,
                modeled: &model.cost,
            })
    };
    let run = he::run_layers(&mut ctx, jobs(), args.repeat, |run| {
        eprintln!(
            "{}: {} B={}, {} rotations, {} pmults, {:.1} ms, verified (its input and a random full-range one), noise budget {} bits left",
            run.layer,
            run.schedule,
            run.baby_step,
            run.executed.rotations(),
            run.executed.pmults,
            run.measured_ms,
            run.noise_budget_bits
        )
    })?;
    let mut rows: Vec<Vec<String>> = run
        .layers
        .iter()
        .zip(&layers)
        .map(|(r, (_, model, _, _))| {
            let bound =
                model
                    .depth
                    .budget_bits(params_n, params_t_bits, &moduli.moduli, moduli.special);
            row(r, &model.cost, bound)
        })
        .collect();
    let mut model_total = layers
        .iter()
        .map(|(_, model, _, _)| model.cost)
        .fold(LayerCost::default(), |a, b| a + b);
    let ms_total = run.measured_ms;
    let mut keys = he::KeySet::default();
    for (_, model, _, _) in &layers {
        keys.extend(&model.key_set);
    }
    model_total.keys = keys.rotations().len();
    let key_bytes = ctx.key_bytes(&keys)?;
    rows.push(
        std::iter::once("total".to_string())
            .chain(["".into(), "".into()])
            .chain(counts(&model_total, &model_total))
            .chain([format!("{ms_total:.1}"), "".into(), "".into()])
            .collect(),
    );
    let (inputs, outputs) = layers
        .iter()
        .map(|(layout, _, _, _)| (layout.n_in(), layout.n_out()))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let prim = ctx.measure_primitives(args.repeat)?;
    let summary = format!(
        "every layer verified: its decryption equals the integer convolution on its input and on a random full-range input, and the executed counts equal the model's\n\
         ciphertext primes {}: smallest noise budget left {} bits measured, {:.1} bits by the worst-case bound\n\
         Galois keys: {} distinct rotations, {:.1} MB; {}\n\
         primitives at N = {} (min of {}): rotation {:.3} ms, hoisted rotation {:.3} ms, ct x pt {:.3} ms, ct + ct {:.4} ms\n\
         hoisting {}: latency model {} full rot x {:.3} + {} hoisted rot x {:.3} + {} pmult x {:.3} + {} add x {:.4} = {:.1} ms (sequential) vs measured {:.1} ms ({} threads)",
        moduli.describe(),
        run.noise_budget_bits(),
        moduli.budget_bits,
        model_total.keys,
        key_bytes as f64 / 1e6,
        traffic(&mut ctx, inputs, outputs)?,
        args.net.poly_degree,
        args.repeat,
        prim.rot_ms,
        prim.hoisted_rot_ms,
        prim.pmul_ms,
        prim.add_ms,
        scheduler.hoisting(),
        model_total.full_rotations(),
        prim.rot_ms,
        model_total.rot_hoisted,
        prim.hoisted_rot_ms,
        model_total.pmults,
        prim.pmul_ms,
        model_total.adds,
        prim.add_ms,
        model_total.latency_ms(&prim),
        ms_total,
        rayon::current_num_threads()
    );
    let summary = match anchor {
        None => summary,
        Some(a) => {
            let priced = unhoisted.rotations() as f64 * a.rot_ms
                + unhoisted.pmults as f64 * a.pmul_ms
                + unhoisted.adds as f64 * a.add_ms;
            let ratios = against_anchor(priced, ms_total, || {
                Ok(he::run_layers(&mut ctx, jobs(), args.repeat, |_| {})?.measured_ms)
            })?;
            format!(
                "{summary}\nanchor, native SEAL ({}): these layers without hoisting, {} rotations (every one a full key switch), {} pmults and {} adds at rotation {:.3} ms, ct x pt {:.3} ms, ct + ct {:.4} ms = {:.1} ms sequential; explore, hoisting {}, measured in this run: {}",
                a.setting,
                unhoisted.rotations(),
                unhoisted.pmults,
                unhoisted.adds,
                a.rot_ms,
                a.pmul_ms,
                a.add_ms,
                priced,
                scheduler.hoisting(),
                ratios
            )
        }
    };
    print_rows(args.format, &rows, &summary);
    Ok(ExitCode::SUCCESS)
}

/// Parameters for these layers with the fewest primes whose noise bound
/// leaves the margin at `depth`, with a special prime if `special_prime`.
fn sized_params(
    args: &Args,
    shapes: &[explore_he_model::arch::ConvShape],
    depth: he::NoiseDepth,
    special_prime: bool,
) -> anyhow::Result<he::HeParams> {
    Ok(HeParamsBuilder::new(args.net.poly_degree, shapes)
        .plaintext_bits(args.plaintext_bits)
        .quantization(args.weight_bits, args.activation_bits)
        .fewest_primes(depth, args.net.noise_margin, he::Flooding::OFF)
        .special_prime(special_prime)
        .build()?)
}

/// The measured time against SEAL's sequential price: on the pool's
/// threads, and (`one_thread` reruns the same layers) on one thread, like
/// for like.
fn against_anchor(
    priced: f64,
    pool_ms: f64,
    one_thread: impl FnOnce() -> anyhow::Result<f64> + Send,
) -> anyhow::Result<String> {
    let mut measured = vec![(rayon::current_num_threads(), pool_ms)];
    if rayon::current_num_threads() > 1 {
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        measured.insert(0, (1, one.install(one_thread)?));
    }
    Ok(measured
        .iter()
        .map(|(threads, ms)| {
            let s = if *threads == 1 { "" } else { "s" };
            format!("{ms:.1} ms on {threads} thread{s} is {:.3}x", ms / priced)
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// What the layers' ciphertexts weigh: `inputs` sent up and `outputs`
/// returned, whole and at the top level.
fn traffic(ctx: &mut HeContext, inputs: usize, outputs: usize) -> anyhow::Result<String> {
    let (up, down) = ctx.ciphertext_bytes()?;
    Ok(format!(
        "ciphertexts: {inputs} inputs of {up} B ({:.2} MB up), {outputs} outputs of {down} B ({:.2} MB down), whole and at the top level",
        (inputs * up) as f64 / 1e6,
        (outputs * down) as f64 / 1e6
    ))
}

/// The table (or CSV) of layer rows, then the summary.
fn print_rows(format: Format, rows: &[Vec<String>], summary: &str) {
    match format {
        Format::Csv => {
            print_csv(&HEADERS, rows);
            eprintln!("{summary}");
        }
        Format::Table => {
            print_table(&HEADERS, rows);
            println!("{summary}");
        }
    }
}

const HEADERS: [&str; 14] = [
    "layer",
    "schedule",
    "baby_step",
    "rotations",
    "hoisted",
    "pmults",
    "adds",
    "executed_rotations",
    "executed_hoisted",
    "executed_pmults",
    "executed_adds",
    "measured_ms",
    "noise_budget_bits",
    "bound_budget_bits",
];

fn counts(model: &LayerCost, executed: &LayerCost) -> [String; 8] {
    [
        model.rotations(),
        model.rot_hoisted,
        model.pmults,
        model.adds,
        executed.rotations(),
        executed.rot_hoisted,
        executed.pmults,
        executed.adds,
    ]
    .map(|v| v.to_string())
}

/// A layer's row: its counts, modelled and executed, its time, and the noise
/// budget measured beside the worst-case bound's for that layer alone.
fn row(run: &LayerRun, model: &LayerCost, bound_bits: f64) -> Vec<String> {
    std::iter::once(run.layer.clone())
        .chain([run.schedule.clone(), run.baby_step.to_string()])
        .chain(counts(model, &run.executed))
        .chain([
            format!("{:.1}", run.measured_ms),
            run.noise_budget_bits.to_string(),
            format!("{bound_bits:.1}"),
        ])
        .collect()
}
