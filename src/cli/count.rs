//! `explore count`: the HE cost model's per-layer operation counts for a
//! dense model, or for the nonzero pattern of a BN-folded checkpoint, under
//! a schedule, with the packing each layer runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore_he::{self as he, HeCost, LayerCost};
use explore_he_model::arch::Compaction;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub net: super::NetworkArgs,
    /// A `folded.json` (arch::FoldedNet) or the directory holding one: its
    /// zero weights are counted as pruned.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = args.net.spec()?;
    let scheduler = args.net.scheduler()?;
    let context = || format!("counting {} on {}", args.net.model, args.net.dataset);
    let (spec, cost) = match &args.checkpoint {
        Some(path) => {
            // Counted as deployed: internal channels that carry nothing are
            // removed, as the sweep does before counting and running.
            let folded = explore_train::checkpoint::load_folded(path, &spec)?;
            let convs: Vec<Vec<f32>> = folded.convs.into_iter().map(|c| c.weight).collect();
            let compaction = Compaction::of(&spec, &convs);
            let deployed: Vec<Vec<f32>> = (0..convs.len())
                .map(|l| compaction.weights(&spec, l, &convs[l]))
                .collect();
            let spec = compaction.spec(&spec);
            let cost = he::network_cost(&spec, &deployed, &folded.fc_weight, &scheduler);
            (spec, cost.with_context(context)?)
        }
        None => {
            let cost = he::dense_network_cost(&spec, &scheduler).with_context(context)?;
            (spec, cost)
        }
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&cost)?),
        Format::Csv => print_csv(&HEADERS, &rows(&cost, scheduler.costs())),
        Format::Table => {
            print_table(&HEADERS, &rows(&cost, scheduler.costs()));
            let c = scheduler.costs();
            // The plaintext prime of 8-bit weights and activations, the
            // sweep's default.
            let t = he::plaintext::PlaintextModulus::for_layers(
                cost.poly_degree,
                None,
                8,
                8,
                &spec.layer_shapes(),
            )?;
            let moduli = he::ModulusChoice::fewest(
                cost.poly_degree,
                t.bits,
                cost.depth(),
                args.net.noise_margin,
                he::Flooding::OFF,
                scheduler.special_prime(args.net.special_prime),
            )?;
            let key_bytes = he::params::galois_key_bytes(args.net.poly_degree, &moduli)?;
            println!(
                "N = {}, schedule {}, hoisting {}: {} rotations, {} full and {} hoisted; {} distinct rotations (Galois keys, {:.1} MB at {:.2} MB each); modelled latency {:.0} ms at {} ms/full rotation, {} ms/hoisted rotation, {} ms/pmult, {} ms/add",
                cost.poly_degree,
                cost.schedule,
                scheduler.hoisting(),
                cost.total.rotations(),
                cost.total.full_rotations(),
                cost.total.rot_hoisted,
                cost.keys,
                (cost.keys * key_bytes) as f64 / 1e6,
                key_bytes as f64 / 1e6,
                cost.total.latency_ms(c),
                c.rot_ms,
                c.hoisted_rot_ms,
                c.pmul_ms,
                c.add_ms
            );
            println!(
                "ciphertext primes {} ({} bits, 8-bit weights and activations, t of {} bits): the fewest whose worst-case noise bound leaves the {}-bit margin after every layer; it leaves {:.1} bits",
                moduli.describe(),
                moduli.moduli.iter().sum::<usize>(),
                t.bits,
                args.net.noise_margin,
                moduli.budget_bits
            );
            if cost.schedule == he::Schedule::Gazelle {
                let formula: usize = spec
                    .layer_shapes()
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let role = if i < spec.convs.len() {
                            he::Role::Conv
                        } else {
                            he::Role::Fc
                        };
                        he::schedule::gazelle_formula(s, role, cost.poly_degree)
                    })
                    .sum();
                println!(
                    "Gazelle's formula counts {formula} rotations for these layers; {} of them rotate diagonals that pair no existing channels, which Gazelle's code performs on zero products and this schedule skips",
                    formula - cost.total.rotations()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

const HEADERS: [&str; 23] = [
    "layer",
    "c_in",
    "c_out",
    "h",
    "w",
    "k",
    "stride",
    "schedule",
    "baby_step",
    "period",
    "phases",
    "cn",
    "n_in",
    "n_out",
    "rot_input",
    "rot_output",
    "row_swaps",
    "rotations",
    "hoisted",
    "pmults",
    "adds",
    "keys",
    "latency_ms",
];

fn cost_cells(c: &LayerCost, costs: &he::PrimitiveCosts) -> [String; 9] {
    [
        c.rot_input.to_string(),
        c.rot_output.to_string(),
        c.row_swaps.to_string(),
        c.rotations().to_string(),
        c.rot_hoisted.to_string(),
        c.pmults.to_string(),
        c.adds.to_string(),
        c.keys.to_string(),
        format!("{:.1}", c.latency_ms(costs)),
    ]
}

fn rows(cost: &HeCost, costs: &he::PrimitiveCosts) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = cost
        .layers
        .iter()
        .map(|r| {
            let shape = [r.c_in, r.c_out, r.h, r.w, r.k, r.stride].map(|v| v.to_string());
            let packing =
                [r.baby_step, r.period, r.phases, r.cn, r.n_in, r.n_out].map(|v| v.to_string());
            std::iter::once(r.layer.clone())
                .chain(shape)
                .chain([r.schedule.clone()])
                .chain(packing)
                .chain(cost_cells(&r.cost, costs))
                .collect()
        })
        .collect();
    let mut total: Vec<String> = std::iter::once("total".to_string())
        .chain(std::iter::repeat_n(String::new(), 13))
        .chain(cost_cells(&cost.total, costs))
        .collect();
    // The total's keys are the network's distinct rotations, not a sum.
    let keys = HEADERS
        .iter()
        .position(|h| *h == "keys")
        .expect("a keys column");
    total[keys] = cost.keys.to_string();
    rows.push(total);
    rows
}

pub(super) fn print_csv(headers: &[&str], rows: &[Vec<String>]) {
    println!("{}", headers.join(","));
    for r in rows {
        println!("{}", r.join(","));
    }
}

/// Left-aligned first column, right-aligned numbers.
pub(super) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", explore_results::table::aligned(headers, rows));
}
