//! The sweep's `report.md`: the spec, the Pareto fronts under both costs, the
//! plots, speedups over the dense model at iso-accuracy and the hypervolume
//! per strategy, then every point. [`render`] builds the markdown (pure);
//! [`write`] puts it in the output directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::budgets;
use crate::outcomes::Outcomes;
use crate::paired;
use crate::pareto::{self, Cost, Summary};
use crate::points::PointRecord;
use explore_he_model::schedule::Schedule;
use explore_spec::Strategy;
use explore_stats as stats;

use crate::table::markdown;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What a report is made of: the spec's text, the points, the per-image
/// outcomes of each point (aligned with `points`; shorter or `None` where
/// missing), the plots as (title, path relative to the report), the
/// equivalence margin and the accuracy hypervolume is measured above
/// (`None`: the dense model's less [`explore_spec::DEFAULT_HV_DROP`]).
pub struct Inputs<'a> {
    pub spec_yaml: &'a str,
    pub points: &'a [PointRecord],
    pub outcomes: &'a [Option<Outcomes>],
    pub plots: &'a [(String, PathBuf)],
    pub margin: f64,
    pub hv_reference: Option<f64>,
}

/// Writes `dir/report.md` and returns its path.
pub fn write(dir: &Path, inputs: &Inputs) -> Result<PathBuf, ReportError> {
    let path = dir.join("report.md");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, render(inputs)))
        .map_err(|error| ReportError::Write {
            path: path.clone(),
            error,
        })?;
    Ok(path)
}

/// The report as markdown. A sweep of several recovery budgets reads as
/// its recovery curve, then one set of comparisons per budget (each point
/// against the twin trained to the same budget), with the fronts of the
/// largest budget.
pub fn render(inputs: &Inputs) -> String {
    let Inputs {
        spec_yaml,
        points,
        outcomes,
        plots,
        margin,
        hv_reference,
    } = *inputs;
    let mut md = String::new();
    let mut names: Vec<&str> = points.iter().map(|p| p.sweep.as_str()).collect();
    names.dedup();
    let budgets = budgets::budgets(points);
    let _ = writeln!(md, "# Sweep report: {}\n", names.join(", "));
    let _ = writeln!(
        md,
        "{} points ({} strategy/target pairs{}). Accuracies are test accuracies in percent \
         of the integer model the encrypted network computes (the float model's are in \
         the last table), each with its standard error: the binomial error of the test \
         set ({}), plus the seed-to-seed error of the mean where a pair has several \
         seeds ({}). Costs are rotations per inference and the measured latency of the \
         encrypted layers (ms).\n",
        points.len(),
        pareto::summarize(points).len(),
        match budgets.as_slice() {
            [] => String::new(),
            b => format!(
                ", each at {} recovery budgets: {} fine-tuning epochs",
                b.len(),
                b.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            ),
        },
        test_sets(points),
        seed_list(points)
    );
    md += "## Spec\n\n```yaml\n";
    md += spec_yaml.trim_end();
    md += "\n```\n\n";
    if !plots.is_empty() {
        md += "## Plots\n\n";
        for (title, path) in plots {
            let _ = writeln!(md, "![{title}]({})\n", path.display());
        }
    }
    let Some(&largest) = budgets.last() else {
        md += &comparisons(points, outcomes, margin, hv_reference);
        md += &fronts(&pareto::summarize(points));
        md += "## All points\n\n";
        md += &points_table(points);
        return md;
    };
    md += &recovery_curve(points);
    for &b in &budgets {
        let (at, outcomes_at) = budgets::at_budget(points, outcomes, b);
        let _ = writeln!(md, "## Recovery budget: {b} epochs\n");
        // One level down, under the budget's heading.
        let section = comparisons(&at, &outcomes_at, margin, hv_reference);
        for line in section.lines() {
            if line.starts_with("## ") {
                md.push('#');
            }
            md += line;
            md.push('\n');
        }
    }
    let (at, _) = budgets::at_budget(points, outcomes, largest);
    let _ = writeln!(md, "Fronts below: the largest budget, {largest} epochs.\n");
    md += &fronts(&pareto::summarize(&at));
    md += "## All points\n\n";
    md += &points_table(points);
    md
}

/// Speedups, paired differences, hypervolume and inference of one table
/// of points at one training budget.
fn comparisons(
    points: &[PointRecord],
    outcomes: &[Option<Outcomes>],
    margin: f64,
    hv_reference: Option<f64>,
) -> String {
    let summaries = pareto::summarize(points);
    let table_of = paired::Table::new(points, outcomes);
    let mut md = speedups(&summaries, &pareto::references(points), &table_of, margin);
    md += &paired_table(&summaries, &table_of, margin);
    md += &hypervolumes(&summaries, hv_reference);
    md += &inference_table(points, &summaries);
    md
}

/// The Pareto fronts under each cost, overall and per strategy.
fn fronts(summaries: &[Summary]) -> String {
    let mut md = String::from("## Pareto fronts\n\n");
    for cost in Cost::ALL {
        let _ = writeln!(md, "### By {}\n", cost.label());
        md += "Overall:\n\n";
        md += &front_table(&pareto::front(summaries, cost));
        md += "\nPer strategy:\n\n";
        let per: Vec<&Summary> = pareto::fronts_by_strategy(summaries, cost)
            .into_values()
            .flatten()
            .collect();
        md += &front_table(&per);
        md += "\n";
    }
    md
}

/// Accuracy against recovery budget, per strategy and target, the twin at
/// the same budgets: where validation accuracy stops rising is the budget
/// worth paying for.
fn recovery_curve(points: &[PointRecord]) -> String {
    let mut md = String::from("## Recovery: validation accuracy against budget\n\n");
    md += "Per strategy, target and recovery budget (fine-tuning epochs after pruning), mean \
           over seeds, in percent on the **validation** images: the float model right after \
           pruning (before any recovery), after recovery (before QAT), and the integer model \
           after QAT; then the integer model's paired difference from the twin trained to the \
           same budget, in points. `dense-matched` is the twin itself.\n\n";
    let curve = budgets::curve(points);
    let twin = |c: &budgets::CurvePoint| {
        curve.iter().find(|t| {
            t.strategy == Strategy::DenseMatched
                && t.target.to_bits() == c.target.to_bits()
                && t.budget == c.budget
        })
    };
    let rows: Vec<Vec<String>> = curve
        .iter()
        .map(|c| {
            vec![
                c.strategy.name().to_string(),
                format!("{}", c.target),
                c.budget.to_string(),
                format!("{:.0}", c.recovery_steps),
                c.seeds.to_string(),
                pct(c.pruned_validation),
                pct(c.recovered_validation),
                pct(c.validation),
                twin(c)
                    .filter(|_| c.strategy != Strategy::DenseMatched)
                    .map_or("-".into(), |t| {
                        format!("{:+.2}", 100.0 * (c.validation - t.validation))
                    }),
            ]
        })
        .collect();
    md += &markdown(
        &[
            "strategy",
            "target",
            "epochs",
            "steps",
            "seeds",
            "pruned (float)",
            "recovered (float)",
            "integer",
            "vs twin",
        ],
        &rows,
    );
    md + "\n"
}

/// "seeds 0, 1, 2".
fn seed_list(points: &[PointRecord]) -> String {
    let mut seeds: Vec<u64> = points.iter().map(|p| p.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    format!(
        "seed{} {}",
        if seeds.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

/// "1,000 test images", or the sizes found when rows differ.
fn test_sets(points: &[PointRecord]) -> String {
    let mut sizes: Vec<u64> = points.iter().map(|p| p.test_images).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let list: Vec<String> = sizes.iter().map(u64::to_string).collect();
    format!("{} test images", list.join(" or "))
}

/// Speedups at iso-accuracy, per strategy and overall, under each cost: the
/// cheapest point equivalent to its budget-matched dense twin on the
/// validation images ([`paired::cheapest_equivalent`]), then its paired
/// test differences from the twin and from the plain dense model, each with
/// its 95 % interval and verdict, and the training steps behind both.
fn speedups(
    points: &[Summary],
    references: &[Summary],
    table_of: &paired::Table,
    margin: f64,
) -> String {
    let mut md = String::from("## Speedup at iso-accuracy\n\n");
    let Some(dense) = pareto::dense(points) else {
        md += "No dense point (strategy `dense`), so no speedups.\n\n";
        return md;
    };
    let _ = writeln!(
        md,
        "For each strategy, the cheapest point whose integer-model accuracy on the **validation** \
         images is equivalent to its budget-matched dense twin's (the dense model trained on \
         through the same phases, so with the same optimizer steps) within ±{m} points: a paired \
         two-one-sided test at 5 %, the 90 % interval of the difference inside ±{m}. The test \
         images never enter the choice. The chosen point is then reported on the **test** images: \
         its paired difference from the twin and from the plain dense model, mean over seeds with \
         its 95 % interval (images and seed-to-seed parts), and the verdict at the same margin: \
         `equivalent within ±{m}`, `worse`, `better` or `inconclusive`.\n",
        m = format!("{:.2}", 100.0 * margin)
    );
    let schedule = dense.schedule;
    let _ = write!(
        md,
        "`speedup` is against the dense model under the same schedule ({schedule}: {} rotations",
        Cost::Rotations.format(dense.rotations.mean)
    );
    if dense.latency.mean.is_finite() {
        let _ = write!(md, ", {} ms", Cost::Latency.format(dense.latency.mean));
    }
    md += ")";
    for r in references {
        let (what, why) = match r.schedule {
            Schedule::Gazelle => ("Gazelle's schedule", ", the paper's setting"),
            Schedule::Coefficients => (
                "coefficient encoding",
                ", Cheetah's baseline without rotations (`-` by rotations: it has none to save)",
            ),
            Schedule::Best => ("the best schedule", ""),
        };
        let _ = write!(
            md,
            "; `vs {}` against the dense model under {what} ({} rotations, {} ms){why}",
            r.schedule,
            Cost::Rotations.format(r.rotations.mean),
            Cost::Latency.format(r.latency.mean)
        );
    }
    md += ".\n\n";
    // Every speedup is also stated against the cheapest dense model of any
    // schedule: a pruned network is only worth deploying if it beats that.
    let cheapest: Vec<String> = Cost::ALL
        .into_iter()
        .filter_map(|cost| {
            let c = pareto::cheapest_dense(points, references, cost)?;
            Some(format!(
                "by {}, the {} schedule's ({})",
                cost.name(),
                c.schedule,
                cost.format(cost.of(c))
            ))
        })
        .collect();
    if !references.is_empty() && !cheapest.is_empty() {
        let _ = writeln!(
            md,
            "Cheapest dense model among the schedules run: {}.\n",
            cheapest.join("; ")
        );
    }
    let pruned = |s: Option<Strategy>| {
        points
            .iter()
            .filter(move |p| !p.strategy.is_dense() && s.is_none_or(|s| p.strategy == s))
    };
    let has_validation = points
        .iter()
        .any(|p| table_of.validation_accuracy(p).is_some());
    if !has_validation {
        md += "No validation split (`data.validation`), so no point can be chosen without the \
               test images: add one to the spec to get speedups.\n\n";
    }
    let mut rows = Vec::new();
    for cost in Cost::ALL {
        let Some(reference) = pareto::reference_cost(points, cost) else {
            continue;
        };
        let groups = strategies(points)
            .into_iter()
            .map(|s| (s.name(), Some(s)))
            .chain([("overall", None)]);
        for (name, s) in groups {
            let mut row = vec![cost.name().to_string(), name.to_string()];
            // Within one strategy any point may be chosen, its seeds shown;
            // across strategies, as for the headline, only the best
            // replicated.
            let replicates = match s {
                Some(_) => paired::Replicates::Any,
                None => paired::Replicates::Most,
            };
            let chosen =
                paired::cheapest_equivalent(table_of, pruned(s), points, cost, margin, replicates);
            match chosen {
                Some(p) => {
                    let twin = table_of.twin(p, points).expect("chosen against its twin");
                    let vs_twin = table_of.versus(p, twin);
                    let vs_dense = table_of.versus(p, dense);
                    let steps =
                        |s: &Summary| table_of.steps(s).map_or("-".into(), |x| format!("{x:.0}"));
                    row.extend([
                        format!("{}", p.target),
                        seeds_cell(p, &vs_twin),
                        paired::cell(vs_twin.validation, margin, false),
                        pct(p.accuracy.mean),
                        paired::cell(vs_twin.test, margin, true),
                        paired::cell(vs_dense.test, margin, true),
                        format!("{} / {} / {}", steps(p), steps(twin), steps(dense)),
                        cost.format(cost.of(p)),
                        format!("{:.2}x", reference / cost.of(p)),
                    ]);
                    row.extend(references.iter().map(|r| versus(cost, r, p)));
                }
                None => {
                    row.extend(std::iter::repeat_n("-".to_string(), 8));
                    row.push(format!("none equivalent within ±{:.2}", 100.0 * margin));
                    row.extend(references.iter().map(|_| "-".to_string()));
                }
            }
            rows.push(row);
        }
    }
    // The headline at the spec's margin, then at two wider ones chosen the
    // same way (each still an equivalence test on validation at a stated
    // margin): when nothing is equivalent at the first, the reader still
    // learns what a looser tolerance buys, without a claim of "equal".
    let sentence = |m: f64| -> Option<String> {
        let p = headline(points, table_of, m)?;
        let twin = table_of.twin(p, points)?;
        let reference = pareto::reference_cost(points, Cost::Rotations)?;
        let budget = table_of
            .recovery(p)
            .map_or(String::new(), |(epochs, steps)| {
                format!(", after {epochs:.0} recovery epochs ({steps:.0} fine-tuning steps)")
            });
        let against_cheapest = pareto::cheapest_dense(points, references, Cost::Latency)
            .filter(|c| c.schedule != schedule && Cost::Latency.of(p).is_finite())
            .map_or(String::new(), |c| {
                format!(
                    "; in measured latency it is {} against the cheapest dense model run, \
                     under {} ({} ms)",
                    speedup_words(Cost::Latency.of(c) / Cost::Latency.of(p)),
                    c.schedule,
                    Cost::Latency.format(Cost::Latency.of(c))
                )
            });
        let vs_twin = table_of.versus(p, twin);
        let seeds = vs_twin.test.map_or(0, |d| d.seeds);
        Some(format!(
            "{} at target {} needs {:.2}x fewer rotations than its budget-matched dense twin \
             under the {schedule} schedule, at a paired test difference of {} ({} {}, {} test \
             images){budget}{against_cheapest}",
            p.strategy,
            p.target,
            reference / Cost::Rotations.of(p),
            paired::cell(vs_twin.test, m, true),
            seeds_cell(p, &vs_twin),
            if seeds == 1 { "seed" } else { "seeds" },
            p.test_images,
        ))
    };
    let comparable = pruned(None).any(|p| {
        table_of
            .twin(p, points)
            .is_some_and(|t| table_of.versus(p, t).validation.is_some())
    });
    if comparable {
        md += &fewer_seeds_note(points, table_of, margin);
        match sentence(margin) {
            Some(s) => {
                let _ = writeln!(md, "**Headline:** {s}.\n");
            }
            None => {
                let _ = writeln!(
                    md,
                    "**Headline:** no pruned point is equivalent to its budget-matched dense twin \
                     within ±{:.2} points on validation.\n",
                    100.0 * margin
                );
            }
        }
        md += "At wider margins, chosen the same way:\n\n";
        for m in WIDER_MARGINS.map(|k| k * margin) {
            let _ = writeln!(
                md,
                "- within ±{:.2}: {}",
                100.0 * m,
                sentence(m).unwrap_or_else(|| "none".into())
            );
        }
        md += "\n";
    }
    let reference_headers: Vec<String> = references
        .iter()
        .map(|r| format!("vs {}", r.schedule))
        .collect();
    let mut header = vec![
        "cost",
        "strategy",
        "target",
        "seeds",
        "validation vs twin (points)",
        "test accuracy (%)",
        "test vs twin (points, 95 % CI)",
        "test vs dense (points, 95 % CI)",
        "steps: point / twin / dense",
        "cost value",
        "speedup",
    ];
    header.extend(reference_headers.iter().map(String::as_str));
    md += &markdown(&header, &rows);
    md + "\n"
}

/// A pruned point's speedup against a dense reference by `cost`; `-` where
/// the reference has none of that cost to save (no rotations under
/// coefficient encoding).
fn versus(cost: Cost, reference: &Summary, point: &Summary) -> String {
    let r = cost.of(reference);
    if r > 0.0 {
        format!("{:.2}x", r / cost.of(point))
    } else {
        "-".into()
    }
}

/// A ratio of times in words: a speedup above 1, a slowdown below it.
fn speedup_words(ratio: f64) -> String {
    if ratio >= 1.0 {
        format!("{ratio:.2}x faster")
    } else {
        format!("{:.2}x slower", 1.0 / ratio)
    }
}

/// The multiples of the spec's margin at which the report also states its
/// headline (1 and 2 points at the default half point).
const WIDER_MARGINS: [f64; 2] = [2.0, 4.0];

/// The report's headline point: the pruned point with the fewest
/// rotations, over every strategy, whose validation accuracy is equivalent
/// to its budget-matched twin's, among the points compared on the most
/// seeds ([`paired::best_replicated`]).
pub fn headline<'s>(
    points: &'s [Summary],
    table_of: &paired::Table,
    margin: f64,
) -> Option<&'s Summary> {
    let pruned = points.iter().filter(|p| !p.strategy.is_dense());
    paired::cheapest_equivalent(
        table_of,
        pruned,
        points,
        Cost::Rotations,
        margin,
        paired::Replicates::Most,
    )
}

/// A sentence naming the points equivalent at `margin` that the headline
/// and the `overall` rows leave out for resting on fewer seeds; empty when
/// none is.
fn fewer_seeds_note(points: &[Summary], table_of: &paired::Table, margin: f64) -> String {
    let pruned = points.iter().filter(|p| !p.strategy.is_dense());
    let fewer =
        paired::equivalent_on_fewer_seeds(table_of, pruned, points, Cost::Rotations, margin);
    if fewer.is_empty() {
        return String::new();
    }
    let names: Vec<String> = fewer
        .iter()
        .map(|(p, k)| {
            format!(
                "{} ({k} {})",
                p.label(),
                if *k == 1 { "seed" } else { "seeds" }
            )
        })
        .collect();
    format!(
        "The headline and the `overall` rows choose among the equivalent points compared with \
         their twin on the most seeds: an interval on fewer seeds has a thinner seed-to-seed \
         part (none on one seed), so it cannot outrank them on cost alone. Equivalent on fewer \
         seeds, so chosen only within their strategy's row: {}.\n\n",
        names.join(", ")
    )
}

/// A front point's end-to-end inference, averaged over its replicates that
/// ran it (`he.infer_images` > 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndToEnd {
    pub images: u64,
    pub server_ms: f64,
    pub client_ms: f64,
    pub bytes_up: f64,
    pub bytes_down: f64,
    pub rounds: f64,
    /// The two-party steps between layers (0 under client-aided): ReLUs,
    /// both parties' ms, bytes and rounds.
    pub relus: f64,
    pub gc_ms: f64,
    pub gc_bytes: f64,
    pub gc_rounds: f64,
    /// Whether the server did the dense network's work (every replicate).
    pub constant_time: bool,
}

impl EndToEnd {
    /// `None` when no replicate of `s` ran the chain.
    pub fn of(points: &[PointRecord], s: &Summary) -> Option<EndToEnd> {
        let runs: Vec<&PointRecord> = points
            .iter()
            .filter(|p| {
                p.strategy == s.strategy
                    && p.target == s.target
                    && p.schedule == s.schedule
                    && p.infer_images > 0
            })
            .collect();
        let mean = |f: fn(&PointRecord) -> f64| {
            stats::mean(&runs.iter().map(|p| f(p)).collect::<Vec<_>>())
        };
        Some(EndToEnd {
            images: runs.iter().map(|p| p.infer_images).sum(),
            server_ms: mean(|p| p.e2e_server_ms)?,
            client_ms: mean(|p| p.e2e_client_ms)?,
            bytes_up: mean(|p| p.bytes_up as f64)?,
            bytes_down: mean(|p| p.bytes_down as f64)?,
            rounds: mean(|p| p.rounds as f64)?,
            relus: mean(|p| p.relus as f64)?,
            // Client-aided rows ran no two-party steps: 0 ms of them.
            gc_ms: mean(|p| if p.gc_ms.is_nan() { 0.0 } else { p.gc_ms })?,
            gc_bytes: mean(|p| (p.gc_offline_bytes + p.gc_online_bytes) as f64)?,
            gc_rounds: mean(|p| p.gc_rounds as f64)?,
            constant_time: runs.iter().all(|p| p.constant_time),
        })
    }

    /// Communication time on `link`, computed from the bytes and rounds of
    /// the HE layers and the two-party steps.
    pub fn link_ms(&self, link: &explore_spec::Link) -> f64 {
        link.time_ms(
            self.bytes_up,
            self.bytes_down + self.gc_bytes,
            self.rounds + self.gc_rounds,
        )
    }

    /// The measured time of both parties, the two-party steps included
    /// (without a link).
    pub fn compute_ms(&self) -> f64 {
        self.server_ms + self.client_ms + self.gc_ms
    }
}

/// The dense models and the rotation front as private inference end to
/// end: the server's and the client's measured time and the computed time
/// on two links.
fn inference_table(records: &[PointRecord], points: &[Summary]) -> String {
    use explore_spec::Link;
    let front = pareto::front(points, Cost::Rotations);
    let dense = points.iter().filter(|p| p.strategy.is_dense());
    let mut rows = Vec::new();
    for p in dense.chain(front.iter().copied().filter(|p| !p.strategy.is_dense())) {
        let Some(e) = EndToEnd::of(records, p) else {
            continue;
        };
        let mb = |b: f64| format!("{:.2}", b / 1e6);
        // What the dense network's work costs this point over its own:
        // the layer timings of the dense model and of the point, measured
        // alike (`latency_measured_ms`).
        let dense_latency = points
            .iter()
            .find(|d| d.strategy.is_dense() && d.schedule == p.schedule)
            .map(|d| d.latency.mean);
        let constant_time = match (e.constant_time, dense_latency) {
            (false, _) => "off".to_string(),
            _ if p.strategy.is_dense() => "on (no cost)".to_string(),
            (true, Some(d)) if d.is_finite() && p.latency.mean.is_finite() => format!(
                "on: {:+.0} ms ({:.0} vs {:.0} rotations)",
                d - p.latency.mean,
                p.rotations_dense,
                p.rotations.mean
            ),
            (true, _) => "on (not timed)".to_string(),
        };
        rows.push(vec![
            format!("{} ({})", p.label(), p.schedule),
            e.images.to_string(),
            format!("{:.0}", e.server_ms),
            format!("{:.0}", e.client_ms),
            if e.relus > 0.0 {
                format!("{:.0} ({:.0} ReLUs)", e.gc_ms, e.relus)
            } else {
                "client-aided".into()
            },
            format!("{:.0}", e.compute_ms()),
            format!("{:.0}", e.link_ms(&Link::LAN)),
            format!("{:.0}", e.link_ms(&Link::WAN)),
            mb(e.bytes_up),
            mb(e.bytes_down),
            mb(e.gc_bytes),
            format!("{:.0} + {:.0}", e.rounds, e.gc_rounds),
            constant_time,
        ]);
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from("## End-to-end private inference\n\n");
    let _ = writeln!(
        md,
        "The whole network as private inference (`explore infer`, `he.protocol`, `he.keys`, \
         `he.constant_time` and `he.flooding` of the spec), mean per inference over the \
         images run (all of them computed to the integer model's logits exactly). Under the \
         two-party protocol the client decrypts only masked shares, and every step between \
         linear layers (requantization, ReLU, residual sums, pooling) runs on shares as \
         garbled circuits; its columns count both parties' measured time, its bytes \
         (offline: base OTs and garbled tables; online: oblivious transfers and labels) and \
         its rounds. Pruning removes no ReLU, so that part costs a pruned point what it costs \
         the dense model. Under `he.constant_time: on` (the default with dense keys) the \
         server computes every block of the dense network, pruned weights multiplied as \
         zeros, so a pruned point's HE server time is the dense network's: that is the price \
         of a time that says nothing about the pruning. The last column gives that price per \
         point, measured: the encrypted layers' time of the dense model less the point's own \
         (both timed alike, the latency of the tables above), with the rotations the server \
         then executes against the point's own. Times are measured on this \
         machine with both parties on it; the link times are **computed** from all the \
         measured bytes and rounds ({}; {}), not measured.\n",
        Link::LAN.name,
        Link::WAN.name
    );
    md += &markdown(
        &[
            "point",
            "images",
            "HE server ms",
            "HE client ms",
            "two-party steps ms",
            "compute ms",
            "LAN ms (computed)",
            "WAN ms (computed)",
            "HE MB up",
            "HE MB down",
            "two-party MB",
            "rounds (HE + two-party)",
            "constant time",
        ],
        &rows,
    );
    md + "\n"
}

/// Every pruned point against its budget-matched twin and against dense,
/// paired seed by seed, whether or not it is equivalent: the numbers behind
/// the choice above.
fn paired_table(points: &[Summary], table_of: &paired::Table, margin: f64) -> String {
    let mut md = String::from(
        "## Paired differences from the dense controls

",
    );
    let Some(dense) = pareto::dense(points) else {
        return md + "No dense point.\n\n";
    };
    md += "Every point's integer-model accuracy minus its budget-matched twin's and minus \
           the plain dense model's, paired seed by seed on the same images (points, mean \
           over seeds; test differences with their 95 % intervals), and the optimizer \
           steps behind each. The variance treats images and seeds as crossed: the \
           images part plus the seed effect, with their interaction counted once. \
           `power` is the chance that the equivalence test against the twin calls a \
           truly equal point equivalent at this margin, given the measured standard \
           error and degrees of freedom (validation / test): a low power means an \
           `inconclusive` says more about the design (images, seeds) than about the \
           point.\n\n";
    let steps = |s: &Summary| table_of.steps(s).map_or("-".into(), |x| format!("{x:.0}"));
    // By strategy and target, whatever order the points table grew in.
    let mut pruned: Vec<&Summary> = points.iter().filter(|p| !p.strategy.is_dense()).collect();
    pruned.sort_by(|a, b| {
        (a.strategy, a.target)
            .partial_cmp(&(b.strategy, b.target))
            .expect("finite targets")
    });
    let rows: Vec<Vec<String>> = pruned
        .into_iter()
        .map(|p| {
            let twin = table_of.twin(p, points);
            let vs_twin = twin.map(|t| table_of.versus(p, t)).unwrap_or_default();
            let vs_dense = table_of.versus(p, dense);
            vec![
                p.strategy.name().to_string(),
                format!("{}", p.target),
                seeds_cell(p, &vs_twin),
                format!(
                    "{} / {} / {}",
                    steps(p),
                    twin.map_or("-".into(), steps),
                    steps(dense)
                ),
                paired::cell(vs_twin.validation, margin, false),
                paired::cell(vs_twin.test, margin, true),
                paired::cell(vs_dense.validation, margin, false),
                paired::cell(vs_dense.test, margin, true),
                format!(
                    "{} / {}",
                    power_cell(vs_twin.validation, margin),
                    power_cell(vs_twin.test, margin)
                ),
            ]
        })
        .collect();
    md += &markdown(
        &[
            "strategy",
            "target",
            "seeds",
            "steps: point / twin / dense",
            "validation vs twin",
            "test vs twin (95 % CI)",
            "validation vs dense",
            "test vs dense (95 % CI)",
            "power vs twin",
        ],
        &rows,
    );
    md + "\n"
}

/// The seeds a comparison rests on: those where both sides have outcomes
/// on the same images ("4 of 5" when the point has seeds without a pair).
fn seeds_cell(p: &Summary, vs: &paired::Versus) -> String {
    let paired = vs.test.or(vs.validation).map_or(0, |d| d.seeds);
    if paired == p.seeds.len() {
        paired.to_string()
    } else {
        format!("{paired} of {}", p.seeds.len())
    }
}

/// The equivalence test's power at `margin` for a paired difference's
/// measured error, as a fraction.
fn power_cell(p: Option<stats::Paired>, margin: f64) -> String {
    p.map_or("n/a".into(), |p| format!("{:.2}", p.tost_power(margin)))
}

/// Hypervolume per strategy and overall, divided by the dense cost so it reads
/// as the mean best accuracy over costs 0..dense (0 when nothing is cheaper
/// than dense), with its standard error.
fn hypervolumes(points: &[Summary], hv_reference: Option<f64>) -> String {
    let mut md = String::from("## Hypervolume\n\n");
    let floor = hv_reference
        .or_else(|| pareto::dense(points).map(|d| d.accuracy.mean - explore_spec::DEFAULT_HV_DROP));
    let Some(floor) = floor.filter(|f| f.is_finite()) else {
        return md + "No dense point and no `report.hv_reference`, so no reference accuracy.\n\n";
    };
    let _ = write!(
        md,
        "Area under each front's attainment curve between cost 0 and the dense cost and above \
         accuracy {} % ({}), divided by the dense cost, with the standard error its points' \
         accuracies give it: a point below that accuracy adds nothing, so the area measures \
         accuracy worth having, not cost alone.",
        pct(floor),
        if hv_reference.is_some() {
            "`report.hv_reference`".to_string()
        } else {
            format!(
                "the dense model's less {} points, `report.hv_reference` unset",
                100.0 * explore_spec::DEFAULT_HV_DROP
            )
        }
    );
    let references: Vec<Option<f64>> = Cost::ALL
        .iter()
        .map(|&c| pareto::reference_cost(points, c))
        .collect();
    for (cost, reference) in Cost::ALL.iter().zip(&references) {
        if let Some(r) = reference {
            let _ = write!(md, " Dense {}: {}.", cost.name(), cost.format(*r));
        }
    }
    md += "\n\n";
    let cell = |subset: &[&Summary], cost: Cost, reference: Option<f64>| match reference {
        Some(r) if r > 0.0 => {
            let hv = pareto::hypervolume(subset.iter().copied(), (r, floor), cost);
            format!("{:.4} ± {:.4}", hv.mean / r, hv.se / r)
        }
        _ => "n/a".to_string(),
    };
    let mut groups: Vec<(String, Vec<&Summary>)> = strategies(points)
        .into_iter()
        .map(|s| {
            (
                s.name().to_string(),
                points.iter().filter(|p| p.strategy == s).collect(),
            )
        })
        .collect();
    groups.push(("overall".into(), points.iter().collect()));
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(name, subset)| {
            let mut row = vec![name.clone()];
            row.extend(
                Cost::ALL
                    .iter()
                    .zip(&references)
                    .map(|(&c, &r)| cell(subset, c, r)),
            );
            row
        })
        .collect();
    md += &markdown(&["strategy", "by rotations", "by latency"], &rows);
    md + "\n"
}

/// The pruned strategies present, in their canonical order (the twin is a
/// dense control: it has no front of its own).
fn strategies(points: &[Summary]) -> Vec<Strategy> {
    Strategy::ALL
        .into_iter()
        .filter(|&s| !s.is_dense() && points.iter().any(|p| p.strategy == s))
        .collect()
}

/// A compact table of front points (both costs shown, means over seeds).
pub fn front_table(points: &[&Summary]) -> String {
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            vec![
                p.strategy.name().to_string(),
                format!("{}", p.target),
                p.seeds.len().to_string(),
                estimate(p.accuracy.mean, p.accuracy.se),
                Cost::Rotations.format(p.rotations.mean),
                ms(p.latency.mean),
            ]
        })
        .collect();
    markdown(
        &[
            "strategy",
            "target",
            "seeds",
            "accuracy (%)",
            "rotations",
            "latency (ms)",
        ],
        &rows,
    )
}

/// Every column of every point, sorted by strategy, target and seed.
pub fn points_table(points: &[PointRecord]) -> String {
    let mut sorted: Vec<&PointRecord> = points.iter().collect();
    sorted.sort_by(|a, b| {
        (a.strategy, a.seed)
            .cmp(&(b.strategy, b.seed))
            .then(a.target.total_cmp(&b.target))
    });
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|p| {
            vec![
                p.strategy.name().to_string(),
                format!("{}", p.target),
                p.seed.to_string(),
                pct(p.accuracy_quantized),
                pct(p.val_accuracy),
                pct(p.accuracy),
                p.test_images.to_string(),
                pct(p.weight_sparsity),
                p.rotations.to_string(),
                p.pmults.to_string(),
                p.adds.to_string(),
                ms(p.latency_model_ms),
                ms(p.latency_measured_ms),
                p.he_verified.to_string(),
                format!("{:.0}", p.train_seconds),
                p.train_steps.to_string(),
            ]
        })
        .collect();
    markdown(
        &[
            "strategy",
            "target",
            "seed",
            "integer (%)",
            "validation (%)",
            "float (%)",
            "test images",
            "sparsity (%)",
            "rotations",
            "pmults",
            "adds",
            "model (ms)",
            "measured (ms)",
            "verified",
            "train (s)",
            "steps",
        ],
        &rows,
    )
}

/// A fraction and its standard error as percent: `78.80 ± 1.29`.
fn estimate(mean: f64, se: f64) -> String {
    format!("{} ± {}", pct(mean), pct(se))
}

fn pct(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.2}", 100.0 * fraction)
    } else {
        "n/a".into()
    }
}

fn ms(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;

    fn sweep() -> Vec<PointRecord> {
        vec![
            record(Strategy::Dense, 0.0, 0.91, 1000),
            record(Strategy::Diagonal, 0.5, 0.905, 500),
            record(Strategy::Diagonal, 0.9, 0.85, 200),
            record(Strategy::Channel, 0.5, 0.88, 400),
        ]
    }

    /// The sweep with its budget-matched twins, and outcomes in which each
    /// model gets the first images of each set right (so two models
    /// disagree only on the images between their accuracies).
    fn paired_sweep() -> (Vec<PointRecord>, Vec<Option<Outcomes>>) {
        let mut points = sweep();
        for t in [0.5, 0.9] {
            let mut twin = record(Strategy::DenseMatched, t, 0.912, 1000);
            twin.val_accuracy = 0.912;
            points.push(twin);
        }
        for p in &mut points {
            p.val_images = 1000;
        }
        let outcomes = points.iter().map(outcomes_of).collect();
        (points, outcomes)
    }

    fn outcomes_of(r: &PointRecord) -> Option<Outcomes> {
        let set = |n: u64, acc: f64, name: &str| {
            let right = (acc * n as f64).round() as u64;
            crate::outcomes::Correct::new((0..n).map(|i| i < right).collect(), name.into())
        };
        Some(Outcomes {
            validation: set(r.val_images, r.val_accuracy, "val"),
            test: set(r.test_images, r.accuracy_quantized, "test"),
        })
    }

    fn render_plain(
        spec_yaml: &str,
        points: &[PointRecord],
        plots: &[(String, PathBuf)],
    ) -> String {
        render(&Inputs {
            spec_yaml,
            points,
            outcomes: &[],
            plots,
            margin: paired::DEFAULT_MARGIN,
            hv_reference: Some(0.0),
        })
    }

    fn render_paired(points: &[PointRecord], outcomes: &[Option<Outcomes>]) -> String {
        render(&Inputs {
            spec_yaml: "",
            points,
            outcomes,
            plots: &[],
            margin: paired::DEFAULT_MARGIN,
            hv_reference: None,
        })
    }

    /// The last cell of a markdown table row, trimmed.
    fn last_cell(row: &str) -> String {
        row.trim_end_matches(['|', ' '])
            .rsplit('|')
            .next()
            .unwrap()
            .trim()
            .to_string()
    }

    fn section<'a>(md: &'a str, heading: &str) -> &'a str {
        let start = md
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading} in\n{md}"));
        let rest = &md[start + heading.len()..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    #[test]
    fn report_has_spec_plots_fronts_and_points() {
        let plots = vec![(
            "Accuracy vs rotations".to_string(),
            PathBuf::from("plots/acc_rot.png"),
        )];
        let md = render_plain("name: smoke\nseeds: [0]\n", &sweep(), &plots);
        assert!(md.starts_with("# Sweep report: smoke\n"));
        assert!(section(&md, "## Spec").contains("```yaml\nname: smoke\nseeds: [0]\n```"));
        assert!(md.contains("![Accuracy vs rotations](plots/acc_rot.png)"));
        let fronts = section(&md, "## Pareto fronts");
        assert!(
            fronts.contains("### By rotations per inference")
                && fronts.contains("### By encrypted latency (ms)")
        );
        // Each point is more accurate than every cheaper one, so all four are on
        // the overall front: 4 rows + header + rule.
        let overall =
            &fronts[fronts.find("Overall:").unwrap()..fronts.find("Per strategy:").unwrap()];
        assert_eq!(
            overall.lines().filter(|l| l.starts_with('|')).count(),
            2 + 4
        );
        assert_eq!(
            section(&md, "## All points")
                .lines()
                .filter(|l| l.starts_with('|'))
                .count(),
            2 + 4
        );
    }

    #[test]
    fn the_end_to_end_table_prices_constant_time_per_point() {
        // The last cell of a point's row.
        let cell = |md: &str, label: &str| -> String {
            let row = section(md, "## End-to-end private inference")
                .lines()
                .find(|l| l.starts_with(&format!("| {label} (")))
                .unwrap_or_else(|| panic!("no {label} row in\n{md}"));
            last_cell(row)
        };
        let md = render_plain("", &sweep(), &[]);
        // The dense model's layers take 2,600 ms, diagonal 0.5's 1,300.
        assert_eq!(
            cell(&md, "diagonal 0.5"),
            "on: +1300 ms (1000 vs 500 rotations)"
        );
        assert_eq!(cell(&md, "dense"), "on (no cost)");
        let mut off = sweep();
        off.iter_mut().for_each(|p| p.constant_time = false);
        let md = render_plain("", &off, &[]);
        assert_eq!(cell(&md, "diagonal 0.5"), "off");
    }

    #[test]
    fn speedups_take_the_cheapest_point_equivalent_on_validation() {
        let (points, outcomes) = paired_sweep();
        let md = render_paired(&points, &outcomes);
        let s = section(&md, "## Speedup at iso-accuracy");
        let row = |cost: &str, strategy: &str| {
            s.lines()
                .find(|l| {
                    l.starts_with(&format!("| {cost}")) && l.contains(&format!(" {strategy} "))
                })
                .unwrap_or_else(|| panic!("no {cost} {strategy} row in\n{s}"))
                .to_string()
        };
        // Diagonal 0.5 is a point below its twin on validation (90.2 vs
        // 91.2), outside ±0.5: not equivalent, though its test accuracy is
        // close to dense's.
        let d = row("rotations", "diagonal");
        assert!(d.contains("none equivalent within ±0.50"), "{s}");
        // The headline says so, and what wider margins admit: a point below
        // is equivalent within ±2 (its 90 % interval about [-1.5, -0.5]),
        // not within ±1.
        assert!(
            s.contains(
                "**Headline:** no pruned point is equivalent to its budget-matched dense twin \
                 within ±0.50 points on validation."
            ),
            "{s}"
        );
        assert!(s.contains("- within ±1.00: none\n"), "{s}");
        assert!(
            s.contains("- within ±2.00: diagonal at target 0.5 needs 2.00x fewer rotations"),
            "{s}"
        );
        assert!(s.contains("(1 seed, 1000 test images)"), "{s}");
        // Make diagonal 0.5 equivalent on validation only.
        let mut points = points;
        points[1].val_accuracy = 0.911;
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let s = section(&md, "## Speedup at iso-accuracy");
        let d = s
            .lines()
            .find(|l| l.starts_with("| rotations") && l.contains(" diagonal "))
            .unwrap();
        assert!(d.contains("| 0.5 ") && d.contains("| 2.00x"), "{s}");
        assert!(d.contains("-0.10, equivalent within ±0.50"), "{s}");
        // On test it is 0.7 points below its twin, whose 90 % interval
        // (paired: 7 discordant images) lies below -0.5: worse.
        assert!(d.contains("-0.70 [") && d.contains("], worse"), "{s}");
        assert!(d.contains("4000 / 4000 / 4000"), "{s}");
        assert!(
            s.contains("**Headline:** diagonal at target 0.5 needs 2.00x fewer rotations"),
            "{s}"
        );
        assert!(!md.contains("within noise"));
        assert!(
            row_of(s, "rotations", "channel").contains("none equivalent"),
            "{s}"
        );
    }

    #[test]
    fn a_points_seed_count_is_of_the_seeds_that_pair_with_its_twin() {
        let (mut points, _) = paired_sweep();
        // Seed 1 has a dense model and diagonal 0.5, but no twin yet.
        for (strategy, target) in [(Strategy::Dense, 0.0), (Strategy::Diagonal, 0.5)] {
            let mut r = record(strategy, target, 0.9, 1000);
            (r.seed, r.val_images, r.val_accuracy) = (1, 1000, 0.9);
            points.push(r);
        }
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let s = section(&md, "## Paired differences");
        let seeds = |target: &str| {
            s.lines()
                .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>())
                .find(|cells| cells.get(1..3) == Some(&["diagonal", target][..]))
                .unwrap_or_else(|| panic!("no diagonal {target} in\n{s}"))[3]
                .to_string()
        };
        assert_eq!(seeds("0.5"), "1 of 2", "{s}");
        assert_eq!(seeds("0.9"), "1", "{s}");
    }

    /// A cheaper point equivalent on one seed does not outrank a
    /// two-seed one in the headline or the overall row; its own strategy's
    /// row still chooses it, and the report says why it is left out.
    #[test]
    fn the_headline_chooses_among_the_points_on_the_most_seeds() {
        let (mut points, _) = paired_sweep();
        points[1].val_accuracy = 0.911; // diagonal 0.5, 500 rotations
        points[3].val_accuracy = 0.912; // channel 0.5, 400 rotations
        for i in [0, 1, 4] {
            // dense, diagonal 0.5 and its twin also on seed 1
            let mut r = points[i].clone();
            r.seed = 1;
            points.push(r);
        }
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let s = section(&md, "## Speedup at iso-accuracy");
        assert!(
            s.contains("**Headline:** diagonal at target 0.5 needs 2.00x fewer rotations"),
            "{s}"
        );
        assert!(s.contains("(2 seeds, 1000 test images)"), "{s}");
        assert!(
            s.contains("Equivalent on fewer seeds, so chosen only within their strategy's row: channel 0.5 (1 seed)."),
            "{s}"
        );
        let cells = |strategy: &str| -> Vec<String> {
            let row = row_of(s, "rotations", strategy);
            let c: Vec<&str> = row.split('|').map(str::trim).collect();
            // target, seeds, cost value
            vec![c[3].into(), c[4].into(), c[10].into()]
        };
        assert_eq!(cells("overall"), ["0.5", "2", "500"], "{s}");
        assert_eq!(cells("channel"), ["0.5", "1", "400"], "{s}");
        // With every point on one seed the rule changes nothing.
        let (mut points, _) = paired_sweep();
        points[1].val_accuracy = 0.911;
        points[3].val_accuracy = 0.912;
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let s = render_paired(&points, &outcomes);
        assert!(
            s.contains("**Headline:** channel at target 0.5 needs 2.50x fewer rotations"),
            "{s}"
        );
        assert!(!s.contains("chosen only within"), "{s}");
        // Where the best-replicated points are not equivalent, the best
        // replicated of the equivalent ones is chosen, not "none".
        let (mut points, _) = paired_sweep();
        points[3].val_accuracy = 0.912; // channel 0.5, equivalent, 1 seed
        for i in [0, 1, 4] {
            // diagonal 0.5 (not equivalent: 90.5 against 91.2) on seed 1 too
            let mut r = points[i].clone();
            r.seed = 1;
            points.push(r);
        }
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let s = render_paired(&points, &outcomes);
        assert!(
            s.contains("**Headline:** channel at target 0.5 needs 2.50x fewer rotations"),
            "{s}"
        );
    }

    fn row_of<'a>(s: &'a str, cost: &str, strategy: &str) -> &'a str {
        s.lines()
            .find(|l| l.starts_with(&format!("| {cost}")) && l.contains(&format!(" {strategy} ")))
            .unwrap()
    }

    #[test]
    fn without_a_validation_split_nothing_is_chosen() {
        let mut points = sweep();
        for p in &mut points {
            p.val_accuracy = f64::NAN;
            p.val_images = 0;
        }
        let md = render_plain("", &points, &[]);
        assert!(md.contains("No validation split"), "{md}");
    }

    #[test]
    fn speedups_are_also_given_against_the_gazelle_dense_reference() {
        let (mut points, _) = paired_sweep();
        points[1].val_accuracy = 0.911;
        let mut gazelle = record(Strategy::Dense, 0.0, 0.91, 1400);
        gazelle.schedule = explore_he_model::schedule::Schedule::Gazelle;
        points.push(gazelle);
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let s = section(&md, "## Speedup at iso-accuracy");
        assert!(
            s.contains("vs gazelle") && s.contains("1400 rotations"),
            "{s}"
        );
        let diagonal = row_of(s, "rotations", "diagonal");
        // 1000 / 500 against best's dense, 1400 / 500 against Gazelle's.
        assert!(
            diagonal.contains("| 2.00x") && diagonal.contains("| 2.80x"),
            "{s}"
        );
        // The reference is no point of the fronts.
        assert_eq!(
            section(&md, "## All points")
                .lines()
                .filter(|l| l.starts_with('|'))
                .count(),
            2 + 7
        );
    }

    /// A dense row under coefficient encoding (no rotations, cheaper in
    /// time than the best schedule's dense model) is named as the cheapest
    /// dense model by latency, its column reads `-` by rotations, and the
    /// headline states the chosen point's time against it, slower here.
    #[test]
    fn the_cheapest_dense_model_of_any_schedule_is_named() {
        let (mut points, _) = paired_sweep();
        points[1].val_accuracy = 0.911;
        let mut coefficients = record(Strategy::Dense, 0.0, 0.91, 0);
        coefficients.schedule = Schedule::Coefficients;
        coefficients.latency_measured_ms = 500.0;
        points.push(coefficients);
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let s = section(&md, "## Speedup at iso-accuracy");
        assert!(
            s.contains(
                "Cheapest dense model among the schedules run: by rotations, the \
                 coefficients schedule's (0); by latency, the coefficients schedule's (500.0)"
            ),
            "{s}"
        );
        assert!(s.contains("| vs coefficients |"), "{s}");
        // 500 rotations at 2.6 ms each: 1300 ms against 500 ms.
        assert!(
            s.contains("under coefficients (500.0 ms)") && s.contains("2.60x slower"),
            "{s}"
        );
        let by_rotations = row_of(s, "rotations", "diagonal");
        assert_eq!(last_cell(by_rotations), "-", "{by_rotations}");
        let by_latency = row_of(s, "latency", "diagonal");
        assert!(by_latency.contains("| 0.38x"), "{by_latency}");
    }

    #[test]
    fn hypervolumes_are_normalized_by_the_dense_cost() {
        let md = render_plain("", &sweep(), &[]);
        let s = section(&md, "## Hypervolume");
        assert!(
            s.contains("Dense rotations: 1000. Dense latency: 2600.0."),
            "{s}"
        );
        // Diagonal: (0.85 * 300 + 0.905 * 500) / 1000; channel: 0.88 * 600 / 1000.
        let diagonal = (0.85 * 300.0 + 0.905 * 500.0) / 1000.0;
        let se = |a: f64| explore_stats::binomial_se(a, 1000);
        let diagonal_se = ((0.3 * se(0.85)).powi(2) + (0.5 * se(0.905)).powi(2)).sqrt();
        assert!(
            s.contains(&format!("| diagonal | {diagonal:.4} ± {diagonal_se:.4}")),
            "{s}"
        );
        assert!(
            s.contains(&format!("| channel  | {:.4}", 0.88 * 0.6)),
            "{s}"
        );
        let overall = (0.85 * 200.0 + 0.88 * 100.0 + 0.905 * 500.0) / 1000.0;
        assert!(s.contains(&format!("| overall  | {overall:.4}")), "{s}");
    }

    #[test]
    fn paired_rows_follow_strategy_and_target_and_the_twin_has_no_front() {
        // A table grown by resuming lists points in the order they finished.
        let (mut points, _) = paired_sweep();
        points.reverse();
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let rows: Vec<(&str, &str)> = section(&md, "## Paired differences")
            .lines()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| strategy") && !l.starts_with("| -")
            })
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1], cells[2])
            })
            .collect();
        assert_eq!(
            rows,
            [("diagonal", "0.5"), ("diagonal", "0.9"), ("channel", "0.5")]
        );
        let hv = section(&md, "## Hypervolume");
        assert!(!hv.contains("dense-matched"), "{hv}");
        assert!(
            hv.contains("| diagonal") && hv.contains("| overall"),
            "{hv}"
        );
    }

    #[test]
    fn a_sweep_without_dense_says_why_there_are_no_speedups() {
        let points: Vec<_> = sweep().into_iter().skip(1).collect();
        let md = render_plain("", &points, &[]);
        assert!(md.contains("No dense point"), "{md}");
    }

    #[test]
    fn several_budgets_read_as_a_curve_then_one_comparison_per_budget() {
        let mut points = vec![record(Strategy::Dense, 0.0, 0.91, 1000)];
        // Hybrid gains with budget, the twin barely: equivalent only at 4.
        for (budget, hybrid, twin) in [(1u64, 0.86, 0.905), (4, 0.908, 0.91)] {
            for (strategy, acc, rotations) in [
                (Strategy::Hybrid, hybrid, 400),
                (Strategy::DenseMatched, twin, 1000),
            ] {
                let mut r = record(strategy, 0.5, acc, rotations);
                (r.budget, r.val_accuracy, r.recovery_epochs) = (budget, acc, budget);
                points.push(r);
            }
        }
        for p in &mut points {
            p.val_images = 1000;
        }
        let outcomes: Vec<_> = points.iter().map(outcomes_of).collect();
        let md = render_paired(&points, &outcomes);
        let curve = section(&md, "## Recovery: validation accuracy against budget");
        let row = |budget: &str| {
            curve
                .lines()
                .find(|l| l.starts_with("| hybrid") && l.contains(&format!("| {budget} ")))
                .unwrap()
                .to_string()
        };
        assert!(row("1").trim_end().ends_with("-4.50   |"), "{curve}");
        assert!(row("4").trim_end().ends_with("-0.20   |"), "{curve}");
        // Each budget's comparisons pair the point with the twin trained as long.
        let one = section(&md, "## Recovery budget: 1 epochs");
        assert!(one.contains("### Paired differences"), "{one}");
        assert!(one.contains("no pruned point is equivalent"), "{one}");
        let four = section(&md, "## Recovery budget: 4 epochs");
        assert!(
            four.contains("**Headline:** hybrid at target 0.5 needs 2.50x fewer rotations"),
            "{four}"
        );
        assert!(four.contains("after 4 recovery epochs"), "{four}");
        assert!(md.contains("Fronts below: the largest budget, 4 epochs."));
    }

    #[test]
    fn write_puts_report_md_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results");
        let points = sweep();
        let inputs = Inputs {
            spec_yaml: "name: smoke\n",
            points: &points,
            outcomes: &[],
            plots: &[],
            margin: paired::DEFAULT_MARGIN,
            hv_reference: None,
        };
        let path = write(&out, &inputs).unwrap();
        assert_eq!(path, out.join("report.md"));
        assert_eq!(std::fs::read_to_string(path).unwrap(), render(&inputs));
    }
}
