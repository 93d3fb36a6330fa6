//! Where a training step's time goes: the host's batch preparation, moving
//! the batch to the device, the forward pass and loss, reading the loss and
//! accuracy back, the backward pass, summing the replicas' gradients, the
//! hook (penalty, masks, pruning) and the optimizer. A profiled run
//! synchronizes the device at every boundary, so an asynchronous backend's
//! work is charged to the part that queued it; that removes overlap, so a
//! profiled run is slower than a plain one and its parts, not its total,
//! are what it measures.

use std::fmt;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Milliseconds per part, summed over a run's steps. The replica parts
/// (upload to backward) run on every replica at once and count the mean
/// over the replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StepProfile {
    pub steps: usize,
    /// Gathering and augmenting the batch on the host.
    pub data_ms: f64,
    /// Forking a replica and moving its share of the batch to the device.
    pub upload_ms: f64,
    /// The forward pass and the loss (with distillation).
    pub forward_ms: f64,
    /// Reading the loss and the number right back to the host.
    pub readback_ms: f64,
    /// The backward pass.
    pub backward_ms: f64,
    /// Summing the replicas' gradients.
    pub gradients_ms: f64,
    /// The hook: its penalty's backward pass and what it does after the
    /// step (masks, pruning).
    pub hook_ms: f64,
    /// The SGD step.
    pub optimizer_ms: f64,
}

impl StepProfile {
    /// The parts' names and their milliseconds, in step order.
    pub fn parts(&self) -> [(&'static str, f64); 8] {
        [
            ("data", self.data_ms),
            ("upload", self.upload_ms),
            ("forward", self.forward_ms),
            ("readback", self.readback_ms),
            ("backward", self.backward_ms),
            ("gradients", self.gradients_ms),
            ("hook", self.hook_ms),
            ("optimizer", self.optimizer_ms),
        ]
    }

    /// Adds `other`'s parts scaled by `weight` (the steps stay).
    pub(crate) fn add(&mut self, other: &StepProfile, weight: f64) {
        self.data_ms += weight * other.data_ms;
        self.upload_ms += weight * other.upload_ms;
        self.forward_ms += weight * other.forward_ms;
        self.readback_ms += weight * other.readback_ms;
        self.backward_ms += weight * other.backward_ms;
        self.gradients_ms += weight * other.gradients_ms;
        self.hook_ms += weight * other.hook_ms;
        self.optimizer_ms += weight * other.optimizer_ms;
    }
}

/// One line per part: milliseconds per step and share of the profiled time.
impl fmt::Display for StepProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: f64 = self.parts().iter().map(|(_, ms)| ms).sum();
        let steps = self.steps.max(1) as f64;
        for (name, ms) in self.parts() {
            writeln!(
                f,
                "{name:<10} {:>9.2} ms/step {:>5.1} %",
                ms / steps,
                100.0 * ms / total.max(f64::MIN_POSITIVE)
            )?;
        }
        write!(f, "{:<10} {:>9.2} ms/step", "total", total / steps)
    }
}

/// A stopwatch over one thread's parts of a step; it does nothing when the
/// run is not profiled.
pub(crate) struct Laps<'a> {
    device: Option<&'a Device>,
    last: Instant,
    pub(crate) parts: StepProfile,
}

impl<'a> Laps<'a> {
    /// Laps on `device` when profiling, none otherwise.
    pub(crate) fn new(device: Option<&'a Device>) -> Laps<'a> {
        Laps {
            device,
            last: Instant::now(),
            parts: StepProfile::default(),
        }
    }

    /// Charges the time since the last lap to `part`, after the device has
    /// finished what was queued.
    pub(crate) fn lap(&mut self, part: fn(&mut StepProfile) -> &mut f64) {
        let Some(device) = self.device else { return };
        // A failed sync surfaces at the next operation that reads the device.
        let _ = device.sync();
        let now = Instant::now();
        *part(&mut self.parts) += (now - self.last).as_secs_f64() * 1e3;
        self.last = now;
    }
}

impl Laps<'_> {
    /// Starts the next lap now, charging the time since the last to no
    /// part (what other threads' laps measured).
    pub(crate) fn skip(&mut self) {
        self.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_with_weights_and_print_per_step() {
        let mut total = StepProfile {
            steps: 2,
            ..StepProfile::default()
        };
        let replica = StepProfile {
            forward_ms: 30.0,
            backward_ms: 50.0,
            ..StepProfile::default()
        };
        total.add(&replica, 0.5);
        total.add(&replica, 0.5);
        total.data_ms = 20.0;
        assert_eq!((total.forward_ms, total.backward_ms), (30.0, 50.0));
        let text = total.to_string();
        assert!(
            text.contains("forward        15.00 ms/step  30.0 %"),
            "{text}"
        );
        assert!(text.ends_with("total          50.00 ms/step"), "{text}");
    }

    #[test]
    fn laps_charge_nothing_without_a_device() {
        let mut laps = Laps::new(None);
        laps.lap(|p| &mut p.forward_ms);
        assert_eq!(laps.parts, StepProfile::default());
    }
}
