//! Training on burn: the ResNet and its BN folding and fake quantization
//! ([`model`]), SGD phases and evaluation on a device ([`train`]),
//! checkpoints ([`checkpoint`]), where a step's time goes ([`profile`]),
//! and HE-aware pruning with the group-Lasso
//! penalty ([`prune`]). What a phase is configured with and the strategies'
//! names are the spec crate's; the groups' HE costs come from the HE model.

pub mod checkpoint;
pub mod model;
pub mod profile;
pub mod prune;
pub mod train;
