//! Schedules: which [`LayerSchedule`] each layer of a network runs. `best`
//! (the default) tries every packing the layout supports (full slots with
//! replication, stride phases, output fold, every baby step) on the layer's
//! actual nonzero weights and keeps the cheapest under the primitive costs;
//! `gazelle` is the paper's setting, Gazelle's own packing and output
//! rotations with both rows used.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::arch::ConvShape;
use crate::cost::{LayerPlanCost, PrimitiveCosts, conv_cost};
use crate::layout::{LayerSchedule, PackingLayout};

/// The schedule family of a network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The cheapest packing and baby step per layer.
    #[default]
    Best,
    /// Gazelle's packing and output rotations (B = 1), both rows.
    Gazelle,
}

impl Schedule {
    pub const ALL: [Schedule; 2] = [Schedule::Best, Schedule::Gazelle];

    pub fn name(self) -> &'static str {
        match self {
            Schedule::Best => "best",
            Schedule::Gazelle => "gazelle",
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown schedule `{s}`: use best or gazelle"))
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
/// on every layer, the costs that price candidates and the ring degree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduler {
    pub schedule: Schedule,
    pub baby_step: Option<usize>,
    pub costs: PrimitiveCosts,
    pub poly_degree: usize,
}

impl Scheduler {
    /// The layout `shape` runs under, chosen for the nonzero pattern of
    /// `weights`, with its counts.
    pub fn layout<T: Copy + Default + PartialEq>(
        &self,
        shape: &ConvShape,
        role: Role,
        weights: &[T],
    ) -> Result<(PackingLayout, LayerPlanCost), Error> {
        let mut best: Option<(PackingLayout, LayerPlanCost)> = None;
        let mut first_error = None;
        let mut tried = Vec::new();
        for candidate in self.candidates(shape, role)? {
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
    fn candidates(&self, shape: &ConvShape, role: Role) -> Result<Vec<LayerSchedule>, Error> {
        if self.schedule == Schedule::Gazelle {
            if let Some(b) = self.baby_step.filter(|&b| b != 1) {
                return Err(Error::ImpossibleSchedule {
                    layer: shape.name.clone(),
                    schedule: "gazelle".into(),
                    why: format!("Gazelle's schedule fixes the baby step at 1, not {b}"),
                });
            }
            return Ok(vec![match role {
                Role::Conv => LayerSchedule::GAZELLE_CONV,
                Role::Fc => LayerSchedule::GAZELLE_FC,
            }]);
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
            for fold in [false, true] {
                for &baby_step in &babies {
                    out.push(LayerSchedule {
                        phases,
                        replicate: true,
                        fold,
                        baby_step,
                    });
                }
            }
        }
        Ok(out)
    }
}
