//! `explore he-bench`: runs conv layers on real BFV ciphertexts, checks each
//! decryption against the integer convolution and the executed operation
//! counts against the cost model, and times them beside a latency model
//! built from measured primitive costs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use explore::he::{self, HeContext, HeParams, LayerCost, LayerPlan};
use explore::quant::quantize_weights;
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
    /// Conv layer indices (NetSpec order, 0 = stem), comma separated, or `all`.
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
}

fn parse_layers(text: &str, count: usize) -> anyhow::Result<Vec<usize>> {
    if text == "all" {
        return Ok((0..count).collect());
    }
    text.split(',')
        .map(|s| match s.trim().parse::<usize>() {
            Ok(i) if i < count => Ok(i),
            _ => bail!(
                "--layers: `{s}` is not a conv layer index in 0..{count}: use e.g. 0,3 or all"
            ),
        })
        .collect()
}

fn random_ints(len: usize, bits: u32, rng: &mut StdRng) -> Vec<i64> {
    let m = (1i64 << (bits - 1)) - 1;
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
        if !(2..=16).contains(&bits) {
            bail!("{flag} {bits} is outside 2..16: use 8");
        }
    }
    let spec = args.net.spec()?;
    let chosen = parse_layers(&args.layers, spec.convs.len())?;
    let folded = args
        .checkpoint
        .as_deref()
        .map(|p| explore::checkpoint::load_folded(p, &spec))
        .transpose()?;
    let shapes: Vec<_> = chosen.iter().map(|&i| spec.convs[i].clone()).collect();
    let params = HeParams::new(
        args.net.poly_degree,
        args.plaintext_bits,
        args.weight_bits,
        args.activation_bits,
        &shapes,
    )?;
    eprintln!(
        "N = {}, ciphertext modulus {} bits, plaintext modulus t = {} ({} bits), {} rayon threads",
        params.poly_degree,
        params.modulus_bits(),
        params.plaintext_modulus,
        params.plaintext_bits,
        rayon::current_num_threads()
    );
    let mut ctx = HeContext::new(params);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut rows = Vec::new();
    let (mut model_total, mut executed_total, mut ms_total) =
        (LayerCost::default(), LayerCost::default(), 0.0);
    let mut all_verified = true;
    for (&i, shape) in chosen.iter().zip(&shapes) {
        let weights = match &folded {
            Some(f) => quantize_weights(&f.convs[i].weight, args.weight_bits).0,
            None => random_ints(shape.weight_len(), args.weight_bits, &mut rng),
        };
        let input = random_ints(
            shape.c_in * shape.h * shape.w,
            args.activation_bits,
            &mut rng,
        );
        let plan = LayerPlan::new(&mut ctx, shape, &weights)
            .with_context(|| format!("preparing layer {i} ({})", shape.name))?;
        let run = plan.run(&mut ctx, &input, args.repeat)?;
        let model = he::conv_cost(plan.layout(), &weights).cost;
        if run.executed != model {
            bail!(
                "layer {}: executed {:?} but the cost model counts {:?}: the executor and the cost model disagree",
                shape.name,
                run.executed,
                model
            );
        }
        eprintln!(
            "{}: {} rotations, {} pmults, {:.1} ms, verified, noise budget {} bits left",
            shape.name,
            run.executed.rotations(),
            run.executed.pmults,
            run.measured_ms,
            run.noise_budget_bits
        );
        rows.push(row(
            &shape.name,
            &model,
            &run.executed,
            run.measured_ms,
            run.verified,
        ));
        model_total = model_total + model;
        executed_total = executed_total + run.executed;
        ms_total += run.measured_ms;
        all_verified &= run.verified;
    }
    rows.push(row(
        "total",
        &model_total,
        &executed_total,
        ms_total,
        all_verified,
    ));
    let headers = [
        "layer",
        "rotations",
        "pmults",
        "adds",
        "executed_rotations",
        "executed_pmults",
        "executed_adds",
        "measured_ms",
        "verified",
    ];
    let prim = ctx.measure_primitives(args.repeat)?;
    let summary = format!(
        "primitives at N = {} (min of {}): rotation {:.3} ms, ct x pt {:.3} ms, ct + ct {:.4} ms\n\
         latency model {} rot x {:.3} + {} pmult x {:.3} + {} add x {:.4} = {:.1} ms (sequential) vs measured {:.1} ms ({} threads)",
        args.net.poly_degree,
        args.repeat,
        prim.rot_ms,
        prim.pmul_ms,
        prim.add_ms,
        model_total.rotations(),
        prim.rot_ms,
        model_total.pmults,
        prim.pmul_ms,
        model_total.adds,
        prim.add_ms,
        model_total.latency_ms(&prim),
        ms_total,
        rayon::current_num_threads()
    );
    match args.format {
        Format::Csv => {
            print_csv(&headers, &rows);
            eprintln!("{summary}");
        }
        Format::Table => {
            print_table(&headers, &rows);
            println!("{summary}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(
    name: &str,
    model: &LayerCost,
    executed: &LayerCost,
    ms: f64,
    verified: bool,
) -> Vec<String> {
    let counts = [
        model.rotations(),
        model.pmults,
        model.adds,
        executed.rotations(),
        executed.pmults,
        executed.adds,
    ];
    std::iter::once(name.to_string())
        .chain(counts.map(|v| v.to_string()))
        .chain([format!("{ms:.1}"), verified.to_string()])
        .collect()
}
