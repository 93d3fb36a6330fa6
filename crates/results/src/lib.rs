//! The results of a sweep, read and judged without the layers that made
//! them: the points table ([`points`]) and per-image outcomes
//! ([`outcomes`]), recovery budgets as an axis ([`budgets`]), Pareto
//! fronts and hypervolume ([`pareto`]), paired
//! comparisons with the budget-matched twin ([`paired`]) and between two
//! sweeps, the arms of an ablation ([`arms`]), training noise
//! over seeds ([`seed_noise`]), the regression gate behind `explore check`
//! ([`gate`]), the markdown report ([`report`]), text tables
//! ([`table`]), and the plots ([`plot`]).
//!
//! It builds on polars and plotters with the spec, statistics and HE-model
//! crates below it, and no burn or fhe: its tests compile and run without
//! training or encryption.

pub mod arms;
pub mod budgets;
pub mod gate;
pub mod outcomes;
pub mod paired;
pub mod pareto;
pub mod plot;
pub mod points;
pub mod report;
pub mod seed_noise;
pub mod table;
