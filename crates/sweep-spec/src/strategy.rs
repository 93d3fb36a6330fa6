//! The pruning strategies and what a target measures: the one home of the
//! strategy names (specs, `points.csv`, the command line and errors all
//! read them from [`Strategy::ALL`]).

use serde::{Deserialize, Serialize};

/// How a network is pruned: not at all, by HE groups (positional, diagonal,
/// or both competing), or by the usual plaintext groups (single weights,
/// internal channels).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The unpruned model.
    #[default]
    Dense,
    Positional,
    Diagonal,
    Hybrid,
    Unstructured,
    Channel,
    /// The budget-matched dense control: the dense model trained on through
    /// the same phases as a pruning trajectory (regularization without a
    /// penalty, fine-tuning with distillation, QAT) with nothing pruned,
    /// snapshotted at every target, so each pruned point has a dense twin
    /// with its own number of optimizer steps. Added to every sweep.
    #[serde(rename = "dense-matched")]
    DenseMatched,
}

// `ALL` lists every strategy; new ones go last, since a shard's points are
// chosen by the strategy's place in it.
explore_he_model::named_enum!(Strategy: String, |s| {
        let names: Vec<&str> = Strategy::ALL.iter().map(|x| x.name()).collect();
        format!("unknown strategy `{s}`: use one of {}", names.join(", "))
    }, {
    Dense => "dense",
    Positional => "positional",
    Diagonal => "diagonal",
    Hybrid => "hybrid",
    Unstructured => "unstructured",
    Channel => "channel",
    DenseMatched => "dense-matched",
});

impl Strategy {
    /// The unpruned model and its budget-matched twin.
    pub fn is_dense(self) -> bool {
        matches!(self, Strategy::Dense | Strategy::DenseMatched)
    }
    /// Strategies whose groups are HE groups and so take the group-Lasso phase.
    pub fn is_he_aware(self) -> bool {
        matches!(
            self,
            Strategy::Positional | Strategy::Diagonal | Strategy::Hybrid
        )
    }
}
/// What a pruning target is a fraction of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetMetric {
    /// Fraction of prunable conv weights removed.
    Weights,
    /// Fraction of the dense model's rotations removed.
    Rotations,
}

/// The penalty weight `w_g` of an HE group in the group Lasso: the same for
/// all, the square root of its size, or the latency its removal saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupWeighting {
    Uniform,
    SqrtSize,
    HeCost,
}

/// The norm that ranks groups (and that the proximal Lasso shrinks): the raw
/// weights, or the BN-folded weights `W * gamma / sqrt(var + eps)` scaled by
/// the RMS of the layer's input. BatchNorm makes a conv's raw scale
/// arbitrary (shrinking a filter changes nothing it computes), so raw norms
/// compare layers on scales that mean nothing; the folded weights times the
/// input scale are, to first order, the size of the output change removing
/// the group makes, comparable across layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    Raw,
    #[default]
    Saliency,
}

/// How the group-Lasso phase applies its penalty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LassoMethod {
    /// A soft-threshold of every group after each optimizer step: exact
    /// zeros, and momentum never amplifies the penalty.
    #[default]
    Proximal,
    /// The penalty's subgradient added to the loss.
    Subgradient,
}
