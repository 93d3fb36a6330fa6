//! Terminal progress: one set of bars per process, so the sweep's overall bar,
//! its current-point spinner, each training run's bar and a download's bar
//! redraw together instead of over each other.

use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar};

/// The process's bars; everything drawn to the terminal goes through them.
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Adds `bar` to the process's bars and returns it.
pub fn add(bar: ProgressBar) -> ProgressBar {
    bars().add(bar)
}
