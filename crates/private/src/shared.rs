//! A forward pass of the integer model on additive shares: the client and
//! the server each hold a share mod t of every linear layer's input and
//! accumulators, and every step between linear layers runs as one garbled
//! circuit per output value: a share ReLU per channel's output, a share
//! mean per pooled channel. [`SharedSteps`] implements explore-quant's
//! [`Steps`], so the forward pass (and its order of rounds) is the integer
//! model's own; the caller supplies the linear layers on shares.
//!
//! Both parties run in this process, each touching only its own state: the
//! server its shares, masks, garblings and OT sender; the client its shares,
//! OT receiver and what it is sent. Every OT message crosses as bytes
//! (`to_bytes`, then `from_bytes`), and [`Traffic`] counts what each party
//! sends. Per layer: the server draws a fresh mask r per output and garbles
//! each output's circuit on its own reserved tweaks and CSPRNG stream (in
//! parallel); the client obtains the labels of its bits by one OT
//! extension, evaluates, and decodes (z + r) mod t, its new share; the
//! server's is (t - r) mod t. After the FC layer the server sends its
//! shares and the client reconstructs the accumulators, the inference's
//! output, and rescales them into logits.

use explore_gc::ot::base::{self, KAPPA};
use explore_gc::{
    Block, Encoding, ExtReceiver, ExtSender, ExtendRequest, ExtendResponse, GarbledCircuit,
    GcError, ShareInputs, Tweaks, evaluate, from_bits, garble, send_evaluator_labels,
};
use explore_quant::{QuantizedNet, Reader, Shortcut, Steps};
use rand::rngs::StdRng;
use rand::{CryptoRng, Rng, SeedableRng};
use rayon::prelude::*;

use crate::PrivateError;
use crate::plan::{ChannelCircuit, Garbling, MeanCircuit, Modulus};

/// One circuit's inputs: each party's shares, in the circuit's order.
struct Inputs {
    client: Vec<u64>,
    server: Vec<u64>,
}

/// Additive shares mod t of one image's values: client + server = value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shares {
    pub client: Vec<u64>,
    pub server: Vec<u64>,
}

impl Shares {
    /// Fresh shares of `values`: the server's uniform, the client's the
    /// rest.
    pub fn split<R: Rng + ?Sized>(values: &[i64], modulus: Modulus, rng: &mut R) -> Shares {
        let server: Vec<u64> = values
            .iter()
            .map(|_| rng.random_range(0..modulus.t))
            .collect();
        let client = values
            .iter()
            .zip(&server)
            .map(|(&v, &s)| modulus.reduce(v - s as i64))
            .collect();
        Shares { client, server }
    }

    /// The shared values, read as signed.
    pub fn reveal(&self, modulus: Modulus) -> Vec<i64> {
        self.client
            .iter()
            .zip(&self.server)
            .map(|(&a, &b)| modulus.signed(modulus.add(a, b)))
            .collect()
    }
}

/// What the two-party steps of one session cost: share ReLUs, AND gates,
/// bytes each way, round trips, and each party's measured time. Offline is
/// what does not depend on the input (the base OTs, the garbled tables,
/// which a server can send ahead); online the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Traffic {
    pub relus: usize,
    pub and_gates: usize,
    pub offline_bytes: usize,
    pub online_client_bytes: usize,
    pub online_server_bytes: usize,
    /// Messages the client waits for: one per garbled layer (its OT
    /// request, answered with the labels), and the output's reveal.
    pub rounds: usize,
    /// The server's garbling, masks, labels and OT replies.
    pub server_ms: f64,
    /// The client's OT requests, evaluation and decoding.
    pub client_ms: f64,
}

/// The steps between linear layers, evaluated on shares by both parties
/// (see the module documentation).
pub struct SharedSteps<'a> {
    net: &'a QuantizedNet,
    modulus: Modulus,
    /// The server's CSPRNG: masks and the seeds of its garblings.
    server_rng: StdRng,
    tweaks: Tweaks,
    sender: ExtSender,
    receiver: ExtReceiver,
    /// Per channel, the largest value the last block passes to pooling.
    pooled_bound: Vec<u64>,
    pub traffic: Traffic,
}

fn ms(since: std::time::Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// The bytes of a wire label.
const LABEL_BYTES: usize = size_of::<Block>();

impl<'a> SharedSteps<'a> {
    /// A session: the base OTs between client and server, then the
    /// extension that serves every layer. `rng` must be a CSPRNG.
    pub fn new<R: CryptoRng + ?Sized>(
        net: &'a QuantizedNet,
        modulus: Modulus,
        rng: &mut R,
    ) -> Result<SharedSteps<'a>, PrivateError> {
        let (setup, message) = ExtReceiver::setup(rng);
        let message = message.to_bytes();
        let (sender, reply) = ExtSender::setup(rng, &base::SenderMessage::from_bytes(&message)?);
        let reply = reply.to_bytes();
        let receiver = setup.finish(&base::ReceiverMessage::from_bytes(&reply, KAPPA)?)?;
        Ok(SharedSteps {
            net,
            modulus,
            server_rng: {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                StdRng::from_seed(seed)
            },
            tweaks: Tweaks::new(),
            sender,
            receiver,
            pooled_bound: Vec::new(),
            traffic: Traffic {
                offline_bytes: message.len() + reply.len(),
                ..Traffic::default()
            },
        })
    }

    /// One garbled circuit per output value of one image: `job(j)` gives
    /// value j's circuit and its inputs, the client's shares and the
    /// server's. Returns the new shares.
    fn garbled<'c, P: ShareInputs + Sync + 'c>(
        &mut self,
        n: usize,
        job: impl Fn(usize) -> (&'c Garbling<P>, Inputs) + Sync,
    ) -> Result<Shares, PrivateError> {
        let t = self.modulus.t;
        // Each value's circuit and inputs, built once.
        let jobs: Vec<(&Garbling<P>, Inputs)> = (0..n).map(job).collect();
        let circuit = |j: usize| jobs[j].0;

        let clock = std::time::Instant::now();
        // Server: masks, and each garbling on its own tweaks and stream.
        let masks: Vec<u64> = (0..n).map(|_| self.server_rng.random_range(0..t)).collect();
        let streams = (0..n)
            .map(|j| {
                let tweaks = self.tweaks.reserve(circuit(j).circuit.and_gates())?;
                Ok((tweaks, StdRng::from_rng(&mut self.server_rng)))
            })
            .collect::<Result<Vec<_>, GcError>>()?;
        let (garbled, encodings): (Vec<GarbledCircuit>, Vec<Encoding>) = streams
            .into_par_iter()
            .enumerate()
            .map(|(j, (mut tweaks, mut rng))| garble(&circuit(j).circuit, &mut tweaks, &mut rng))
            .collect::<Result<Vec<_>, GcError>>()?
            .into_iter()
            .unzip();
        let garbler_labels = encodings
            .par_iter()
            .enumerate()
            .map(|(j, e)| {
                e.garbler_labels(&circuit(j).params.garbler_bits(&jobs[j].1.server, masks[j]))
            })
            .collect::<Result<Vec<_>, GcError>>()?;

        let mut server_ms = ms(clock);

        // Client: the labels of its bits by one OT extension.
        let clock = std::time::Instant::now();
        let bits: Vec<bool> = (0..n)
            .flat_map(|j| circuit(j).params.evaluator_bits(&jobs[j].1.client))
            .collect();
        let offsets: Vec<usize> = (0..n)
            .scan(0, |at, j| {
                let start = *at;
                *at += circuit(j).circuit.evaluator_inputs();
                Some(start)
            })
            .collect();
        let (request, pending) = self.receiver.extend(&bits);
        let request = request.to_bytes();
        let mut client_ms = ms(clock);
        let clock = std::time::Instant::now();
        let response = send_evaluator_labels(
            &encodings,
            &mut self.sender,
            &ExtendRequest::from_bytes(&request)?,
        )?;
        let response = response.to_bytes();
        server_ms += ms(clock);
        let clock = std::time::Instant::now();
        let labels = pending.finish(&ExtendResponse::from_bytes(&response, bits.len())?)?;

        // Client: evaluates and decodes its new share.
        let client = garbled
            .par_iter()
            .zip(&garbler_labels)
            .enumerate()
            .map(|(j, (g, own))| {
                let c = &circuit(j).circuit;
                let theirs = &labels[offsets[j]..offsets[j] + c.evaluator_inputs()];
                let outputs = evaluate(c, g, own, theirs)?;
                Ok(from_bits(&g.decode(&outputs)?))
            })
            .collect::<Result<Vec<u64>, GcError>>()?;
        client_ms += ms(clock);

        let traffic = &mut self.traffic;
        traffic.server_ms += server_ms;
        traffic.client_ms += client_ms;
        traffic.relus += n;
        traffic.and_gates += (0..n)
            .map(|j| circuit(j).circuit.and_gates())
            .sum::<usize>();
        traffic.offline_bytes += garbled.iter().map(GarbledCircuit::bytes).sum::<usize>();
        traffic.online_client_bytes += request.len();
        traffic.online_server_bytes +=
            response.len() + garbler_labels.iter().map(Vec::len).sum::<usize>() * LABEL_BYTES;
        traffic.rounds += 1;
        Ok(Shares {
            client,
            server: masks.iter().map(|&r| (t - r) % t).collect(),
        })
    }

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
                    modulus: self.modulus.t,
                    source,
                })
            })
            .collect()
    }
}

/// Serves a forward pass whose error `E` holds a [`PrivateError`] (the
/// linear layers' own errors are the caller's).
impl<E: From<PrivateError>> Steps<E> for SharedSteps<'_> {
    type Act = Shares;
    type Int = Shares;

    /// The client's quantized image is its share; the server's is zero.
    fn input(&mut self, image: Vec<f64>) -> Result<Shares, E> {
        let x = self.net.input(&image);
        Ok(Shares {
            client: x.iter().map(|&v| self.modulus.reduce(v)).collect(),
            server: vec![0; x.len()],
        })
    }

    fn quantize(&mut self, _: usize, xs: &[Shares]) -> Result<Vec<Shares>, E> {
        Ok(xs.to_vec())
    }

    fn output(
        &mut self,
        l: usize,
        acc: Vec<Shares>,
        shortcut: Option<Shortcut<Shares, Shares>>,
        reader: Reader,
    ) -> Result<Vec<Shares>, E> {
        let net = self.net;
        let kind = shortcut.as_ref().map(Shortcut::kind);
        let (acc_bounds, short_bounds) = net.term_bounds(l, kind);
        let short_bound = |o: usize| short_bounds.as_ref().map(|b| b[o]);
        let steps = net.steps(l, kind, reader);
        let layer = net.layer(l);
        let circuits = self.circuits(
            &layer.shape.name,
            steps.iter().enumerate().map(|(o, step)| {
                ChannelCircuit::new(step, acc_bounds[o], short_bound(o), self.modulus)
            }),
        )?;
        if reader == Reader::Pool {
            self.pooled_bound = steps
                .iter()
                .enumerate()
                .map(|(o, s)| s.bound(acc_bounds[o], short_bound(o).unwrap_or(0)))
                .collect();
        }
        let hw = layer.shape.out_h() * layer.shape.out_w();
        let shorts = shortcut.map(|s| match s {
            Shortcut::Conv(_, v) => v,
            Shortcut::Identity { x, .. } => x,
        });
        acc.iter()
            .enumerate()
            .map(|(i, a)| {
                let short = shorts.as_ref().map(|s| &s[i]);
                let job = |j: usize| {
                    let mut inputs = Inputs {
                        client: vec![a.client[j]],
                        server: vec![a.server[j]],
                    };
                    if let Some(s) = short {
                        inputs.client.push(s.client[j]);
                        inputs.server.push(s.server[j]);
                    }
                    (&circuits[j / hw], inputs)
                };
                Ok(self.garbled(a.client.len(), job)?)
            })
            .collect()
    }

    /// Per channel, the mean of its values on shares (summed inside the
    /// circuit, where no sum wraps).
    fn pool(&mut self, xs: Vec<Shares>, channels: usize) -> Result<Vec<Shares>, E> {
        let hw = xs.first().map_or(1, |x| x.client.len() / channels);
        let step = self.net.pool_step(hw);
        let circuits = self.circuits(
            "pooling",
            self.pooled_bound
                .iter()
                .map(|&b| MeanCircuit::new(&step, hw, b, self.modulus)),
        )?;
        xs.iter()
            .map(|x| {
                let job = |o: usize| {
                    let inputs = Inputs {
                        client: x.client[o * hw..(o + 1) * hw].to_vec(),
                        server: x.server[o * hw..(o + 1) * hw].to_vec(),
                    };
                    (&circuits[o], inputs)
                };
                Ok(self.garbled(channels, job)?)
            })
            .collect()
    }

    /// The server sends its shares of the FC accumulators; the client
    /// reconstructs them and rescales each into its logit.
    fn logits(&mut self, acc: Vec<Shares>) -> Result<Vec<Vec<f64>>, E> {
        let logits = self.net.logit_steps();
        let word = self.modulus.bits.div_ceil(8);
        Ok(acc
            .iter()
            .map(|a| {
                self.traffic.online_server_bytes += a.server.len() * word;
                self.traffic.rounds += 1;
                a.reveal(self.modulus)
                    .iter()
                    .zip(&logits)
                    .map(|(&v, l)| l.apply(v))
                    .collect()
            })
            .collect())
    }
}
