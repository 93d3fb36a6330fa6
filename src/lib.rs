//! explore: HE-aware pruning of convolutional networks (Artemis, arXiv 2310.01664).
//!
//! Pure math (Pareto fronts, statistics) lives beside the side-effecting
//! edges (data files, training with burn, encryption with fhe.rs, CSV,
//! plots), one concept per module. The HE model (architecture shapes,
//! packing layouts, schedules, the rotation cost model) is its own crate,
//! `explore-he-model`, that builds without any of them.

pub mod atomic;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod he;
pub mod infer;
pub mod model;
pub mod noise;
pub mod outcomes;
pub mod paired;
pub mod pareto;
pub mod plot;
pub mod points;
pub mod progress;
pub mod prune;
pub mod quant;
pub mod report;
pub mod stats;
pub mod sweep;
pub mod train;

/// Network shapes, from the HE model crate: every layer of the tool builds
/// from one [`arch::NetSpec`].
pub use explore_he_model::arch;
