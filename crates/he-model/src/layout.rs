//! Slot layouts: how one conv layer (or the FC layer, a 1x1 conv on a 1x1
//! grid) is packed into BFV's two batching rows under a [`LayerSchedule`],
//! where each weight lands in the plaintext masks, and the HE prune groups
//! those masks induce. Pure geometry: the cost model counts it, the executor
//! encodes it, the pruner groups by it.
//!
//! # The layout
//! A ciphertext holds `cn = N / P` channel *positions* of `P` slots each
//! (`P`, the next power of two of the grid's pixels), `h = cn / 2` in each
//! row. Column rotations move both rows left at once, within each row; a row
//! swap exchanges them (fhe.rs exposes the two as separate key switches).
//!
//! - **Input period `p`.** Input channels repeat with period `p`: the
//!   smallest power of two holding them (*replication*), or all `cn`
//!   positions (Gazelle's packing). When `p <= h` every row holds whole
//!   periods and a column rotation by `d` positions pairs output position
//!   `j` with input channel `(j + d) mod p`: `p` diagonals, no row swap.
//!   When `p = cn` the period spans both rows: each diagonal splits into a
//!   *same-row* half and a *cross-row* half, and the cross half of every
//!   output block is swapped once (`2(h/B - 1) + 1 = p/B - 1` rotations,
//!   the same count as one cyclic period of `p`).
//! - **Baby step `B`.** Each input block is rotated by every (kernel offset,
//!   baby step `j < B`) pair; plaintext masks are pre-rotated by the giant
//!   step, products summed per giant step `g`, and each giant sum rotated by
//!   `g*B` positions: `n_in (k*k*B - 1) + n_out (p/B - 1)` rotations. `B = 1`
//!   is Gazelle's output-rotation schedule, `B = p` its input rotation.
//! - **Stride phases.** A stride-`s` conv can run on the `s*s` phases of its
//!   input (space-to-depth): a stride-1 conv on the output grid over
//!   `s*s*c_in` phase channels with a smaller set of kernel offsets.
//!   Without phases it runs at stride 1 on the full grid and the strided
//!   output is a subsample of the result.
//! - **Output fold.** With `p <= h` and fewer outputs than `p`, each output
//!   channel can collect its `p/q` partial sums in `q`-periodic positions
//!   (`q` diagonals instead of `p`), folded by `log2(p/q)` rotate-and-adds
//!   (Gazelle's hybrid matrix-vector product, used for the FC layer).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::arch::ConvShape;

/// The choices that make a layer's packing and evaluation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerSchedule {
    /// Run a strided conv on its stride phases (else on the full grid).
    pub phases: bool,
    /// Replicate the input with the smallest period that holds it (else one
    /// period of all `cn` positions).
    pub replicate: bool,
    /// Fold output partial sums (only with a replicated input).
    pub fold: bool,
    /// Baby step `B`: a power of two dividing the diagonals per giant group.
    pub baby_step: usize,
    /// Fold the two rows (a replicated period within one row, no output
    /// fold): row 1 holds the input shifted by half a period, so the same
    /// rotations give it the other half of every output's diagonals; one
    /// row swap and addition sums the halves. Half the diagonals, half the
    /// products, row 1 no longer idle in layers narrower than the slots.
    pub rows: bool,
    /// Rotate each input block by all its steps from one decomposition of
    /// it (hoisting): its first rotation is a full key switch, the rest the
    /// hoisted price. Counts of rotations do not change, their prices do.
    pub hoist: bool,
}

impl LayerSchedule {
    /// Gazelle's conv schedule: full grid, one period of `cn` positions,
    /// output rotations.
    pub const GAZELLE_CONV: LayerSchedule = LayerSchedule {
        phases: false,
        replicate: false,
        fold: false,
        baby_step: 1,
        rows: false,
        hoist: false,
    };
    /// Gazelle's matrix-vector schedule (its "hybrid" method): replicated
    /// input, folded outputs, output rotations.
    pub const GAZELLE_FC: LayerSchedule = LayerSchedule {
        phases: false,
        replicate: true,
        fold: true,
        baby_step: 1,
        rows: false,
        hoist: false,
    };

    /// This schedule with hoisting on or off.
    pub fn hoisted(self, hoist: bool) -> LayerSchedule {
        LayerSchedule { hoist, ..self }
    }

    /// A short name for tables: `bsgs`, plus `+phases`, `+fold`, or
    /// `gazelle` / `gazelle-fc` for those packings (hoisting has its own
    /// columns).
    pub fn describe(&self) -> String {
        let packing = self.hoisted(false);
        if packing == Self::GAZELLE_CONV {
            return "gazelle".into();
        }
        if packing == Self::GAZELLE_FC {
            return "gazelle-fc".into();
        }
        let mut s = String::from(if self.replicate { "bsgs" } else { "bsgs-ring" });
        if self.phases {
            s += "+phases";
        }
        if self.fold {
            s += "+fold";
        }
        if self.rows {
            s += "+rows";
        }
        s
    }
}

/// Which half of a two-row period a product belongs to: `Same` lands in the
/// row it was computed in; `Cross` is computed in the other row and swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Half {
    Same,
    Cross,
}

impl Half {
    pub const BOTH: [Half; 2] = [Half::Same, Half::Cross];
}

/// What one slot of an output block holds after the layer
/// ([`PackingLayout::output_slots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSlot {
    /// Output value `i` of the computed shape's `[c_out, oh, ow]` tensor.
    Value(usize),
    /// Zero: no channel or pixel is there.
    Zero,
    /// A partial sum a fold leaves: not an output.
    Partial,
}

/// One plaintext mask: input block `a` rotated by kernel offset `offset` and
/// baby step `baby`, contributing to giant step `giant` of half `half` of
/// output block `b`. Ordered so that one output block's masks are contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaskKey {
    pub b: usize,
    pub half: Half,
    pub giant: usize,
    pub a: usize,
    pub offset: usize,
    pub baby: usize,
}

/// The rotations a schedule performs. Column steps count slots (left, within
/// each row); the row swap exchanges the two rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Rotation {
    Columns(usize),
    Rows,
}

/// A set of weights whose removal saves a rotation: every weight read
/// through one rotated input (one kernel offset and baby step of one input
/// block: positional), or every weight on one giant step of one half of one
/// output block (diagonal). Under `B = 1` these are Artemis's positional and
/// diagonal groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PruneGroup {
    Positional {
        layer: usize,
        block: usize,
        offset: usize,
        baby: usize,
    },
    Diagonal {
        layer: usize,
        block: usize,
        half: Half,
        giant: usize,
    },
}

/// Where one weight `W[o, c, ky, kx]` acts: its mask, and the position (row,
/// position in row) of the computation slot its product occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub key: MaskKey,
    pub row: usize,
    pub position: usize,
    /// Index of the input channel in the phase-major effective channels.
    pub channel: usize,
}

/// One layer packed under one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackingLayout {
    shape: ConvShape,
    schedule: LayerSchedule,
    /// Phase stride: the conv's stride with phases, else 1.
    s: usize,
    /// The grid the ciphertexts hold (input and output of the stride-1 conv).
    gh: usize,
    gw: usize,
    /// Phases in use, `(py, px)`, and per phase the valid extent of its grid.
    phases: Vec<(usize, usize)>,
    valid: Vec<(usize, usize)>,
    /// Kernel offsets `(dy, dx)` on the grid.
    offsets: Vec<(isize, isize)>,
    /// `tap[phase * offsets + offset]`: the original kernel position
    /// `ky * k + kx` that reads this phase at this offset.
    tap: Vec<Option<usize>>,
    /// Whether some output pixel reads a valid input pixel through
    /// `(phase, offset)`; else every mask slot at it is zero.
    reads: Vec<bool>,
    /// Slots per channel position, per row.
    footprint: usize,
    row_slots: usize,
    /// Channel positions per row (`h`) and input period (`p`).
    per_row: usize,
    period: usize,
    /// Output period `q` (`q < p`: folded).
    out_period: usize,
    diagonals: usize,
    halves: usize,
    n_in: usize,
    n_out: usize,
}

impl PackingLayout {
    /// Packs `shape` under `schedule` at ring degree `poly_degree`. Errors
    /// when a channel does not fit a row or the schedule is impossible for
    /// this layer (a baby step that does not divide its diagonals, phases of
    /// a stride-1 conv).
    pub fn new(
        shape: &ConvShape,
        poly_degree: usize,
        schedule: LayerSchedule,
    ) -> Result<PackingLayout, Error> {
        let impossible = |why: String| Error::ImpossibleSchedule {
            layer: shape.name.clone(),
            schedule: schedule.describe(),
            why,
        };
        let s = if schedule.phases {
            if shape.stride == 1 {
                return Err(impossible("stride phases need a strided conv".into()));
            }
            shape.stride
        } else {
            1
        };
        let pad = shape.padding() as isize;
        let (gh, gw) = if s == 1 {
            (shape.h, shape.w)
        } else {
            let (gh, gw) = (shape.h.div_ceil(s), shape.w.div_ceil(s));
            if (gh, gw) != (shape.out_h(), shape.out_w()) {
                return Err(impossible(format!(
                    "its {}x{} output is not the {gh}x{gw} phase grid",
                    shape.out_h(),
                    shape.out_w()
                )));
            }
            (gh, gw)
        };
        // Each kernel tap (ky, kx) reads phase ((ky - pad) mod s, ...) at
        // offset floor((ky - pad) / s) on the phase grid.
        let split = |t: usize| {
            let d = t as isize - pad;
            (d.rem_euclid(s as isize) as usize, d.div_euclid(s as isize))
        };
        let mut phases: Vec<(usize, usize)> = Vec::new();
        let mut offsets: Vec<(isize, isize)> = Vec::new();
        let mut taps: Vec<((usize, usize), (isize, isize), usize)> = Vec::new();
        for ky in 0..shape.k {
            for kx in 0..shape.k {
                let ((py, dy), (px, dx)) = (split(ky), split(kx));
                if !phases.contains(&(py, px)) {
                    phases.push((py, px));
                }
                if !offsets.contains(&(dy, dx)) {
                    offsets.push((dy, dx));
                }
                taps.push(((py, px), (dy, dx), ky * shape.k + kx));
            }
        }
        phases.sort_unstable();
        offsets.sort_unstable();
        let mut tap = vec![None; phases.len() * offsets.len()];
        for (phase, offset, position) in taps {
            let ph = phases.iter().position(|&x| x == phase).expect("listed");
            let of = offsets.iter().position(|&x| x == offset).expect("listed");
            tap[ph * offsets.len() + of] = Some(position);
        }
        let valid: Vec<(usize, usize)> = phases
            .iter()
            .map(|&(py, px)| ((shape.h - py).div_ceil(s), (shape.w - px).div_ceil(s)))
            .collect();
        let reads = (0..phases.len())
            .flat_map(|ph| (0..offsets.len()).map(move |of| (ph, of)))
            .map(|(ph, of)| {
                let ((vh, vw), (dy, dx)) = (valid[ph], offsets[of]);
                let overlaps = |n: usize, d: isize, v: usize| {
                    (0..n as isize).any(|u| (0..v as isize).contains(&(u + d)))
                };
                tap[ph * offsets.len() + of].is_some()
                    && overlaps(gh, dy, vh)
                    && overlaps(gw, dx, vw)
            })
            .collect();
        let row_slots = poly_degree / 2;
        let footprint = (gh * gw).next_power_of_two();
        if footprint > row_slots {
            return Err(Error::LayerTooLarge {
                layer: shape.name.clone(),
                footprint,
                poly_degree,
            });
        }
        let per_row = row_slots / footprint;
        let cn = 2 * per_row;
        let channels = phases.len() * shape.c_in;
        let period = if schedule.replicate {
            channels.next_power_of_two().min(cn)
        } else {
            cn
        };
        let halves = if period <= per_row { 1 } else { 2 };
        let out_period = if schedule.fold {
            if halves == 2 {
                return Err(impossible(
                    "folding needs the input period within one row".into(),
                ));
            }
            shape.c_out.next_power_of_two().min(period)
        } else {
            period
        };
        // A fold of outputs that fill the period folds nothing.
        let schedule = LayerSchedule {
            fold: out_period < period,
            ..schedule
        };
        if schedule.rows && (halves == 2 || schedule.fold || period < 2) {
            return Err(impossible(
                "folding the rows needs a replicated period of 2 or more within one row and no output fold".into(),
            ));
        }
        let diagonals = if halves == 2 {
            per_row
        } else if schedule.rows {
            out_period / 2
        } else {
            out_period
        };
        let b = schedule.baby_step;
        if !(b.is_power_of_two() && b <= diagonals) {
            return Err(impossible(format!(
                "baby step {b} must be a power of two dividing the layer's {diagonals} diagonals"
            )));
        }
        let mut layout = PackingLayout {
            shape: shape.clone(),
            schedule,
            s,
            gh,
            gw,
            phases,
            valid,
            offsets,
            tap,
            reads,
            footprint,
            row_slots,
            per_row,
            period,
            out_period,
            diagonals,
            halves,
            n_in: channels.div_ceil(period),
            // Set below, from the layout's own count of outputs per block.
            n_out: 0,
        };
        layout.n_out = shape.c_out.div_ceil(layout.outputs_per_block());
        Ok(layout)
    }

    pub fn name(&self) -> &str {
        &self.shape.name
    }
    pub fn shape(&self) -> &ConvShape {
        &self.shape
    }
    pub fn schedule(&self) -> LayerSchedule {
        self.schedule
    }
    /// Slots per channel position (`P`).
    pub fn footprint(&self) -> usize {
        self.footprint
    }
    /// Channel positions per ciphertext, both rows (`cn`).
    pub fn positions(&self) -> usize {
        2 * self.per_row
    }
    /// Input period (`p`).
    pub fn period(&self) -> usize {
        self.period
    }
    /// Output period (`q`; below `p` when folded).
    pub fn out_period(&self) -> usize {
        self.out_period
    }
    /// 1 when the period fits a row, 2 when it spans both (row swaps).
    pub fn halves(&self) -> usize {
        self.halves
    }
    pub fn n_in(&self) -> usize {
        self.n_in
    }
    pub fn n_out(&self) -> usize {
        self.n_out
    }
    pub fn baby_step(&self) -> usize {
        self.schedule.baby_step
    }
    /// Giant steps per half of an output block.
    pub fn giants(&self) -> usize {
        self.diagonals / self.schedule.baby_step
    }
    /// Diagonals per half of an output block (`p`, `q` or `h`).
    pub fn diagonals(&self) -> usize {
        self.diagonals
    }
    /// Kernel offsets on the grid (9 for a 3x3 conv at stride 1, 4 on its
    /// stride-2 phases).
    pub fn offsets(&self) -> usize {
        self.offsets.len()
    }
    /// Phase channels (`phases x c_in`).
    pub fn channels(&self) -> usize {
        self.phases.len() * self.shape.c_in
    }
    /// Stride phases in use (1 on the full grid).
    pub fn phase_count(&self) -> usize {
        self.phases.len()
    }
    /// Rotate-and-add steps of the output fold (0 without).
    pub fn fold_steps(&self) -> usize {
        (self.period / self.out_period).trailing_zeros() as usize
    }

    /// The shape whose plain integer convolution the decrypted output holds:
    /// the layer itself with phases, else the layer at stride 1.
    pub fn computed_shape(&self) -> ConvShape {
        ConvShape {
            stride: if self.s == 1 { 1 } else { self.shape.stride },
            ..self.shape.clone()
        }
    }

    /// Output grid of the computation (`out_h x out_w`, or `h x w` at stride 1).
    fn out_grid(&self) -> (usize, usize) {
        (self.gh, self.gw)
    }

    /// The rotation that brings input block `a`'s (offset, baby step)
    /// reading into place; `None` for offset (0, 0) and baby step 0.
    pub fn input_rotation(&self, offset: usize, baby: usize) -> Option<Rotation> {
        let (dy, dx) = self.offsets[offset];
        let step = (baby * self.footprint) as isize + dy * self.gw as isize + dx;
        let step = step.rem_euclid(self.row_slots as isize) as usize;
        (step != 0).then_some(Rotation::Columns(step))
    }

    /// The rotation of giant step `g`'s sum; `None` for `g = 0`.
    pub fn giant_rotation(&self, giant: usize) -> Option<Rotation> {
        (giant != 0).then(|| Rotation::Columns(giant * self.schedule.baby_step * self.footprint))
    }

    /// The fold's rotations, in order.
    pub fn fold_rotations(&self) -> Vec<Rotation> {
        (0..self.fold_steps())
            .map(|i| Rotation::Columns((self.out_period << i) * self.footprint))
            .chain(self.schedule.rows.then_some(Rotation::Rows))
            .collect()
    }

    /// Output channels per output block: every copy of the period (only
    /// row 0's under a row fold), `q` outputs each; or every position of a
    /// two-row period.
    fn outputs_per_block(&self) -> usize {
        if self.halves == 2 {
            self.positions()
        } else if self.schedule.rows {
            self.per_row / self.period * self.out_period
        } else {
            self.positions() / self.period * self.out_period
        }
    }

    /// (phase index, input channel) of phase-major channel `i`.
    fn split_channel(&self, i: usize) -> (usize, usize) {
        (i / self.shape.c_in, i % self.shape.c_in)
    }

    /// Where `W[o, c, position]` (position `ky * k + kx`) acts, or `None`
    /// when no output pixel reads a valid input through it (then it never
    /// contributes).
    pub fn place(&self, o: usize, c: usize, position: usize) -> Option<Placement> {
        let (ph, of) = (0..self.phases.len())
            .flat_map(|ph| (0..self.offsets.len()).map(move |of| (ph, of)))
            .find(|&(ph, of)| self.tap[ph * self.offsets.len() + of] == Some(position))
            .expect("every kernel position has a tap");
        if !self.reads[ph * self.offsets.len() + of] {
            return None;
        }
        let i = ph * self.shape.c_in + c;
        let (h, p, q, bstep) = (
            self.per_row,
            self.period,
            self.out_period,
            self.schedule.baby_step,
        );
        let (a, b, half, delta, row_out, j, row_in);
        if self.halves == 1 {
            // Replicated: input channel i sits at every position x = i mod p
            // (row 1 of a row fold: x = i - p/2 mod p).
            let per_block = self.outputs_per_block();
            b = o / per_block;
            let local = o % per_block;
            let (copy, residue) = (local / q, local % q);
            let m = ((i + p - residue) % p) / q;
            let r = residue + m * q;
            let s = copy * p + r;
            (row_out, j) = (s / h, s % h);
            a = 0;
            half = Half::Same;
            let d = (i + p - r) % p;
            if self.schedule.rows && d >= p / 2 {
                (delta, row_in) = (d - p / 2, 1);
            } else {
                (delta, row_in) = (d, row_out);
            }
        } else {
            a = i / self.positions();
            let local_in = i % self.positions();
            let x;
            (row_in, x) = (local_in / h, local_in % h);
            b = o / self.positions();
            let s = o % self.positions();
            (row_out, j) = (s / h, s % h);
            half = if row_in == row_out {
                Half::Same
            } else {
                Half::Cross
            };
            delta = (x + h - j) % h;
        }
        let (giant, baby) = (delta / bstep, delta % bstep);
        Some(Placement {
            key: MaskKey {
                b,
                half,
                giant,
                a,
                offset: of,
                baby,
            },
            // Products are computed in the input's row, `g * B` positions
            // ahead of where the giant rotation takes them.
            row: row_in,
            position: (j + giant * bstep) % h,
            channel: i,
        })
    }

    /// Every placement of a nonzero weight of `weights` (`[c_out, c_in, k,
    /// k]`), with the weight's index.
    pub fn placements<'a, T: Copy + Default + PartialEq>(
        &'a self,
        weights: &'a [T],
    ) -> impl Iterator<Item = (usize, Placement)> + 'a {
        let k2 = self.shape.k * self.shape.k;
        (0..weights.len())
            .filter(move |&i| weights[i] != T::default())
            .filter_map(move |i| {
                let (o, c, position) =
                    (i / (self.shape.c_in * k2), i / k2 % self.shape.c_in, i % k2);
                self.place(o, c, position).map(|pl| (i, pl))
            })
    }

    /// The plaintext masks of `weights`: for each mask with a nonzero slot,
    /// its slots (`N` values, row 0 then row 1), pre-rotated by its giant step.
    pub fn masks(&self, weights: &[i64]) -> std::collections::BTreeMap<MaskKey, Vec<i64>> {
        let mut masks = std::collections::BTreeMap::new();
        let (oh, ow) = self.out_grid();
        for (i, pl) in self.placements(weights) {
            let (ph, _) = self.split_channel(pl.channel);
            let (vh, vw) = self.valid[ph];
            let (dy, dx) = self.offsets[pl.key.offset];
            let slots = masks
                .entry(pl.key)
                .or_insert_with(|| vec![0i64; 2 * self.row_slots]);
            let base = pl.row * self.row_slots + pl.position * self.footprint;
            for u in 0..oh {
                if !(0..vh as isize).contains(&(u as isize + dy)) {
                    continue;
                }
                for v in 0..ow {
                    if (0..vw as isize).contains(&(v as isize + dx)) {
                        slots[base + u * self.gw + v] = weights[i];
                    }
                }
            }
        }
        masks
    }

    /// Input block `a` of a `[c_in, h, w]` tensor (the layer's full input
    /// grid): the phase channels it holds, each at its positions, `N` slots.
    pub fn pack_input(&self, input: &[i64], a: usize) -> Vec<i64> {
        let (h, w) = (self.shape.h, self.shape.w);
        let mut v = vec![0i64; 2 * self.row_slots];
        for row in 0..2 {
            for x in 0..self.per_row {
                let i = if self.halves == 1 && self.schedule.rows && row == 1 {
                    (x + self.period / 2) % self.period
                } else if self.halves == 1 {
                    x % self.period
                } else {
                    a * self.positions() + row * self.per_row + x
                };
                if i >= self.channels() {
                    continue;
                }
                let (ph, c) = self.split_channel(i);
                let ((py, px), (vh, vw)) = (self.phases[ph], self.valid[ph]);
                let base = row * self.row_slots + x * self.footprint;
                for u in 0..vh {
                    for t in 0..vw {
                        let (y, xx) = (self.s * u + py, self.s * t + px);
                        v[base + u * self.gw + t] = input[(c * h + y) * w + xx];
                    }
                }
            }
        }
        v
    }

    /// What each slot of output block `b` holds once the layer has run:
    /// an output of [`Self::computed_shape`]'s `[c_out, oh, ow]` tensor (by
    /// index), a zero where no channel or pixel is, or a partial sum a fold
    /// leaves behind.
    pub fn output_slots(&self, b: usize) -> Vec<OutputSlot> {
        let (oh, ow) = self.out_grid();
        let mut v = vec![OutputSlot::Zero; 2 * self.row_slots];
        for row in 0..2 {
            for j in 0..self.per_row {
                // A row fold leaves both rows holding the sums.
                let s = if self.schedule.rows {
                    j
                } else {
                    row * self.per_row + j
                };
                let base = row * self.row_slots + j * self.footprint;
                let o = if self.halves == 1 {
                    let (copy, r) = (s / self.period, s % self.period);
                    if r >= self.out_period {
                        v[base..base + self.footprint].fill(OutputSlot::Partial);
                        continue;
                    }
                    b * self.outputs_per_block() + copy * self.out_period + r
                } else {
                    b * self.positions() + s
                };
                if o >= self.shape.c_out {
                    continue;
                }
                for u in 0..oh {
                    for t in 0..ow {
                        v[base + u * self.gw + t] = OutputSlot::Value((o * oh + u) * ow + t);
                    }
                }
            }
        }
        v
    }

    /// What output block `b` must decrypt to, slot by slot, given the
    /// integer convolution of [`Self::computed_shape`] (`[c_out, oh, ow]`):
    /// each output channel at its position, zeros where no channel or pixel
    /// is, and `None` for slots a fold leaves holding partial sums.
    pub fn expected_output(&self, reference: &[i64], b: usize) -> Vec<Option<i64>> {
        self.output_slots(b)
            .into_iter()
            .map(|slot| match slot {
                OutputSlot::Value(i) => Some(reference[i]),
                OutputSlot::Zero => Some(0),
                OutputSlot::Partial => None,
            })
            .collect()
    }

    /// The layer's own output (`[c_out, out_h, out_w]`, at its stride) read
    /// from the decrypted output blocks, as a client reads the server's
    /// reply: each value from the first slot holding it, a block the layer
    /// never computes (`None`: every weight feeding it is zero) as zeros,
    /// and a layer computed at stride 1 for a strided shape subsampled.
    pub fn read_output(&self, blocks: &[Option<Vec<i64>>]) -> Vec<i64> {
        let computed = self.computed_shape();
        let (oh, ow) = self.out_grid();
        let mut full = vec![0i64; computed.c_out * oh * ow];
        let mut seen = vec![false; full.len()];
        for (b, block) in blocks.iter().enumerate() {
            let Some(block) = block else { continue };
            for (slot, holds) in self.output_slots(b).into_iter().enumerate() {
                if let OutputSlot::Value(i) = holds
                    && !seen[i]
                {
                    full[i] = block[slot];
                    seen[i] = true;
                }
            }
        }
        let s = computed.stride.max(1);
        if s == self.shape.stride {
            return full;
        }
        let (h, w) = (self.shape.out_h(), self.shape.out_w());
        let step = self.shape.stride / s;
        (0..self.shape.c_out)
            .flat_map(|o| {
                let full = &full;
                (0..h).flat_map(move |u| {
                    (0..w).map(move |t| full[(o * oh + step * u) * ow + step * t])
                })
            })
            .collect()
    }

    /// Every prune group of this layer (numbered `layer` in the network)
    /// with the indices of its weights in the `[c_out, c_in, k, k]` vector.
    /// Each weight that acts belongs to exactly one positional and one
    /// diagonal group.
    pub fn groups(&self, layer: usize) -> Vec<(PruneGroup, Vec<usize>)> {
        let all = vec![1u8; self.shape.weight_len()];
        let mut groups: std::collections::BTreeMap<PruneGroup, Vec<usize>> =
            std::collections::BTreeMap::new();
        for (i, pl) in self.placements(&all) {
            let k = pl.key;
            groups
                .entry(PruneGroup::Positional {
                    layer,
                    block: k.a,
                    offset: k.offset,
                    baby: k.baby,
                })
                .or_default()
                .push(i);
            groups
                .entry(PruneGroup::Diagonal {
                    layer,
                    block: k.b,
                    half: k.half,
                    giant: k.giant,
                })
                .or_default()
                .push(i);
        }
        groups.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fixtures::{schedule, shape};
    use crate::reference::{conv_int, max_magnitude};

    const N: usize = 8192;

    fn rows(baby_step: usize) -> LayerSchedule {
        LayerSchedule {
            rows: true,
            ..schedule(false, true, false, baby_step)
        }
    }

    /// Deterministic values over the whole signed 8-bit range (xorshift).
    fn values(len: usize, seed: u64) -> Vec<i64> {
        let m = max_magnitude(8);
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % (2 * m + 1)) as i64 - m as i64
            })
            .collect()
    }

    /// What BFV's batching does to a vector of `N` slots: a column rotation
    /// moves each row of `N/2` slots left by `step`; the row swap exchanges
    /// the rows.
    fn rotate(v: &[i64], r: Rotation) -> Vec<i64> {
        let h = v.len() / 2;
        match r {
            Rotation::Columns(step) => (0..v.len())
                .map(|i| v[i / h * h + (i % h + step) % h])
                .collect(),
            Rotation::Rows => v[h..].iter().chain(&v[..h]).copied().collect(),
        }
    }

    /// The layout's evaluation on plaintext slot vectors, in the order the
    /// executor runs it: rotate each input block per (offset, baby step),
    /// multiply by its masks, sum per giant step, rotate each giant sum,
    /// swap the cross half, add, fold. One output vector per block.
    fn evaluate(layout: &PackingLayout, weights: &[i64], input: &[i64]) -> Vec<Vec<i64>> {
        let blocks: Vec<Vec<i64>> = (0..layout.n_in())
            .map(|a| layout.pack_input(input, a))
            .collect();
        let mut halves: BTreeMap<(usize, Half), Vec<i64>> = BTreeMap::new();
        let mut giants: BTreeMap<(usize, Half, usize), Vec<i64>> = BTreeMap::new();
        for (k, mask) in layout.masks(weights) {
            let x = match layout.input_rotation(k.offset, k.baby) {
                Some(r) => rotate(&blocks[k.a], r),
                None => blocks[k.a].clone(),
            };
            let acc = giants
                .entry((k.b, k.half, k.giant))
                .or_insert_with(|| vec![0; N]);
            for s in 0..N {
                acc[s] += x[s] * mask[s];
            }
        }
        for ((b, half, giant), sum) in giants {
            let sum = match layout.giant_rotation(giant) {
                Some(r) => rotate(&sum, r),
                None => sum,
            };
            let acc = halves.entry((b, half)).or_insert_with(|| vec![0; N]);
            acc.iter_mut().zip(sum).for_each(|(a, s)| *a += s);
        }
        let mut out = vec![vec![0; N]; layout.n_out()];
        for ((b, half), sum) in halves {
            let sum = if half == Half::Cross {
                rotate(&sum, Rotation::Rows)
            } else {
                sum
            };
            out[b].iter_mut().zip(sum).for_each(|(a, s)| *a += s);
        }
        for block in &mut out {
            for r in layout.fold_rotations() {
                let moved = rotate(block, r);
                block.iter_mut().zip(moved).for_each(|(a, s)| *a += s);
            }
        }
        out
    }

    fn cases() -> Vec<(ConvShape, LayerSchedule)> {
        vec![
            // Two-row period with a partial last block.
            (shape(6, 80, 8, 3, 1), schedule(false, false, false, 1)),
            (shape(80, 6, 8, 3, 1), schedule(false, true, false, 4)),
            (shape(6, 20, 8, 3, 1), schedule(false, true, false, 2)),
            (shape(16, 16, 8, 3, 1), LayerSchedule::GAZELLE_CONV),
            // Stride phases of 3x3 and 1x1 convs, and the full-grid subsample.
            (shape(5, 12, 9, 3, 2), schedule(true, true, false, 2)),
            (shape(5, 12, 9, 3, 2), schedule(false, true, false, 1)),
            (shape(8, 16, 8, 1, 2), schedule(true, true, false, 4)),
            // Row folds: ResNet-20's stage 3, a period of two copies per
            // row, and outputs over two blocks.
            (shape(64, 64, 8, 3, 1), rows(2)),
            (shape(20, 12, 8, 3, 1), rows(4)),
            (shape(6, 80, 8, 3, 1), rows(1)),
            (
                shape(5, 12, 9, 3, 2),
                LayerSchedule {
                    phases: true,
                    ..rows(2)
                },
            ),
            // Matrix-vector products: Gazelle's hybrid and a folded BSGS.
            (shape(40, 10, 1, 1, 1), LayerSchedule::GAZELLE_FC),
            (shape(40, 10, 1, 1, 1), schedule(false, true, true, 4)),
            (shape(64, 10, 1, 1, 1), schedule(false, true, true, 8)),
        ]
    }

    #[test]
    fn every_schedule_computes_the_reference_convolution_in_the_slots() {
        for (i, (s, sched)) in cases().into_iter().enumerate() {
            let layout = PackingLayout::new(&s, N, sched).unwrap();
            let w = values(s.weight_len(), i as u64);
            let x = values(s.c_in * s.h * s.w, 100 + i as u64);
            let reference = conv_int(&layout.computed_shape(), &x, &w);
            let got = evaluate(&layout, &w, &x);
            for (b, block) in got.iter().enumerate() {
                let expected = layout.expected_output(&reference, b);
                let wrong = (0..N).find(|&slot| expected[slot].is_some_and(|e| e != block[slot]));
                assert!(
                    wrong.is_none(),
                    "{} under {}: block {b} slot {wrong:?}",
                    s.name,
                    sched.describe()
                );
            }
            // A client reading the blocks gets the layer's own output.
            let blocks: Vec<Option<Vec<i64>>> = got.into_iter().map(Some).collect();
            assert_eq!(
                layout.read_output(&blocks),
                conv_int(&s, &x, &w),
                "{} under {}",
                s.name,
                sched.describe()
            );
        }
    }

    #[test]
    fn each_weight_that_acts_is_in_one_positional_and_one_diagonal_group() {
        for (s, sched) in cases() {
            let layout = PackingLayout::new(&s, N, sched).unwrap();
            let acting = layout.placements(&vec![1u8; s.weight_len()]).count();
            let (mut positional, mut diagonal) = (vec![0; s.weight_len()], vec![0; s.weight_len()]);
            for (g, idx) in layout.groups(3) {
                let seen = match g {
                    PruneGroup::Positional { layer, .. } | PruneGroup::Diagonal { layer, .. } => {
                        assert_eq!(layer, 3);
                        if matches!(g, PruneGroup::Positional { .. }) {
                            &mut positional
                        } else {
                            &mut diagonal
                        }
                    }
                };
                idx.iter().for_each(|&i| seen[i] += 1);
            }
            assert!(
                positional.iter().chain(&diagonal).all(|&n| n <= 1),
                "{}",
                s.name
            );
            assert_eq!(positional.iter().sum::<usize>(), acting, "{}", s.name);
            assert_eq!(diagonal.iter().sum::<usize>(), acting, "{}", s.name);
        }
    }

    #[test]
    fn impossible_schedules_and_oversized_layers_are_refused() {
        let stride1 = shape(4, 4, 8, 3, 1);
        let e = PackingLayout::new(&stride1, N, schedule(true, true, false, 1)).unwrap_err();
        assert!(matches!(e, Error::ImpossibleSchedule { .. }), "{e}");
        let e = PackingLayout::new(&stride1, N, schedule(false, true, false, 3)).unwrap_err();
        assert!(matches!(e, Error::ImpossibleSchedule { .. }), "{e}");
        // A 128x128 grid needs 16384 slots per channel; N = 8192 rows hold 4096.
        let big = shape(1, 1, 128, 3, 1);
        let e = PackingLayout::new(&big, N, LayerSchedule::GAZELLE_CONV).unwrap_err();
        assert!(matches!(e, Error::LayerTooLarge { .. }), "{e}");
    }
}
