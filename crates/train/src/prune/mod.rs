//! Pruning strategies: which weights form a group, how groups are weighted in
//! the group-Lasso penalty, and which groups a target removes.
//!
//! The HE-aware strategies take their groups from the layout each layer runs
//! under (the HE model's, the schedule the spec chooses for the dense
//! network): a positional group removes one rotated input (a kernel offset
//! and baby step of one input block), a diagonal group one giant-step
//! rotation and its plaintext multiplications. `hybrid` lets both kinds
//! compete on importance per unit of latency saved. The baselines are the
//! usual plaintext pruning: `unstructured` by single weights, `channel` by a
//! block's internal channels (a `conv1` filter with the `conv2` input slice
//! it feeds), which a deployment then removes. Masks are 0/1 per conv
//! weight, in `NetSpec::convs` order.

mod lasso;
mod pruner;

pub use lasso::{GradualPruning, GroupLasso, MaskHook, ProximalLasso, group_lasso_term};
pub use pruner::{Group, GroupKind, Mask, Pruner};
// The strategies' names and settings are the spec's, re-exported beside
// the pruner that reads them.
pub use explore_spec::strategy::{GroupWeighting, LassoMethod, Norm, Strategy, TargetMetric};

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(
        "target {0} is outside [0, 1): give the fraction removed, e.g. 0.8 (1.0 would remove everything)"
    )]
    BadTarget(f64),
    #[error(
        "strategy `{strategy}` cannot remove {target} of the {what}: at most {reachable:.3} while every layer keeps its last group; lower the target"
    )]
    Unreachable {
        strategy: Strategy,
        target: f64,
        what: &'static str,
        reachable: f64,
    },
    #[error(transparent)]
    Model(#[from] explore_he_model::Error),
}
