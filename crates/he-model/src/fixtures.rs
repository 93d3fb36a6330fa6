//! Fixtures the tests and benches of several crates share, so that each
//! setting is written once: the scheduler at the ring degree the README's
//! figures use, a conv shape, and a layer schedule of the baby-step /
//! giant-step family. Built for tests and behind the `fixtures` feature
//! only.

use crate::arch::ConvShape;
use crate::cost::PrimitiveCosts;
use crate::layout::LayerSchedule;
use crate::schedule::{Hoisting, Schedule, Scheduler};

/// `schedule` with `hoisting` at N = 8192, baby steps chosen by the
/// schedule, priced with the default primitive costs.
pub fn scheduler(schedule: Schedule, hoisting: Hoisting) -> Scheduler {
    Scheduler::new(schedule, None, hoisting, PrimitiveCosts::default(), 8192)
        .expect("N = 8192 is a supported ring degree")
}

/// A square `k`x`k` conv from `c_in` to `c_out` channels on a `hw`x`hw`
/// grid, named after its shape.
pub fn shape(c_in: usize, c_out: usize, hw: usize, k: usize, stride: usize) -> ConvShape {
    ConvShape {
        name: format!("{c_in}to{c_out}k{k}s{stride}"),
        c_in,
        c_out,
        h: hw,
        w: hw,
        k,
        stride,
    }
}

/// A one-row, unhoisted schedule with the given choices.
pub fn schedule(phases: bool, replicate: bool, fold: bool, baby_step: usize) -> LayerSchedule {
    LayerSchedule {
        phases,
        replicate,
        fold,
        baby_step,
        rows: false,
        hoist: false,
    }
}
