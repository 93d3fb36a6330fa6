//! Which dataset a spec trains and tests on, and which part of it; the
//! loading is the `explore-data` crate.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use explore_he_model::arch::DatasetKind;

/// Which dataset a spec trains and tests on, and which part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub dataset: DatasetKind,
    /// Directory holding the dataset files; searched first.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Use a deterministic subset of this many training images (drawn from
    /// what the validation split leaves).
    #[serde(default)]
    pub train_size: Option<usize>,
    /// Hold out this many training images as the validation split: chosen
    /// deterministically from `seed`, stratified by class, disjoint from
    /// the training images. Every choice a sweep makes is made on it.
    /// (Left out of the serialized spec when absent, so output directories
    /// and dense caches of specs without one keep their keys.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
    #[serde(default)]
    pub test_size: Option<usize>,
    /// Seed of the subset choice.
    #[serde(default)]
    pub seed: u64,
    /// Download the official archive when the files are missing.
    #[serde(default = "crate::spec::yes")]
    pub download: bool,
}
