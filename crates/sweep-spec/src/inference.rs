//! How private inference is deployed: what the client learns per layer
//! ([`Protocol`]), which Galois keys it is asked for ([`KeysMode`]),
//! whether the server's work follows the pruning ([`ConstantTime`]), and
//! the network links its measured bytes and rounds are priced on
//! ([`Link`]), and what carries the parties' messages ([`Network`]); the protocol itself is the `explore-he` crate.

use serde::{Deserialize, Serialize};

use crate::quant::Requantization;

/// Which Galois keys the client is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeysMode {
    /// Every rotation of the dense network under the schedule, and the
    /// dense network's packing: keys and packing say nothing about which
    /// weights the server pruned.
    #[default]
    Dense,
    /// Only the rotations the pruned network uses, under its own packing:
    /// fewer keys, but the key set and packing reveal the pruning pattern.
    Live,
}

explore_he_model::named_enum!(KeysMode: String, |s| format!("keys mode {s:?}: use dense or live"), {
    Dense => "dense",
    Live => "live",
});

/// What the client decrypts after each linear layer (`he.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The server adds a fresh uniform mask mod t to every slot of every
    /// reply and keeps its negation: the client decrypts an additive share,
    /// and ReLU and requantization run on shares as garbled circuits.
    /// Neither party sees an activation; the client learns the logits.
    #[default]
    TwoParty,
    /// The client decrypts each linear layer's exact output and computes
    /// everything between layers itself: one inference gives it every
    /// weight of the model. A baseline only.
    ClientAided,
}

explore_he_model::named_enum!(Protocol: String, |s| format!("protocol {s:?}: use two-party or client-aided"), {
    TwoParty => "two-party",
    ClientAided => "client-aided",
});

/// Why a protocol cannot run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The circuits on shares compute integer steps; a model that rescales
    /// in f64 has none to compute, so its logits would differ.
    #[error(
        "the two-party protocol evaluates the integer model's fixed-point steps on shares, but this model rescales in floating point (he.requantization: float): use he.requantization: fixed, or the client-aided protocol"
    )]
    FloatSteps,
}

impl Protocol {
    /// The protocol, if it can run a model under `requantization`.
    pub fn check(self, requantization: Requantization) -> Result<Protocol, ProtocolError> {
        match (self, requantization) {
            (Protocol::TwoParty, Requantization::Float) => Err(ProtocolError::FloatSteps),
            _ => Ok(self),
        }
    }
}

/// What carries the two parties' messages in `explore infer`
/// (`--network`): each party runs in its own thread and they exchange
/// only bytes, over an in-process channel or a real TCP socket on the
/// loopback interface, whose time per inference is then measured rather
/// than computed from bytes and rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    Memory,
    Loopback,
}

explore_he_model::named_enum!(Network: String, |s| format!("network {s:?}: use memory or loopback"), {
    Memory => "memory",
    Loopback => "loopback",
});

/// Whether the server computes every block the dense network computes
/// (`he.constant_time`), so that neither its time nor its replies' noise
/// says which weights it pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConstantTime {
    /// Every product, rotation and block of the dense network, pruned
    /// weights multiplied as zeros: the time of the dense network.
    On,
    /// Only the pruned network's nonzero products: pruning saves time, and
    /// the time per round reveals each layer's pruning.
    Off,
}

explore_he_model::named_enum!(ConstantTime: String, |s| format!("constant time {s:?}: use on or off"), {
    On => "on",
    Off => "off",
});

/// `on` asked for where hiding the pruning from the time means nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConstantTimeError {
    /// The live key set and packing already reveal the pruning, and there
    /// is no dense packing to compute.
    #[error(
        "constant time is on but the keys are live: live keys and packing reveal the pruning whatever the time; use dense keys, or constant time off"
    )]
    LiveKeys,
    /// The client-aided client decrypts every layer's exact output, from
    /// which it solves for the weights themselves.
    #[error(
        "constant time is on but the protocol is client-aided, which reveals the whole model to the client; use the two-party protocol, or constant time off"
    )]
    ClientAided,
}

impl ConstantTime {
    /// Whether the server computes the dense network's work: `asked`, else
    /// on under dense keys with the two-party protocol, off otherwise.
    pub fn resolve(
        asked: Option<ConstantTime>,
        keys: KeysMode,
        protocol: Protocol,
    ) -> Result<bool, ConstantTimeError> {
        match (asked, keys, protocol) {
            (Some(ConstantTime::On), KeysMode::Live, _) => Err(ConstantTimeError::LiveKeys),
            (Some(ConstantTime::On), _, Protocol::ClientAided) => {
                Err(ConstantTimeError::ClientAided)
            }
            (Some(c), _, _) => Ok(c == ConstantTime::On),
            (None, keys, protocol) => Ok(keys == KeysMode::Dense && protocol == Protocol::TwoParty),
        }
    }
}

/// A network link, for the time an inference's bytes and rounds would take
/// on it: computed from the measured bytes and rounds, not measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Link {
    pub name: &'static str,
    pub bits_per_second: f64,
    pub round_trip_ms: f64,
}

impl Link {
    /// A data-centre LAN: 1 Gbit/s, 0.5 ms round trip.
    pub const LAN: Link = Link {
        name: "LAN 1 Gbit/s, 0.5 ms RTT",
        bits_per_second: 1e9,
        round_trip_ms: 0.5,
    };
    /// A WAN: 100 Mbit/s, 40 ms round trip.
    pub const WAN: Link = Link {
        name: "WAN 100 Mbit/s, 40 ms RTT",
        bits_per_second: 1e8,
        round_trip_ms: 40.0,
    };

    /// One round trip per round plus the bytes at the link's rate.
    pub fn time_ms(&self, bytes_up: f64, bytes_down: f64, rounds: f64) -> f64 {
        rounds * self.round_trip_ms + (bytes_up + bytes_down) * 8.0 / self.bits_per_second * 1e3
    }
}
