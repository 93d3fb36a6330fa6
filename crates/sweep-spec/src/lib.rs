//! The sweep spec of explore and the plain enums and configs it is built
//! from: one YAML file ([`Spec`], validated once by [`Spec::load`]) shared
//! by `explore train`, `prune` and `sweep`; the pruning strategies
//! ([`strategy`]), a training phase ([`training`]), quantization
//! ([`quant`]), recovery after pruning ([`recovery`]), the dataset
//! ([`data`]), private-inference deployment
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
pub mod recovery;
pub mod spec;
pub mod strategy;
pub mod training;

pub use data::DataSpec;
pub use inference::{
    ConstantTime, ConstantTimeError, KeysMode, Link, Network, Protocol, ProtocolError,
};
pub use point::{PointKey, Shard, point_keys};
pub use quant::{BITS, QuantConfig, QuantConfigError};
pub use recovery::{Finetune, PruneSchedule};
pub use spec::{DEFAULT_HV_DROP, DEFAULT_MARGIN, HeSpec, ModelSpec, Spec, SpecError};
pub use strategy::{GroupWeighting, LassoMethod, Norm, Strategy, TargetMetric};
pub use training::{Backend, LrSchedule, PhaseKind, TrainConfig};

#[cfg(test)]
mod tests {
    use explore_he_model::arch::{Arch, DatasetKind};
    use explore_he_model::schedule::{Hoisting, Schedule};
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    /// Every variant's name (from `named_enum!`) is also its name in a spec
    /// (serde), and both parse back to the variant.
    fn names_agree<T>(all: &[T])
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr
            + Serialize
            + DeserializeOwned,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for &v in all {
            let name = v.to_string();
            assert_eq!(serde_yaml::to_string(&v).unwrap().trim(), name);
            assert_eq!(serde_yaml::from_str::<T>(&name).unwrap(), v);
            assert_eq!(name.parse::<T>().unwrap(), v);
        }
    }

    #[test]
    fn every_enum_has_one_name_in_specs_tables_and_the_command_line() {
        names_agree(&Strategy::ALL);
        names_agree(&Backend::ALL);
        names_agree(&KeysMode::ALL);
        names_agree(&ConstantTime::ALL);
        names_agree(&Schedule::ALL);
        names_agree(&Hoisting::ALL);
        names_agree(&Arch::ALL);
        names_agree(&DatasetKind::ALL);
    }

    #[test]
    fn unknown_names_are_refused_naming_the_choices() {
        let e = "densest".parse::<Strategy>().unwrap_err();
        assert!(e.contains("dense, positional, diagonal, hybrid"), "{e}");
        let e = "tpu".parse::<Backend>().unwrap_err();
        assert!(
            e.contains("use cpu, wgpu, cuda, libtorch or libtorch-cuda"),
            "{e}"
        );
        let e = "some".parse::<KeysMode>().unwrap_err();
        assert!(e.contains("use dense or live"), "{e}");
    }

    #[test]
    fn constant_time_defaults_to_the_key_mode_and_refuses_live_keys_and_client_aid() {
        use ConstantTime::{Off, On};
        use KeysMode::{Dense, Live};
        use Protocol::{ClientAided, TwoParty};
        let resolve = ConstantTime::resolve;
        assert_eq!(resolve(None, Dense, TwoParty), Ok(true));
        assert_eq!(resolve(None, Live, TwoParty), Ok(false));
        assert_eq!(resolve(None, Dense, ClientAided), Ok(false));
        assert_eq!(resolve(Some(Off), Dense, TwoParty), Ok(false));
        assert_eq!(resolve(Some(Off), Live, ClientAided), Ok(false));
        assert_eq!(resolve(Some(On), Dense, TwoParty), Ok(true));
        assert_eq!(
            resolve(Some(On), Live, TwoParty),
            Err(ConstantTimeError::LiveKeys)
        );
        assert_eq!(
            resolve(Some(On), Dense, ClientAided),
            Err(ConstantTimeError::ClientAided)
        );
        let e = "aided".parse::<Protocol>().unwrap_err();
        assert!(e.contains("use two-party or client-aided"), "{e}");
        assert_eq!("client-aided".parse(), Ok(ClientAided));
    }

    #[test]
    fn a_replicate_offsets_the_phase_seed_and_nothing_else() {
        let phase: TrainConfig = serde_yaml::from_str("{epochs: 2, lr: 0.1, seed: 7}").unwrap();
        let third = phase.for_replicate(2, PhaseKind::Dense);
        assert_eq!(third.seed, 9);
        assert_eq!(TrainConfig { seed: 7, ..third }, phase);
        assert_eq!(phase.for_replicate(0, PhaseKind::Dense), phase);
        // Every later phase of a replicate draws its own batch order.
        let kinds = [
            PhaseKind::Dense,
            PhaseKind::Regularization,
            PhaseKind::Finetune,
            PhaseKind::Qat,
        ];
        let phase = &phase;
        let seeds: std::collections::HashSet<u64> = kinds
            .iter()
            .flat_map(|&k| (0..10).map(move |r| phase.for_replicate(r, k).seed))
            .collect();
        assert_eq!(seeds.len(), 40);
    }
}
