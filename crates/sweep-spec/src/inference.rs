//! How private inference is deployed: which Galois keys the client is asked
//! for ([`KeysMode`]) and the network links its measured bytes and rounds
//! are priced on ([`Link`]); the protocol itself is the `explore-he` crate.

use serde::{Deserialize, Serialize};

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
