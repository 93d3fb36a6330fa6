//! What a sweep shows: the per-layer rotation rows beside each point, and
//! from all finished points the baseline front with its noise profile, the
//! plots and the report.

use std::path::PathBuf;

use super::store::{self, Store};
use super::{PointResult, SweepError};
use explore_results::budgets;
use explore_results::outcomes;
use explore_results::pareto::{self, Cost};
use explore_results::plot;
use explore_results::points::{self, PointRecord};
use explore_results::report;
use explore_results::seed_noise::NoiseProfile;
use explore_spec::Strategy;
use explore_spec::spec::ReportSpec;

/// Per-layer rotations (dense and pruned) beside each point's checkpoint,
/// for the per-layer chart.
pub(super) fn write_layer_costs(store: &Store, r: &PointResult) -> Result<(), SweepError> {
    let rows: Vec<(String, u64, u64)> = r
        .dense_cost
        .layers
        .iter()
        .zip(&r.cost.layers)
        .map(|(d, p)| {
            (
                d.layer.clone(),
                d.cost.rotations() as u64,
                p.cost.rotations() as u64,
            )
        })
        .collect();
    let dir = store.point_dir(&r.record.key());
    store::write_json(&dir.join(store::LAYERS), &rows)
}

/// front.csv, the plots and report.md from all finished points. A sweep
/// of several recovery budgets gets its recovery curve, and its front and
/// cost plots from the largest budget (each point beside the twin trained
/// as long).
pub fn write_outputs(
    store: &Store,
    spec_yaml: &str,
    all: &[PointRecord],
    report_spec: &ReportSpec,
) -> Result<(), SweepError> {
    let margin = report_spec.margin;
    let dir = store.dir();
    let mut plots = Vec::new();
    let largest = budgets::budgets(all)
        .last()
        .map(|&b| budgets::at_budget(all, &[], b).0);
    if largest.is_some() {
        let png = PathBuf::from("recovery.png");
        plot::recovery_curve(
            &budgets::curve(all),
            &dir.join(&png),
            &dir.join("recovery.svg"),
        )?;
        plots.push((
            "Validation accuracy against recovery budget".to_string(),
            png,
        ));
    }
    let points = largest.as_deref().unwrap_or(all);
    let front = pareto::baseline_rows(points, Cost::Rotations, false);
    points::write(&store.front_csv(), &front)?;
    // The training noise a check against this front needs, when the sweep
    // has the seeds to measure it.
    if let Some(profile) = NoiseProfile::measure(points) {
        profile.write(&NoiseProfile::beside(&store.front_csv()))?;
    }
    for (cost, stem, title) in [
        (
            Cost::Rotations,
            "accuracy-vs-rotations",
            "Accuracy vs rotations",
        ),
        (
            Cost::Latency,
            "accuracy-vs-latency",
            "Accuracy vs measured encrypted latency",
        ),
    ] {
        let png = PathBuf::from(format!("{stem}.png"));
        plot::accuracy_vs_cost(
            points,
            cost,
            title,
            &dir.join(&png),
            &dir.join(format!("{stem}.svg")),
        )?;
        plots.push((title.to_string(), png));
    }
    // The per-layer chart shows the cheapest diagonal point on the front (or
    // the most accurate diagonal point when none is on it).
    let diagonal = || points.iter().filter(|p| p.strategy == Strategy::Diagonal);
    let best = diagonal()
        .filter(|p| front.contains(p))
        .min_by_key(|p| p.rotations)
        .or_else(|| diagonal().max_by(|a, b| a.accuracy.total_cmp(&b.accuracy)));
    if let Some(best) = best {
        let layers_path = store.point_dir(&best.key()).join(store::LAYERS);
        let rows: Vec<(String, u64, u64)> = store::read_json(&layers_path)?;
        let png = PathBuf::from("layer-rotations.png");
        plot::layer_rotations(
            &rows,
            &format!(
                "Rotations per layer: dense vs diagonal at target {}",
                best.target
            ),
            &dir.join(&png),
            &dir.join("layer-rotations.svg"),
        )?;
        plots.push(("Rotations per layer, best diagonal point".into(), png));
    }
    let outcomes = outcomes::of_table(&store.points_csv(), points)?;
    if let Some(plot) = inference_time_plot(points, &outcomes, margin, dir)? {
        plots.push(plot);
    }
    let all_outcomes = outcomes::of_table(&store.points_csv(), all)?;
    report::write(
        dir,
        &report::Inputs {
            spec_yaml,
            points: all,
            outcomes: &all_outcomes,
            plots: &plots,
            margin,
            hv_reference: report_spec.hv_reference,
        },
    )?;
    Ok(())
}

/// Where an inference's time goes for the dense model against the
/// headline point, when both ran the end-to-end chain.
fn inference_time_plot(
    points: &[PointRecord],
    outcomes: &[Option<explore_results::outcomes::Outcomes>],
    margin: f64,
    dir: &std::path::Path,
) -> Result<Option<(String, PathBuf)>, SweepError> {
    use explore_spec::Link;
    let summaries = pareto::summarize(points);
    let table_of = explore_results::paired::Table::new(points, outcomes);
    let chosen = [
        pareto::dense(&summaries),
        report::headline(&summaries, &table_of, margin),
    ];
    let rows: Vec<plot::InferenceSplit> = chosen
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let e = report::EndToEnd::of(points, s)?;
            Some(plot::InferenceSplit {
                label: s.label(),
                server_ms: e.server_ms,
                client_ms: e.client_ms,
                gc_ms: e.gc_ms,
                link_ms: e.link_ms(&Link::LAN),
            })
        })
        .collect();
    if rows.len() < 2 {
        return Ok(None);
    }
    let png = PathBuf::from("inference-time.png");
    plot::inference_time(
        &rows,
        "Where one private inference's time goes: dense vs the headline point",
        &format!("communication, {} (computed)", Link::LAN.name),
        &dir.join(&png),
        &dir.join("inference-time.svg"),
    )?;
    Ok(Some((
        "Time per private inference, dense vs headline point".into(),
        png,
    )))
}
