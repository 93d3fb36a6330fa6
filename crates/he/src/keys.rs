//! Where a layer plan gets its parameters and Galois keys: the one trait
//! that lets a plan run against the context that makes keys (a local run)
//! or against the keys a client uploaded (the server of private inference).

use std::collections::BTreeMap;
use std::sync::Arc;

use fhe::bfv::EvaluationKey;

use crate::error::HeError;
use crate::hoist::HoistedKey;
use crate::params::HeParams;
use explore_he_model::layout::Rotation;

/// Where a layer plan gets its parameters and Galois keys: a context that
/// makes the keys ([`crate::context::HeContext`]), or a server that holds the ones a client
/// uploaded. Either returns the keys it has of those asked for.
pub trait KeySource {
    fn params(&self) -> &HeParams;
    /// fhe.rs's keys, applied as a full key switch.
    fn full_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<EvaluationKey>>, HeError>;
    /// The keys rotations of a decomposed input use.
    fn hoisted_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<HoistedKey>>, HeError>;
}
