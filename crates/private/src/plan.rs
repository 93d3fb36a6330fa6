//! The integer model's steps as circuits on shares: one [`ChannelCircuit`]
//! (a share ReLU) per output channel, its parameters from the channel's
//! [`Step`] and the bounds of its terms (the accumulator's from the
//! channel's weights, the shortcut's from its conv or the activation
//! range), and one [`MeanCircuit`] per pooled channel; all checked against
//! the plaintext modulus so that no shared value wraps. A [`Plan`] holds
//! them for a whole network, with what else both parties need and neither
//! has to compute from the weights.

use explore_gc::{Circuit, GcError, MeanParams, ReluParams, ShareInputs, Term};
use explore_he_model::arch::NetSpec;
use explore_quant::fixed::Step;
use explore_quant::{
    InputStep, LogitStep, QuantizedNet, Reader, Round, Shortcut, Steps, logits_on,
};

use crate::PrivateError;

/// The plaintext modulus t the shares live in, with its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulus {
    pub t: u64,
    pub bits: usize,
}

impl Modulus {
    /// An odd t of at most 62 bits (two shares' sum then fits a u64).
    pub fn new(t: u64) -> Result<Modulus, PrivateError> {
        let bits = (u64::BITS - t.leading_zeros()) as usize;
        if t < 3 || t.is_multiple_of(2) || bits > 62 {
            return Err(PrivateError::Modulus(t));
        }
        Ok(Modulus { t, bits })
    }

    /// `v` mod t.
    pub fn reduce(&self, v: i64) -> u64 {
        v.rem_euclid(self.t as i64) as u64
    }

    /// A residue read as signed: above (t - 1)/2 stands for y - t.
    pub fn signed(&self, y: u64) -> i64 {
        if y > (self.t - 1) / 2 {
            y as i64 - self.t as i64
        } else {
            y as i64
        }
    }

    /// (a + b) mod t.
    pub fn add(&self, a: u64, b: u64) -> u64 {
        (a + b) % self.t
    }

    /// (-a) mod t: the share that cancels a mask a.
    pub fn neg(&self, a: u64) -> u64 {
        (self.t - a % self.t) % self.t
    }

    /// The bytes of one residue on the wire.
    fn word(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Residues as sent: each in the fewest little-endian bytes t needs.
    pub fn to_bytes(&self, residues: &[u64]) -> Vec<u8> {
        let word = self.word();
        residues
            .iter()
            .flat_map(|r| r.to_le_bytes().into_iter().take(word))
            .collect()
    }

    /// Residues from `bytes`, each checked below t; `message` names the
    /// message in the error.
    pub fn from_bytes(&self, bytes: &[u8], message: &str) -> Result<Vec<u64>, PrivateError> {
        let word = self.word();
        if !bytes.len().is_multiple_of(word) {
            return Err(PrivateError::Message(format!(
                "{message}: {} bytes is not a whole number of {word}-byte residues",
                bytes.len()
            )));
        }
        bytes
            .chunks_exact(word)
            .map(|c| {
                let mut le = [0u8; 8];
                le[..word].copy_from_slice(c);
                let r = u64::from_le_bytes(le);
                if r < self.t {
                    Ok(r)
                } else {
                    Err(PrivateError::Message(format!(
                        "{message}: residue {r} is not below t = {}",
                        self.t
                    )))
                }
            })
            .collect()
    }
}

/// Everything between the linear layers of one network that both parties
/// hold: the architecture (the order of the rounds), the image's
/// quantization, each layer's channel circuits, pooling's circuits and the
/// logits' rescaling. It holds no weight; the circuits' constants (each
/// channel's rescaling and bias) are public to both parties, as the
/// circuits a garbler and an evaluator agree on are.
#[derive(Debug, Clone)]
pub struct Plan {
    pub modulus: Modulus,
    pub spec: NetSpec,
    pub input: InputStep,
    /// Per layer index, the circuits of the step that reads its
    /// accumulators, one per output channel (none for a shortcut conv,
    /// whose accumulators its block's second step reads, or the FC layer).
    layers: Vec<Vec<ChannelCircuit>>,
    /// One per pooled channel.
    pool: Vec<MeanCircuit>,
    pub logits: Vec<LogitStep>,
}

impl Plan {
    /// The plan of `net` at `modulus`: its forward pass is walked once
    /// with the steps recorded, so each layer's circuits are built for the
    /// shortcut and reader the pass gives it. A step whose bounds would
    /// wrap mod t is an error naming the layer and channel.
    pub fn new(net: &QuantizedNet, modulus: Modulus) -> Result<Plan, PrivateError> {
        let mut recorder = Recorder {
            net,
            plan: Plan {
                modulus,
                spec: net.spec.clone(),
                input: net.input_step(),
                layers: vec![Vec::new(); net.convs.len() + 1],
                pool: Vec::new(),
                logits: net.logit_steps(),
            },
            pooled_bound: Vec::new(),
        };
        let (c, h, w) = net.spec.dataset.input_shape();
        logits_on(
            &net.spec,
            &vec![0.0; c * h * w],
            &mut recorder,
            &mut |round: &Round<usize>| {
                Ok(round
                    .iter()
                    .map(|(l, xs)| {
                        let shape = &net.layer(*l).shape;
                        vec![shape.c_out * shape.out_h() * shape.out_w(); xs.len()]
                    })
                    .collect())
            },
        )?;
        Ok(recorder.plan)
    }

    /// The circuits of the step that reads layer `l`'s accumulators.
    pub fn layer(&self, l: usize) -> &[ChannelCircuit] {
        &self.layers[l]
    }

    /// Pooling's circuit per channel.
    pub fn pool(&self) -> &[MeanCircuit] {
        &self.pool
    }
}

/// The forward pass with values replaced by their counts per image,
/// building each step's circuits as the pass reaches it.
struct Recorder<'a> {
    net: &'a QuantizedNet,
    plan: Plan,
    /// Per channel, the largest value the last block passes to pooling.
    pooled_bound: Vec<u64>,
}

impl Recorder<'_> {
    /// Each channel's circuit, or the error naming `layer` and the channel.
    fn circuits<C>(
        &self,
        layer: &str,
        channels: impl Iterator<Item = Result<C, GcError>>,
    ) -> Result<Vec<C>, PrivateError> {
        channels
            .enumerate()
            .map(|(channel, c)| {
                c.map_err(|source| PrivateError::Step {
                    layer: layer.to_string(),
                    channel,
                    modulus: self.plan.modulus.t,
                    source,
                })
            })
            .collect()
    }
}

impl Steps<PrivateError> for Recorder<'_> {
    type Act = usize;
    type Int = usize;

    fn input(&mut self, image: Vec<f64>) -> Result<usize, PrivateError> {
        Ok(image.len())
    }

    fn quantize(&mut self, _: usize, xs: &[usize]) -> Result<Vec<usize>, PrivateError> {
        Ok(xs.to_vec())
    }

    fn output(
        &mut self,
        l: usize,
        acc: Vec<usize>,
        shortcut: Option<Shortcut<usize, usize>>,
        reader: Reader,
    ) -> Result<Vec<usize>, PrivateError> {
        let net = self.net;
        let modulus = self.plan.modulus;
        let kind = shortcut.as_ref().map(Shortcut::kind);
        let (acc_bounds, short_bounds) = net.term_bounds(l, kind);
        let short_bound = |o: usize| short_bounds.as_ref().map(|b| b[o]);
        let steps = net.steps(l, kind, reader);
        self.plan.layers[l] = self.circuits(
            &net.layer(l).shape.name,
            steps
                .iter()
                .enumerate()
                .map(|(o, step)| ChannelCircuit::new(step, acc_bounds[o], short_bound(o), modulus)),
        )?;
        if reader == Reader::Pool {
            self.pooled_bound = steps
                .iter()
                .enumerate()
                .map(|(o, s)| s.bound(acc_bounds[o], short_bound(o).unwrap_or(0)))
                .collect();
        }
        Ok(acc)
    }

    fn pool(&mut self, xs: Vec<usize>, channels: usize) -> Result<Vec<usize>, PrivateError> {
        let hw = xs.first().map_or(1, |&n| n / channels);
        let step = self.net.pool_step(hw);
        let modulus = self.plan.modulus;
        self.plan.pool = self.circuits(
            "pooling",
            self.pooled_bound
                .iter()
                .map(|&b| MeanCircuit::new(&step, hw, b, modulus)),
        )?;
        Ok(vec![channels; xs.len()])
    }

    fn logits(&mut self, acc: Vec<usize>) -> Result<Vec<Vec<f64>>, PrivateError> {
        Ok(acc.iter().map(|&n| vec![0.0; n]).collect())
    }
}

/// A circuit on shares, built once for many garblings, with the
/// parameters that lay out its inputs.
#[derive(Debug, Clone)]
pub struct Garbling<P> {
    pub params: P,
    pub circuit: Circuit,
}

impl<P: ShareInputs> Garbling<P> {
    fn of(params: P) -> Garbling<P> {
        Garbling {
            circuit: params.circuit(),
            params,
        }
    }
}

/// One output channel's step as a share ReLU.
pub type ChannelCircuit = Garbling<ReluParams>;

/// Pooling's step on one channel: the channel's values summed inside the
/// circuit (their shares' sum could wrap mod t), then the mean's step.
pub type MeanCircuit = Garbling<MeanParams>;

impl ChannelCircuit {
    /// The circuit of `step` when its accumulator lies within
    /// ±`acc_bound` and its shortcut term (if the step has one) within
    /// ±`short_bound`.
    pub fn new(
        step: &Step,
        acc_bound: u64,
        short_bound: Option<u64>,
        modulus: Modulus,
    ) -> Result<ChannelCircuit, GcError> {
        let term = |multiplier: i64, bound: u64| {
            // The integer model's multipliers come from positive scale
            // ratios; a negative one would be a bug upstream.
            u64::try_from(multiplier)
                .map(|multiplier| Term { multiplier, bound })
                .map_err(|_| GcError::ReluParams("a step's multiplier must be nonnegative"))
        };
        let acc = term(step.acc_multiplier, acc_bound)?;
        let short = short_bound
            .map(|b| term(step.short_multiplier, b))
            .transpose()?;
        let clamp = step.clamp.map(|c| c.max(0) as u64);
        Ok(Garbling::of(ReluParams::new(
            modulus.t,
            modulus.bits,
            acc,
            short,
            step.bias,
            step.shift,
            clamp,
        )?))
    }
}

impl MeanCircuit {
    /// The circuit of pooling's `step` (no bias, a clamp) over `count`
    /// values, each within `[0, bound]`.
    pub fn new(
        step: &Step,
        count: usize,
        bound: u64,
        modulus: Modulus,
    ) -> Result<MeanCircuit, GcError> {
        let (Ok(multiplier), 0, Some(clamp)) =
            (u64::try_from(step.acc_multiplier), step.bias, step.clamp)
        else {
            return Err(GcError::ReluParams(
                "a mean's step has a nonnegative multiplier, no bias and a clamp",
            ));
        };
        Ok(Garbling::of(MeanParams::new(
            modulus.t,
            modulus.bits,
            count,
            bound,
            multiplier,
            step.shift,
            clamp.max(0) as u64,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use explore_gc::share_relu_reference;

    use super::*;

    #[test]
    fn a_channel_circuit_computes_its_step_on_shares() {
        let modulus = Modulus::new(786_433).unwrap();
        let step = Step::new(0.013, Some(0.7), -0.4, Some(127));
        let c = ChannelCircuit::new(&step, 200_000, Some(127), modulus).unwrap();
        let mut r = 12_345u64;
        for (acc, short) in [
            (0i64, 0i64),
            (1_000, 3),
            (-5_000, 127),
            (199_999, -127),
            (31, 1),
        ] {
            // Shares that wrap and shares that do not.
            r = (r * 7_919 + 17) % modulus.t;
            let (a, b) = (r, modulus.reduce(acc - r as i64));
            let (c2, d) = (modulus.t - 1 - r, modulus.reduce(short + 1 + r as i64));
            let mask = (r * 3) % modulus.t;
            let share = share_relu_reference(&c.params, &[a, c2], &[b, d], mask);
            let z = modulus.reduce(share as i64 - mask as i64);
            assert_eq!(z as i64, step.apply(acc, short), "{acc} {short}");
        }
    }

    #[test]
    fn a_step_that_would_wrap_is_refused() {
        let modulus = Modulus::new(786_433).unwrap();
        let step = Step::new(0.013, None, 0.0, Some(127));
        // An accumulator bound beyond (t - 1)/2 cannot be read as signed.
        assert!(ChannelCircuit::new(&step, 400_000, None, modulus).is_err());
        // Unclamped, the largest output must stay below (t - 1)/2 too.
        let open = Step::new(3.0, None, 0.0, None);
        assert!(ChannelCircuit::new(&open, 200_000, None, modulus).is_err());
        assert!(Modulus::new(786_432).is_err());
        assert!(Modulus::new((1 << 63) + 1).is_err());
    }
}
