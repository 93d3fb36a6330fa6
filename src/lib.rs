//! explore: HE-aware pruning of convolutional networks (Artemis, arXiv 2310.01664).
//!
//! Pure math (architecture shapes, packing layouts, the rotation cost model,
//! Pareto fronts) lives beside the side-effecting edges (data files, training
//! with burn, encryption with fhe.rs, CSV, plots), one concept per module.

pub mod arch;
pub mod atomic;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod he;
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
