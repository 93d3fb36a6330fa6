//! Homomorphic evaluation of a network's layers with BFV (fhe.rs): fhe.rs
//! parameters ([`params`]), keys and encryption ([`context`]), one layer
//! planned, run on ciphertexts, verified and timed ([`plan`]), or under
//! Cheetah's coefficient encoding, the baseline without rotations
//! ([`coefficient`]), a layer under either ([`layer`]), and a network
//! run layer by layer against the cost model ([`runner`]), a client and a
//! server that run layers as a private-inference protocol ([`protocol`]),
//! and private inference over whole images ([`infer`]), on top of the pure
//! HE model of the
//! `explore-he-model` crate (slot layout and prune groups, schedules, the
//! operation-count cost model of a layer and of a network), re-exported
//! here under its own module names.

pub mod coefficient;
pub mod context;
pub mod error;
pub mod hoist;
pub mod infer;
pub mod keys;
pub mod layer;
pub mod params;
pub mod plan;
pub mod protocol;
mod rows;
pub mod runner;

pub use explore_he_model::layer::LayerLayout;
pub use explore_he_model::{cost, layout, network, noise, plaintext, schedule};

pub use coefficient::CoefficientPlan;
pub use context::HeContext;
pub use cost::{KeySet, LayerCost, LayerPlanCost, PrimitiveCosts, conv_cost};
pub use error::HeError;
pub use keys::KeySource;
pub use layer::Plan;
pub use layout::{Half, LayerSchedule, PackingLayout, PruneGroup, Rotation};
pub use network::{HeCost, LayerRow, dense_network_cost, network_cost};
pub use noise::{Flooding, ModulusChoice, NoiseDepth};
pub use params::{HeParams, HeParamsBuilder};
pub use plan::{LayerPlan, Work};
pub use runner::{
    EncryptedLayer, LayerJob, LayerRun, NetworkRun, check_counts, run_layer, run_layers,
    run_network, verify,
};
pub use schedule::{Hoisting, Role, Schedule, Scheduler};
