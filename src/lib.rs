//! explore: HE-aware pruning of convolutional networks (Artemis, arXiv
//! 2310.01664).
//!
//! The layers are crates, each depending only on those below it: the HE
//! model and statistics as pure arithmetic (`explore-he-model`,
//! `explore-stats`), the sweep spec (`explore-spec`), datasets and the
//! integer model (`explore-data`, `explore-quant`), the results
//! (`explore-results`: tables, fronts, the gate, reports, plots), training
//! on burn (`explore-train`) and encrypted layers on fhe.rs (`explore-he`).
//! This crate runs a sweep over them ([`sweep`]); the binary is its command
//! line.

pub mod sweep;
