//! `explore count`: the HE cost model's per-layer operation counts for a
//! dense model, or for the nonzero pattern of a BN-folded checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore::he::PrimitiveCosts;
use explore::he::{self, HeCost, LayerCost};

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
    let cost = match &args.checkpoint {
        Some(path) => {
            let folded = explore::checkpoint::load_folded(path, &spec)?;
            let convs: Vec<Vec<f32>> = folded.convs.into_iter().map(|c| c.weight).collect();
            he::network_cost(&spec, &convs, &folded.fc_weight, args.net.poly_degree)
        }
        None => he::dense_network_cost(&spec, args.net.poly_degree),
    }
    .with_context(|| format!("counting {} on {}", args.net.model, args.net.dataset))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&cost)?),
        Format::Csv => print_csv(&HEADERS, &rows(&cost)),
        Format::Table => {
            print_table(&HEADERS, &rows(&cost));
            let defaults = PrimitiveCosts::default();
            println!(
                "N = {}: {} distinct rotation keys; modelled latency {:.0} ms at {} ms/rotation, {} ms/pmult, {} ms/add",
                cost.poly_degree,
                cost.keys,
                cost.total.latency_ms(&defaults),
                defaults.rot_ms,
                defaults.pmul_ms,
                defaults.add_ms
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

const HEADERS: [&str; 15] = [
    "layer",
    "c_in",
    "c_out",
    "h",
    "w",
    "k",
    "stride",
    "cn",
    "n_in",
    "n_out",
    "rot_positional",
    "rot_diagonal",
    "rotations",
    "pmults",
    "adds",
];

fn cost_cells(c: &LayerCost) -> [String; 5] {
    [
        c.rot_positional,
        c.rot_diagonal,
        c.rotations(),
        c.pmults,
        c.adds,
    ]
    .map(|v| v.to_string())
}

fn rows(cost: &HeCost) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = cost
        .layers
        .iter()
        .map(|r| {
            let shape = [
                r.c_in, r.c_out, r.h, r.w, r.k, r.stride, r.cn, r.n_in, r.n_out,
            ];
            std::iter::once(r.layer.clone())
                .chain(shape.map(|v| v.to_string()))
                .chain(cost_cells(&r.cost))
                .collect()
        })
        .collect();
    rows.push(
        std::iter::once("total".to_string())
            .chain(std::iter::repeat_n(String::new(), 9))
            .chain(cost_cells(&cost.total))
            .collect(),
    );
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
    let widths: Vec<usize> = (0..headers.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([headers[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (s, &w))| {
                if c == 0 {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        println!("{}", parts.join("  "));
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
