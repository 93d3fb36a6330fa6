//! Schedules: which [`LayerSchedule`] each layer of a network runs. `best`
//! (the default) tries every packing the layout supports (full slots with
//! replication, stride phases, output fold, every baby step) on the layer's
//! actual nonzero weights and keeps the cheapest under the primitive costs;
//! `gazelle` is the paper's setting, Gazelle's own packing and output
//! rotations with both rows used; `coefficients` is the baseline without
//! rotations, Cheetah's coefficient encoding of every layer (dense: it
//! computes every product whatever the weights).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::arch::ConvShape;
use crate::coefficient::CoefficientLayout;
use crate::cost::{LayerPlanCost, PrimitiveCosts, conv_cost};
use crate::layer::LayerLayout;
use crate::layout::{LayerSchedule, PackingLayout};
use crate::plaintext::moduli_sizes;

/// Whether each input block's rotations share one decomposition of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hoisting {
    /// The first rotation of a block is a full key switch, the rest hoisted.
    #[default]
    On,
    /// Every rotation is a full key switch (the paper's setting).
    Off,
}

crate::named_enum!(Hoisting: String, |s| format!("unknown hoisting `{s}`: use on or off"), {
    On => "on",
    Off => "off",
});

impl Hoisting {
    /// Whether rotations switch keys with a special prime: `asked` (the
    /// spec's `he.special_prime`, the `--special-prime` flag), else the
    /// choice that costs less compute. Hoisted, a rotation with a special
    /// prime must divide by it (two inverse and four forward NTTs at two
    /// ciphertext primes), which one without never does, and that outweighs
    /// the prime fewer in every product; without hoisting every rotation
    /// decomposes anyway and the prime fewer wins (README, "Throughput").
    /// Either way the special prime saves a third of every key and
    /// ciphertext, which is what asking for it buys.
    pub fn special_prime(self, asked: Option<bool>) -> bool {
        asked.unwrap_or(self == Hoisting::Off)
    }
}

/// The schedule family of a network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The cheapest packing and baby step per layer.
    #[default]
    Best,
    /// Gazelle's packing and output rotations (B = 1), both rows.
    Gazelle,
    /// Cheetah's coefficient encoding: no rotations, no Galois keys.
    Coefficients,
}

crate::named_enum!(Schedule: String, |s| format!("unknown schedule `{s}`: use best, gazelle or coefficients"), {
    Best => "best",
    Gazelle => "gazelle",
    Coefficients => "coefficients",
});

impl Schedule {
    /// Whether the family packs slots and rotates them (every one but the
    /// coefficient encoding).
    pub fn rotates(self) -> bool {
        self != Schedule::Coefficients
    }
}

/// Gazelle's published rotation count for a dense layer (Juvekar et al.
/// 2018; `conv_2d_2stage_online` and `mat_mul_online` in gazelle_mpc): a
/// conv with output rotations, `n_in (k*k - 1) + n_out (cn - 1)` with
/// `cn = N / P` channels per ciphertext over both rows; the FC layer's hybrid
/// product, `(n_o - 1) + log2(n_i / n_o)` for padded sizes `n_o < n_i`.
/// Gazelle's code performs all of them, including the rotations of
/// diagonals that pair no existing channels (a layer narrower than `cn`);
/// the `gazelle` schedule here skips those, so it counts at most this.
pub fn gazelle_formula(shape: &ConvShape, role: Role, poly_degree: usize) -> usize {
    match role {
        Role::Conv => {
            let cn = poly_degree / (shape.h * shape.w).next_power_of_two();
            let (n_in, n_out) = (shape.c_in.div_ceil(cn), shape.c_out.div_ceil(cn));
            n_in * (shape.k * shape.k - 1) + n_out * (cn - 1)
        }
        Role::Fc => {
            let (n_i, n_o) = (
                shape.c_in.next_power_of_two(),
                shape.c_out.next_power_of_two(),
            );
            if n_o < n_i {
                n_o - 1 + (n_i / n_o).trailing_zeros() as usize
            } else {
                n_i - 1
            }
        }
    }
}

/// What a layer computes: a convolution, or the classifier's
/// matrix-vector product (a 1x1 conv on a 1x1 grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Conv,
    Fc,
}

/// Chooses each layer's schedule: the family, an optional baby step forced
/// on every layer, whether rotations are hoisted, the costs that price
/// candidates and the ring degree.
/// [`Scheduler::new`] is the only way to build one, so every scheduler obeys
/// the rules it checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduler {
    schedule: Schedule,
    baby_step: Option<usize>,
    hoisting: Hoisting,
    costs: PrimitiveCosts,
    poly_degree: usize,
}

impl Scheduler {
    /// Checks the rules once: a ring degree with 128-bit moduli (a power of
    /// two in 4096..32768), and a forced baby step that is a power of two,
    /// 1 under Gazelle's schedule, and none under coefficient encoding.
    pub fn new(
        schedule: Schedule,
        baby_step: Option<usize>,
        hoisting: Hoisting,
        costs: PrimitiveCosts,
        poly_degree: usize,
    ) -> Result<Scheduler, Error> {
        moduli_sizes(poly_degree)?;
        if let Some(b) = baby_step {
            let why = if !b.is_power_of_two() {
                Some("is not a power of two: use 1, 2, 4, ... or leave it out")
            } else if schedule == Schedule::Gazelle && b != 1 {
                Some(
                    "cannot be forced on the gazelle schedule, whose baby step is 1: drop it or use the best schedule",
                )
            } else if !schedule.rotates() {
                Some(
                    "cannot be forced on the coefficients schedule, which has no baby steps: drop it or use the best schedule",
                )
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::BabyStep { baby_step: b, why });
            }
        }
        Ok(Scheduler {
            schedule,
            baby_step,
            hoisting,
            costs,
            poly_degree,
        })
    }

    /// Whether this scheduler's rotations switch keys with a special prime
    /// ([`Hoisting::special_prime`] of `asked`); never under coefficient
    /// encoding, where nothing switches keys.
    pub fn special_prime(&self, asked: Option<bool>) -> bool {
        self.schedule.rotates() && self.hoisting.special_prime(asked)
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The baby step forced on every layer, if any.
    pub fn baby_step(&self) -> Option<usize> {
        self.baby_step
    }

    pub fn hoisting(&self) -> Hoisting {
        self.hoisting
    }

    /// The primitive costs that price candidate schedules.
    pub fn costs(&self) -> &PrimitiveCosts {
        &self.costs
    }

    pub fn poly_degree(&self) -> usize {
        self.poly_degree
    }

    /// The same scheduler with hoisting on or off.
    pub fn with_hoisting(self, hoisting: Hoisting) -> Scheduler {
        Scheduler { hoisting, ..self }
    }

    /// The same scheduler under another family. A forced baby step belongs
    /// to the family it was given for, so another family drops it.
    pub fn with_schedule(self, schedule: Schedule) -> Scheduler {
        Scheduler {
            schedule,
            baby_step: self.baby_step.filter(|_| schedule == self.schedule),
            ..self
        }
    }

    /// The layout `shape` runs under, in either encoding, with its counts:
    /// the slot packing [`Self::layout`] chooses, or under coefficient
    /// encoding the layer's blocks, whose every product is computed.
    pub fn layer<T: Copy + Default + PartialEq>(
        &self,
        shape: &ConvShape,
        role: Role,
        weights: &[T],
    ) -> Result<(LayerLayout, LayerPlanCost), Error> {
        if self.schedule.rotates() {
            let (layout, cost) = self.layout(shape, role, weights)?;
            return Ok((LayerLayout::Slots(layout), cost));
        }
        let layout = CoefficientLayout::new(shape, self.poly_degree)?;
        let cost = LayerPlanCost {
            cost: layout.cost(),
            depth: layout.depth(),
            ..LayerPlanCost::default()
        };
        Ok((LayerLayout::Coefficients(layout), cost))
    }

    /// The slot packing `shape` runs under, chosen for the nonzero pattern
    /// of `weights`, with its counts; an error under coefficient encoding,
    /// which packs no slots (what pruning's groups are defined on).
    pub fn layout<T: Copy + Default + PartialEq>(
        &self,
        shape: &ConvShape,
        role: Role,
        weights: &[T],
    ) -> Result<(PackingLayout, LayerPlanCost), Error> {
        if !self.schedule.rotates() {
            return Err(Error::ImpossibleSchedule {
                layer: shape.name.clone(),
                schedule: self.schedule.to_string(),
                why: "coefficient encoding packs no slots, so it has no prune groups".into(),
            });
        }
        let mut best: Option<(PackingLayout, LayerPlanCost)> = None;
        let mut first_error = None;
        let mut tried = Vec::new();
        for candidate in self.candidates(shape, role) {
            let layout = match PackingLayout::new(shape, self.poly_degree, candidate) {
                Ok(l) => l,
                Err(e @ Error::ImpossibleSchedule { .. }) => {
                    first_error.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Candidates that normalize to one schedule are counted once.
            if tried.contains(&layout.schedule()) {
                continue;
            }
            tried.push(layout.schedule());
            let cost = conv_cost(&layout, weights);
            // Cheapest by latency, then by rotations, then by Galois keys;
            // earlier (simpler) candidates win ties.
            let rank = |c: &LayerPlanCost| {
                (
                    c.cost.latency_ms(&self.costs),
                    c.cost.rotations(),
                    c.steps.len(),
                )
            };
            if best.as_ref().is_none_or(|(_, b)| {
                rank(&cost).partial_cmp(&rank(b)) == Some(std::cmp::Ordering::Less)
            }) {
                best = Some((layout, cost));
            }
        }
        best.ok_or_else(|| first_error.expect("an impossible candidate was recorded"))
    }

    /// The schedules tried for a layer.
    fn candidates(&self, shape: &ConvShape, role: Role) -> Vec<LayerSchedule> {
        if self.schedule == Schedule::Gazelle {
            let packing = match role {
                Role::Conv => LayerSchedule::GAZELLE_CONV,
                Role::Fc => LayerSchedule::GAZELLE_FC,
            };
            return vec![packing.hoisted(self.hoisting == Hoisting::On)];
        }
        let phases: &[bool] = if shape.stride > 1 {
            &[false, true]
        } else {
            &[false]
        };
        let babies: Vec<usize> = match self.baby_step {
            Some(b) => vec![b],
            // Every power of two up to the largest diagonal count a layer
            // can have; impossible ones are skipped.
            None => (0..=(self.poly_degree / 2).trailing_zeros())
                .map(|e| 1usize << e)
                .collect(),
        };
        let mut out = Vec::new();
        for &phases in phases {
            for (fold, rows) in [(false, false), (true, false), (false, true)] {
                for &baby_step in &babies {
                    out.push(LayerSchedule {
                        phases,
                        replicate: true,
                        fold,
                        baby_step,
                        rows,
                        hoist: self.hoisting == Hoisting::On,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(schedule: Schedule, baby_step: Option<usize>, n: usize) -> Result<Scheduler, Error> {
        Scheduler::new(
            schedule,
            baby_step,
            Hoisting::On,
            PrimitiveCosts::default(),
            n,
        )
    }

    #[test]
    fn the_special_prime_is_as_asked_else_on_only_without_hoisting() {
        for hoisting in [Hoisting::On, Hoisting::Off] {
            assert!(hoisting.special_prime(Some(true)));
            assert!(!hoisting.special_prime(Some(false)));
        }
        assert!(!Hoisting::On.special_prime(None));
        assert!(Hoisting::Off.special_prime(None));
        let off = |schedule| {
            Scheduler::new(
                schedule,
                None,
                Hoisting::Off,
                PrimitiveCosts::default(),
                8192,
            )
            .unwrap()
        };
        assert!(off(Schedule::Best).special_prime(None));
        assert!(off(Schedule::Gazelle).special_prime(Some(true)));
        // Coefficient encoding switches no keys, whatever was asked.
        assert!(!off(Schedule::Coefficients).special_prime(Some(true)));
        assert!(!off(Schedule::Coefficients).special_prime(None));
    }

    #[test]
    fn the_constructor_checks_ring_degree_and_baby_step_once() {
        assert!(matches!(
            new(Schedule::Best, None, 1000),
            Err(Error::BadDegree(1000))
        ));
        assert!(matches!(
            new(Schedule::Best, None, 65536),
            Err(Error::BadDegree(65536))
        ));
        for n in [4096, 8192, 16384, 32768] {
            assert_eq!(new(Schedule::Best, None, n).unwrap().poly_degree(), n);
        }
        let e = new(Schedule::Best, Some(3), 8192).unwrap_err();
        assert!(e.to_string().contains("power of two"), "{e}");
        let e = new(Schedule::Gazelle, Some(4), 8192).unwrap_err();
        assert!(matches!(e, Error::BabyStep { baby_step: 4, .. }), "{e}");
        assert!(e.to_string().contains("gazelle"), "{e}");
        assert!(new(Schedule::Gazelle, Some(1), 8192).is_ok());
        let e = new(Schedule::Coefficients, Some(1), 8192).unwrap_err();
        assert!(matches!(e, Error::BabyStep { baby_step: 1, .. }), "{e}");
        assert!(new(Schedule::Best, Some(16), 8192).is_ok());
    }

    /// ResNet-20's layers on CIFAR-10 with their roles, all weights live.
    fn resnet20() -> Vec<(ConvShape, Role, Vec<bool>)> {
        use crate::arch::{Arch, DatasetKind, NetSpec};
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        let fc = spec.fc.as_conv();
        spec.convs
            .iter()
            .map(|c| (c.clone(), Role::Conv))
            .chain([(fc, Role::Fc)])
            .map(|(c, r)| {
                let w = vec![true; c.weight_len()];
                (c, r, w)
            })
            .collect()
    }

    #[test]
    fn best_is_the_cheapest_packing_of_every_layer() {
        let best = new(Schedule::Best, None, 8192).unwrap();
        let price = |c: &LayerPlanCost| c.cost.latency_ms(best.costs());
        for (shape, role, w) in resnet20() {
            let (chosen, cost) = best.layout(&shape, role, &w).unwrap();
            assert_eq!(cost, conv_cost(&chosen, &w));
            for phases in [false, true] {
                for (fold, rows) in [(false, false), (true, false), (false, true)] {
                    for b in (0..=12).map(|e| 1usize << e) {
                        let schedule = LayerSchedule {
                            phases,
                            replicate: true,
                            fold,
                            baby_step: b,
                            rows,
                            hoist: true,
                        };
                        if let Ok(l) = PackingLayout::new(&shape, 8192, schedule) {
                            let other = conv_cost(&l, &w);
                            assert!(
                                price(&cost) <= price(&other),
                                "{}: {schedule:?}",
                                shape.name
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_forced_baby_step_is_the_one_each_layer_runs_or_an_error() {
        let forced = new(Schedule::Best, Some(4), 8192).unwrap();
        let mut ran = 0;
        for (shape, role, w) in resnet20() {
            match forced.layout(&shape, role, &w) {
                Ok((layout, _)) => {
                    assert_eq!(layout.baby_step(), 4, "{}", shape.name);
                    ran += 1;
                }
                Err(e) => assert!(matches!(e, Error::ImpossibleSchedule { .. }), "{e}"),
            }
        }
        assert!(ran > 0);
        let gazelle = new(Schedule::Gazelle, None, 8192).unwrap();
        for (shape, role, w) in resnet20() {
            let (layout, _) = gazelle.layout(&shape, role, &w).unwrap();
            assert_eq!(layout.baby_step(), 1, "{}", shape.name);
        }
    }

    #[test]
    fn another_family_drops_the_forced_baby_step() {
        let best = new(Schedule::Best, Some(4), 8192).unwrap();
        let gazelle = best.with_schedule(Schedule::Gazelle);
        assert_eq!(
            (gazelle.schedule(), gazelle.baby_step()),
            (Schedule::Gazelle, None)
        );
        assert_eq!(best.with_schedule(Schedule::Best), best);
    }
}
