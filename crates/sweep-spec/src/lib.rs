//! The sweep spec of explore and the plain enums and configs it is built
//! from: one YAML file ([`Spec`], validated once by [`Spec::load`]) shared
//! by `explore train`, `prune` and `sweep`; the pruning strategies
//! ([`strategy`]), a training phase ([`training`]), quantization
//! ([`quant`]), the dataset ([`data`]), private-inference deployment
//! ([`inference`]), a sweep's points and shards ([`point`]), and the one
//! rule for writing result files ([`atomic`]).
//!
//! It depends on serde and the HE model alone, so the results layer reads
//! what a sweep wrote without compiling burn or fhe.

pub mod atomic;
pub mod data;
pub mod inference;
pub mod point;
pub mod quant;
pub mod spec;
pub mod strategy;
pub mod training;

pub use data::DataSpec;
pub use inference::{KeysMode, Link};
pub use point::{PointKey, Shard, point_keys};
pub use quant::{BITS, QuantConfig, QuantConfigError};
pub use spec::{DEFAULT_MARGIN, ModelSpec, Spec, SpecError};
pub use strategy::{GroupWeighting, LassoMethod, Norm, Strategy, TargetMetric};
pub use training::{Backend, LrSchedule, TrainConfig};
