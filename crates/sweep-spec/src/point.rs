//! The points of a sweep: which (strategy, target, recovery budget, seed,
//! schedule) a spec asks for, in the order a resumed sweep walks them, the
//! directory name of each trained model, and the disjoint shards a sweep
//! can be split into.

use explore_he_model::schedule::{Schedule, Scheduler};

use crate::spec::Spec;
use crate::strategy::Strategy;

/// One point of a sweep: what was trained (strategy, target, recovery
/// budget, seed) and the HE schedule it was measured under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointKey {
    pub strategy: Strategy,
    pub target: f64,
    /// The fine-tuning epochs the point recovered for, when the spec lists
    /// several budgets (`prune.finetune.epochs: [1, 2, 4]`); `None` for the
    /// dense model and in a sweep of one budget, whose points are named as
    /// before budgets could vary.
    pub budget: Option<usize>,
    pub seed: u64,
    pub schedule: Schedule,
}

impl PointKey {
    /// The trained model's directory name in a sweep's `points/`: one per
    /// strategy, target, budget and seed, whatever schedule measures it.
    pub fn dir_name(&self) -> String {
        match self.budget {
            Some(b) => format!("{}-{}-e{b}-s{}", self.strategy, self.target, self.seed),
            None => format!("{}-{}-s{}", self.strategy, self.target, self.seed),
        }
    }

    /// The scheduler that measures this point under `spec`.
    pub fn scheduler(&self, spec: &Spec) -> Scheduler {
        spec.scheduler().with_schedule(self.schedule)
    }
}

impl std::fmt::Display for PointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.strategy, self.target)?;
        if let Some(b) = self.budget {
            write!(f, " budget {b}")?;
        }
        write!(f, " seed {} ({} schedule)", self.seed, self.schedule)
    }
}

/// Every point of the spec, the dense model of each seed first (under the
/// spec's schedule, under Gazelle's as the paper's reference when the
/// spec's is another, and under coefficient encoding, the baseline without
/// rotations). A seed is a replicate of the whole pipeline: its own
/// dense training, regularization and fine-tuning. With several recovery
/// budgets, every pruned point and its twin come once per budget.
pub fn point_keys(spec: &Spec) -> Vec<PointKey> {
    let schedule = spec.he.schedule;
    let key = |strategy, target, seed, schedule| PointKey {
        strategy,
        target,
        budget: None,
        seed,
        schedule,
    };
    let budgets: Vec<Option<usize>> = match &spec.prune.finetune {
        Some(f) if f.several() => f.budgets.iter().map(|&b| Some(b)).collect(),
        _ => vec![None],
    };
    let mut keys = Vec::new();
    for &seed in &spec.prune.seeds {
        keys.push(key(Strategy::Dense, 0.0, seed, schedule));
        if schedule != Schedule::Gazelle {
            keys.push(key(Strategy::Dense, 0.0, seed, Schedule::Gazelle));
        }
        keys.push(key(Strategy::Dense, 0.0, seed, Schedule::Coefficients));
    }
    // Every pruned strategy, then the budget-matched dense control, whose
    // twins share the targets' step budgets.
    let mut strategies: Vec<Strategy> = spec
        .prune
        .strategies
        .iter()
        .copied()
        .filter(|s| !s.is_dense())
        .collect();
    if !strategies.is_empty() {
        strategies.push(Strategy::DenseMatched);
    }
    for strategy in strategies {
        // Ascending, so a gradual trajectory finds its previous point done.
        let mut targets = spec.prune.targets.clone();
        targets.sort_by(f64::total_cmp);
        for &target in &targets {
            for &budget in &budgets {
                for &seed in &spec.prune.seeds {
                    keys.push(PointKey {
                        budget,
                        ..key(strategy, target, seed, schedule)
                    });
                }
            }
        }
    }
    keys
}

/// One of `count` disjoint shares of a sweep's points; `index` counts
/// from 1. A strategy's trajectory for one seed (every target: gradual
/// pruning walks them in order) stays in one shard, chosen by the
/// strategy's place in [`Strategy::ALL`] plus the seed, plus the recovery
/// budget when the sweep has several (budgets are independent points),
/// modulo `count`: adding targets, budgets or seeds moves no point to
/// another shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn owns(&self, key: &PointKey) -> bool {
        let strategy = Strategy::ALL
            .iter()
            .position(|s| *s == key.strategy)
            .expect("a listed strategy") as u64;
        let budget = key.budget.unwrap_or(0) as u64;
        strategy.wrapping_add(key.seed).wrapping_add(budget) % self.count + 1 == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not a shard i/n with 1 <= i <= n: use e.g. 1/3 (the first of three)")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if count == 0 || !(1..=count).contains(&index) {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use explore_he_model::schedule::Schedule;

    fn spec(targets: &str, seeds: &str) -> Spec {
        let text = format!(
            "name: t
data: {{dataset: fashion-mnist}}
model: {{arch: resnet20, width: 0.25}}
train: {{epochs: 1, lr: 0.1}}
prune: {{targets: {targets}, seeds: {seeds}}}
"
        );
        Spec::parse(&text, Path::new("t.yaml")).unwrap()
    }

    fn owner(key: &PointKey, n: u64) -> Vec<u64> {
        (1..=n)
            .filter(|&i| Shard { index: i, count: n }.owns(key))
            .collect()
    }

    #[test]
    fn every_point_is_in_exactly_one_shard_and_stays_there() {
        let small = point_keys(&spec("[0.5, 0.8]", "[0, 1]"));
        let large = point_keys(&spec("[0.5, 0.7, 0.8, 0.9]", "[0, 1, 2]"));
        for n in [1, 2, 3, 5] {
            for k in &large {
                assert_eq!(owner(k, n).len(), 1, "{k} in {n} shards");
            }
            // Adding targets and seeds moves no point.
            for k in &small {
                assert_eq!(owner(k, n), owner(k, n), "{k}");
                let same = large.iter().find(|l| *l == k).unwrap();
                assert_eq!(owner(k, n), owner(same, n));
            }
        }
        // A trajectory (one strategy and seed, every target) is never split.
        for k in &large {
            let first = PointKey { target: 0.5, ..*k };
            assert_eq!(owner(k, 3), owner(&first, 3));
        }
        // Seven strategies over three shards: three, two and two trajectories.
        let per: Vec<usize> = (1..=3)
            .map(|i| {
                Strategy::ALL
                    .iter()
                    .filter(|&&s| {
                        Shard { index: i, count: 3 }.owns(&PointKey {
                            strategy: s,
                            target: 0.5,
                            budget: None,
                            seed: 0,
                            schedule: Schedule::Best,
                        })
                    })
                    .count()
            })
            .collect();
        assert_eq!(per, [3, 2, 2]);
    }

    #[test]
    fn several_budgets_name_every_pruned_point_and_spread_over_shards() {
        let text = "name: t
data: {dataset: fashion-mnist}
model: {arch: resnet20, width: 0.25}
train: {epochs: 1, lr: 0.1}
prune: {strategies: [hybrid], targets: [0.5], seeds: [0],
        finetune: {epochs: [1, 2, 4], lr: 0.1}}
";
        let keys = point_keys(&Spec::parse(text, Path::new("t.yaml")).unwrap());
        let names: Vec<String> = keys.iter().map(PointKey::dir_name).collect();
        assert_eq!(
            names,
            [
                // Under the spec's schedule, Gazelle's and coefficients.
                "dense-0-s0",
                "dense-0-s0",
                "dense-0-s0",
                "hybrid-0.5-e1-s0",
                "hybrid-0.5-e2-s0",
                "hybrid-0.5-e4-s0",
                "dense-matched-0.5-e1-s0",
                "dense-matched-0.5-e2-s0",
                "dense-matched-0.5-e4-s0",
            ]
        );
        // One budget: named as before budgets could vary.
        let one = spec("[0.5]", "[0]");
        assert!(point_keys(&one).iter().all(|k| k.budget.is_none()));
        // Budgets of one strategy and seed land in different shards.
        let hybrid: Vec<Vec<u64>> = keys[3..6].iter().map(|k| owner(k, 3)).collect();
        assert!(hybrid.iter().all(|o| o.len() == 1), "{hybrid:?}");
        assert!(hybrid[0] != hybrid[1], "{hybrid:?}");
    }

    #[test]
    fn shards_parse_and_bad_ones_name_the_form() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/2", "0/0", "0/3", "1", "a/b", "1/0"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(bad) && e.contains("1 <= i <= n"), "{e}");
        }
    }
}
