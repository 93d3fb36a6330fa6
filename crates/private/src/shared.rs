//! A forward pass of the integer model on additive shares, one half per
//! party: the client and the server each hold a share mod t of every
//! linear layer's input and accumulators, and every step between linear
//! layers runs as one garbled circuit per output value (a share ReLU per
//! channel's output, a share mean per pooled channel) that the server
//! garbles and the client evaluates. Both halves implement explore-quant's
//! [`Steps`], so each party runs the integer model's own forward pass (the
//! client from the architecture alone, [`Plan`]); the caller supplies the
//! linear layers on shares.
//!
//! The parties share no memory: each holds its own end of a [`Channel`] and
//! every message crosses it as bytes. Once per session the client starts
//! the base OTs and the server answers. Per garbled layer the client
//! sends its OT extension request for its share bits; the server, having
//! drawn a fresh mask r per output and garbled each output's circuit on its
//! own reserved tweaks and CSPRNG stream (in parallel), answers with the
//! garbled tables, the labels of its own bits and the OT reply; the client
//! evaluates and decodes (z + r) mod t, its new share, while the server's
//! is -r mod t. After the FC layer the server sends its shares and the
//! client reconstructs the accumulators, the inference's output, and
//! rescales them into logits.

use explore_gc::ot::base::{self, KAPPA};
use explore_gc::{
    BLOCK_BYTES, ExtReceiver, ExtSender, ExtendRequest, ExtendResponse, GarbledCircuit, GcError,
    ShareInputs, Tweaks, blocks_from_bytes, evaluate, from_bits, garble, send_evaluator_labels,
    write_blocks,
};
use explore_quant::{Reader, Shortcut, Steps};
use rand::rngs::StdRng;
use rand::{CryptoRng, Rng, SeedableRng};
use rayon::prelude::*;

use crate::PrivateError;
use crate::channel::Channel;
use crate::plan::{Garbling, Modulus, Plan};

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
/// which a server can send ahead); online the rest. Each party counts what
/// it sends and its own time; [`Traffic::plus`] joins the two halves.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Traffic {
    pub relus: usize,
    pub and_gates: usize,
    pub offline_bytes: usize,
    pub online_client_bytes: usize,
    pub online_server_bytes: usize,
    /// Messages the client waits for: one per garbled layer (its OT
    /// request, answered with the tables, labels and OT reply), and the
    /// output's reveal.
    pub rounds: usize,
    /// The server's garbling, masks, labels and OT replies.
    pub server_ms: f64,
    /// The client's OT requests, evaluation and decoding.
    pub client_ms: f64,
}

impl Traffic {
    /// Both parties' counts together.
    pub fn plus(self, other: Traffic) -> Traffic {
        Traffic {
            relus: self.relus + other.relus,
            and_gates: self.and_gates + other.and_gates,
            offline_bytes: self.offline_bytes + other.offline_bytes,
            online_client_bytes: self.online_client_bytes + other.online_client_bytes,
            online_server_bytes: self.online_server_bytes + other.online_server_bytes,
            rounds: self.rounds + other.rounds,
            server_ms: self.server_ms + other.server_ms,
            client_ms: self.client_ms + other.client_ms,
        }
    }
}

fn ms(since: std::time::Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// One circuit per output value of a garbled layer, with the party's own
/// share of each of the values it reads.
type Jobs<'c, P> = Vec<(&'c Garbling<P>, Vec<u64>)>;

/// Where each garbling's tables and each garbler's labels lie in a
/// layer's message: the tables side by side, then the labels.
struct Layout {
    table_lens: Vec<usize>,
    label_lens: Vec<usize>,
    tables: usize,
}

impl Layout {
    fn of<P>(jobs: &Jobs<'_, P>) -> Layout {
        let table_lens: Vec<usize> = jobs
            .iter()
            .map(|(g, _)| GarbledCircuit::wire_len(&g.circuit))
            .collect();
        let label_lens = jobs
            .iter()
            .map(|(g, _)| g.circuit.garbler_inputs() * BLOCK_BYTES)
            .collect();
        Layout {
            tables: table_lens.iter().sum(),
            table_lens,
            label_lens,
        }
    }

    fn len(&self) -> usize {
        self.tables + self.label_lens.iter().sum::<usize>()
    }
}

/// `bytes` cut into consecutive parts of `lens` bytes, to fill in parallel.
fn split<'b>(mut bytes: &'b mut [u8], lens: &[usize]) -> Vec<&'b mut [u8]> {
    lens.iter()
        .map(|&len| {
            let (part, rest) = std::mem::take(&mut bytes).split_at_mut(len);
            bytes = rest;
            part
        })
        .collect()
}

/// `bytes` cut into consecutive parts of `lens` bytes, to read in parallel.
fn pieces<'b>(mut bytes: &'b [u8], lens: &[usize]) -> Vec<&'b [u8]> {
    lens.iter()
        .map(|&len| {
            let (part, rest) = bytes.split_at(len);
            bytes = rest;
            part
        })
        .collect()
}

/// One party's side of the steps: how a layer of circuits runs, how an
/// image enters and how the logits leave.
pub trait Role {
    /// The party's new share of each job's output.
    fn garbled<P: ShareInputs + Sync>(
        &mut self,
        channel: &Channel,
        modulus: Modulus,
        jobs: Jobs<'_, P>,
    ) -> Result<Vec<u64>, PrivateError>;

    /// The party's share of the first layer's input.
    fn input(&self, plan: &Plan, image: &[f64]) -> Vec<u64>;

    /// The FC accumulators' shares as logits (the client's) or nothing
    /// (the server's).
    fn logits(
        &mut self,
        channel: &Channel,
        plan: &Plan,
        acc: &[u64],
    ) -> Result<Vec<f64>, PrivateError>;

    fn traffic(&mut self) -> &mut Traffic;
}

/// The server's role: it garbles with its own CSPRNG and tweaks, and
/// sends the evaluator's labels by OT extension.
pub struct Garbler {
    rng: StdRng,
    tweaks: Tweaks,
    sender: ExtSender,
    traffic: Traffic,
}

/// The client's role: it receives its labels by OT extension and
/// evaluates.
pub struct Evaluator {
    receiver: ExtReceiver,
    traffic: Traffic,
}

/// One party's half of the steps between linear layers, on its shares,
/// over its end of the channel.
pub struct PartySteps<'a, R> {
    plan: &'a Plan,
    channel: &'a Channel,
    role: R,
}

pub type ServerSteps<'a> = PartySteps<'a, Garbler>;
pub type ClientSteps<'a> = PartySteps<'a, Evaluator>;

impl<R: Role> PartySteps<'_, R> {
    /// What this party's steps have cost so far (its own half).
    pub fn traffic(&mut self) -> Traffic {
        *self.role.traffic()
    }
}

impl<'a> ServerSteps<'a> {
    /// The server's half of a session: it answers the client's base OTs,
    /// which set up the extension that serves every layer. `rng` must be a
    /// CSPRNG.
    pub fn connect<R: CryptoRng + ?Sized>(
        plan: &'a Plan,
        channel: &'a Channel,
        rng: &mut R,
    ) -> Result<ServerSteps<'a>, PrivateError> {
        let message = channel.recv()?;
        let clock = std::time::Instant::now();
        let (sender, reply) = ExtSender::setup(rng, &base::SenderMessage::from_bytes(&message)?);
        let reply = reply.to_bytes();
        let offline_bytes = reply.len();
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        // Public (each garbling sends its first gate), so drawn apart from
        // the seed of the masks.
        let tweaks = Tweaks::random(rng);
        let server_ms = ms(clock);
        channel.send(reply)?;
        Ok(PartySteps {
            plan,
            channel,
            role: Garbler {
                rng: StdRng::from_seed(seed),
                tweaks,
                sender,
                traffic: Traffic {
                    offline_bytes,
                    server_ms,
                    ..Traffic::default()
                },
            },
        })
    }
}

impl<'a> ClientSteps<'a> {
    /// The client's half of a session: it starts the base OTs. `rng` must
    /// be a CSPRNG.
    pub fn connect<R: CryptoRng + ?Sized>(
        plan: &'a Plan,
        channel: &'a Channel,
        rng: &mut R,
    ) -> Result<ClientSteps<'a>, PrivateError> {
        let clock = std::time::Instant::now();
        let (setup, message) = ExtReceiver::setup(rng);
        let message = message.to_bytes();
        let offline_bytes = message.len();
        let mut client_ms = ms(clock);
        channel.send(message)?;
        let reply = channel.recv()?;
        let clock = std::time::Instant::now();
        let receiver = setup.finish(&base::ReceiverMessage::from_bytes(&reply, KAPPA)?)?;
        client_ms += ms(clock);
        Ok(PartySteps {
            plan,
            channel,
            role: Evaluator {
                receiver,
                traffic: Traffic {
                    offline_bytes,
                    client_ms,
                    ..Traffic::default()
                },
            },
        })
    }
}

impl Role for Garbler {
    fn garbled<P: ShareInputs + Sync>(
        &mut self,
        channel: &Channel,
        modulus: Modulus,
        jobs: Jobs<'_, P>,
    ) -> Result<Vec<u64>, PrivateError> {
        let n = jobs.len();
        let clock = std::time::Instant::now();
        let masks: Vec<u64> = (0..n)
            .map(|_| self.rng.random_range(0..modulus.t))
            .collect();
        // Each garbling on its own tweaks and stream, so they run in
        // parallel.
        let streams = jobs
            .iter()
            .map(|(g, _)| {
                let tweaks = self.tweaks.reserve(g.circuit.and_gates())?;
                Ok((tweaks, StdRng::from_rng(&mut self.rng)))
            })
            .collect::<Result<Vec<_>, GcError>>()?;
        let (garbled, encodings): (Vec<GarbledCircuit>, Vec<_>) = streams
            .into_par_iter()
            .zip(&jobs)
            .map(|((mut tweaks, mut rng), (g, _))| garble(&g.circuit, &mut tweaks, &mut rng))
            .collect::<Result<Vec<_>, GcError>>()?
            .into_iter()
            .unzip();
        let own = encodings
            .par_iter()
            .zip(&jobs)
            .zip(&masks)
            .map(|((e, (g, shares)), &mask)| e.garbler_labels(&g.params.garbler_bits(shares, mask)))
            .collect::<Result<Vec<_>, GcError>>()?;
        // The tables, then the labels of the server's bits, each garbling's
        // written into its own part of one message in parallel.
        let layout = Layout::of(&jobs);
        let mut message = vec![0u8; layout.len()];
        let (tables, labels) = message.split_at_mut(layout.tables);
        garbled
            .par_iter()
            .zip(split(tables, &layout.table_lens))
            .for_each(|(g, out)| g.write_to(out));
        own.par_iter()
            .zip(split(labels, &layout.label_lens))
            .for_each(|(l, out)| write_blocks(l, out));
        let mut server_ms = ms(clock);

        let request = channel.recv()?;
        let clock = std::time::Instant::now();
        let response = send_evaluator_labels(
            &encodings,
            &mut self.sender,
            &ExtendRequest::from_bytes(&request)?,
        )?
        .to_bytes();
        server_ms += ms(clock);
        let online = message.len() - layout.tables + response.len();
        channel.send(message)?;
        channel.send(response)?;

        let traffic = &mut self.traffic;
        traffic.server_ms += server_ms;
        traffic.relus += n;
        traffic.and_gates += jobs
            .iter()
            .map(|(g, _)| g.circuit.and_gates())
            .sum::<usize>();
        traffic.offline_bytes += layout.tables;
        traffic.online_server_bytes += online;
        traffic.rounds += 1;
        Ok(masks.iter().map(|&r| modulus.neg(r)).collect())
    }

    /// The server's share of the image is zero.
    fn input(&self, _: &Plan, image: &[f64]) -> Vec<u64> {
        vec![0; image.len()]
    }

    /// Sends its shares; it learns no logit.
    fn logits(
        &mut self,
        channel: &Channel,
        plan: &Plan,
        acc: &[u64],
    ) -> Result<Vec<f64>, PrivateError> {
        let message = plan.modulus.to_bytes(acc);
        self.traffic.online_server_bytes += message.len();
        channel.send(message)?;
        self.traffic.rounds += 1;
        Ok(Vec::new())
    }

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

impl Role for Evaluator {
    fn garbled<P: ShareInputs + Sync>(
        &mut self,
        channel: &Channel,
        modulus: Modulus,
        jobs: Jobs<'_, P>,
    ) -> Result<Vec<u64>, PrivateError> {
        let clock = std::time::Instant::now();
        let bits: Vec<bool> = jobs
            .iter()
            .flat_map(|(g, shares)| g.params.evaluator_bits(shares))
            .collect();
        let (request, pending) = self.receiver.extend(&bits);
        let request = request.to_bytes();
        let mut client_ms = ms(clock);
        self.traffic.online_client_bytes += request.len();
        channel.send(request)?;

        let message = channel.recv()?;
        let response = channel.recv()?;
        let clock = std::time::Instant::now();
        let layout = Layout::of(&jobs);
        if message.len() != layout.len() {
            return Err(GcError::Message {
                message: "garbled circuits and labels of a layer",
                expected: layout.len(),
                got: message.len(),
            }
            .into());
        }
        let (tables, labels) = message.split_at(layout.tables);
        let garbled = pieces(tables, &layout.table_lens)
            .into_par_iter()
            .zip(&jobs)
            .map(|(bytes, (g, _))| Ok(GarbledCircuit::from_bytes(bytes, &g.circuit)?.0))
            .collect::<Result<Vec<_>, GcError>>()?;
        let theirs = pieces(labels, &layout.label_lens)
            .into_par_iter()
            .zip(&jobs)
            .map(|(bytes, (g, _))| {
                Ok(blocks_from_bytes(bytes, g.circuit.garbler_inputs(), "garbler labels")?.0)
            })
            .collect::<Result<Vec<_>, GcError>>()?;
        let labels = pending.finish(&ExtendResponse::from_bytes(&response, bits.len())?)?;
        let offsets: Vec<usize> = jobs
            .iter()
            .scan(0, |at, (g, _)| {
                let start = *at;
                *at += g.circuit.evaluator_inputs();
                Some(start)
            })
            .collect();
        let shares = garbled
            .par_iter()
            .zip(&theirs)
            .zip(&jobs)
            .zip(&offsets)
            .map(|(((garbling, theirs), (g, _)), &at)| {
                let c = &g.circuit;
                let mine = &labels[at..at + c.evaluator_inputs()];
                let outputs = evaluate(c, garbling, theirs, mine)?;
                Ok(from_bits(&garbling.decode(&outputs)?))
            })
            .collect::<Result<Vec<u64>, GcError>>()?;
        client_ms += ms(clock);
        self.traffic.client_ms += client_ms;
        // A decoded value at or above t means the garbling was not for
        // these shares.
        if let Some(&bad) = shares.iter().find(|&&s| s >= modulus.t) {
            return Err(PrivateError::Message(format!(
                "a garbled step decoded to {bad}, not below t = {}",
                modulus.t
            )));
        }
        Ok(shares)
    }

    /// The client's share is its quantized image.
    fn input(&self, plan: &Plan, image: &[f64]) -> Vec<u64> {
        plan.input
            .apply(image)
            .iter()
            .map(|&v| plan.modulus.reduce(v))
            .collect()
    }

    /// Reconstructs the accumulators from the server's shares and
    /// rescales each into its logit.
    fn logits(
        &mut self,
        channel: &Channel,
        plan: &Plan,
        acc: &[u64],
    ) -> Result<Vec<f64>, PrivateError> {
        let message = channel.recv()?;
        let theirs = plan
            .modulus
            .from_bytes(&message, "the server's output shares")?;
        if theirs.len() != acc.len() {
            return Err(PrivateError::Message(format!(
                "{} output shares, the FC layer has {}",
                theirs.len(),
                acc.len()
            )));
        }
        let shares = Shares {
            client: acc.to_vec(),
            server: theirs,
        };
        Ok(shares
            .reveal(plan.modulus)
            .iter()
            .zip(&plan.logits)
            .map(|(&v, l)| l.apply(v))
            .collect())
    }

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

/// Serves a forward pass whose error `E` holds a [`PrivateError`] (the
/// linear layers' own errors are the caller's). Each value is the party's
/// own share of it.
impl<E: From<PrivateError>, R: Role> Steps<E> for PartySteps<'_, R> {
    type Act = Vec<u64>;
    type Int = Vec<u64>;

    fn input(&mut self, image: Vec<f64>) -> Result<Vec<u64>, E> {
        Ok(self.role.input(self.plan, &image))
    }

    fn quantize(&mut self, _: usize, xs: &[Vec<u64>]) -> Result<Vec<Vec<u64>>, E> {
        Ok(xs.to_vec())
    }

    /// The plan's circuits for layer `l` (built for the shortcut and the
    /// reader this pass gives it).
    fn output(
        &mut self,
        l: usize,
        acc: Vec<Vec<u64>>,
        shortcut: Option<Shortcut<Vec<u64>, Vec<u64>>>,
        _: Reader,
    ) -> Result<Vec<Vec<u64>>, E> {
        let circuits = self.plan.layer(l);
        let shorts = shortcut.map(|s| match s {
            Shortcut::Conv(_, v) => v,
            Shortcut::Identity { x, .. } => x,
        });
        acc.iter()
            .enumerate()
            .map(|(i, a)| {
                if circuits.is_empty() || !a.len().is_multiple_of(circuits.len()) {
                    return Err(PrivateError::Message(format!(
                        "layer {l}: {} accumulators for {} channel steps",
                        a.len(),
                        circuits.len()
                    ))
                    .into());
                }
                let hw = a.len() / circuits.len();
                let short = shorts.as_ref().map(|s| &s[i]);
                let jobs = (0..a.len())
                    .map(|j| {
                        let mut own = vec![a[j]];
                        own.extend(short.map(|s| s[j]));
                        (&circuits[j / hw], own)
                    })
                    .collect();
                Ok(self.role.garbled(self.channel, self.plan.modulus, jobs)?)
            })
            .collect()
    }

    /// Per channel, the mean of its values on shares (summed inside the
    /// circuit, where no sum wraps).
    fn pool(&mut self, xs: Vec<Vec<u64>>, channels: usize) -> Result<Vec<Vec<u64>>, E> {
        let circuits = self.plan.pool();
        if circuits.len() != channels {
            return Err(PrivateError::Message(format!(
                "pooling: {channels} channels for {} channel steps",
                circuits.len()
            ))
            .into());
        }
        xs.iter()
            .map(|x| {
                let hw = x.len() / channels.max(1);
                let jobs = (0..channels)
                    .map(|o| (&circuits[o], x[o * hw..(o + 1) * hw].to_vec()))
                    .collect();
                Ok(self.role.garbled(self.channel, self.plan.modulus, jobs)?)
            })
            .collect()
    }

    fn logits(&mut self, acc: Vec<Vec<u64>>) -> Result<Vec<Vec<f64>>, E> {
        acc.iter()
            .map(|a| Ok(self.role.logits(self.channel, self.plan, a)?))
            .collect()
    }
}
