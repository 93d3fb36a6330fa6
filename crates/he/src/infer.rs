//! Private inference end to end: the whole integer network (convs,
//! residual blocks, FC) run as a client-server protocol on ciphertexts, one
//! round per linear layer (a block's first conv and its shortcut share one),
//! over test images. The server computes the linear layers. Under the
//! two-party [`Protocol`] (the default) each reply is masked, so client and
//! server hold additive shares of every layer's output, and the steps
//! between linear layers (requantization, ReLU, residual sums, pooling)
//! run on shares as garbled circuits (explore-private); under client-aided
//! the client decrypts exact outputs and computes those steps itself, as
//! the integer model does. Each round's outputs (the shares added up, in
//! the harness) are checked against the exact integer convolution, the
//! server's executed counts against the cost model, and each image's
//! logits against the integer model's; any difference is an error naming
//! the image and the layer. Time, bytes and rounds are measured per
//! inference, the HE layers and the two-party steps apart; the time on a
//! network link is computed from them ([`Link`]).

use std::time::Instant;

use serde::Serialize;

use explore_data::Dataset;
use explore_he_model::arch::NetSpec;
use explore_private::{
    Channel, ClientSteps, Modulus, Network, Plan, PrivateError, ServerSteps, Shares, Traffic,
    two_parties,
};
use explore_quant::{QuantError, QuantizedNet, Round, conv_int, logits_on, top1};
use explore_spec::{ConstantTimeError, HeSpec, KeysMode, Link, Protocol, ProtocolError};
use explore_stats::{mean, sample_sd};

use crate::protocol::{Client, Executed, Reply, ReplyShape, Server};
use explore_he_model::cost::KeySet;
use explore_he_model::network::{HeCost, network_cost};
use explore_he_model::noise::{Flooding, NoiseDepth};
use explore_he_model::schedule::Scheduler;

use crate::error::HeError;
use crate::params::{HeParams, HeParamsBuilder};
use crate::plan::Work;

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    He(#[from] HeError),
    #[error(transparent)]
    HeModel(#[from] explore_he_model::Error),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(transparent)]
    ConstantTime(#[from] ConstantTimeError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Private(#[from] PrivateError),
    #[error(
        "image {image}, layer {layer}: decrypted output {index} is {got}, the integer model computes {expected}"
    )]
    Mismatch {
        image: usize,
        layer: String,
        index: usize,
        got: i64,
        expected: i64,
    },
    #[error(
        "image {image}, layer {layer}: the server executed {executed} but the cost model counts {modeled}"
    )]
    Counts {
        image: usize,
        layer: String,
        executed: String,
        modeled: String,
    },
    #[error("image {image}, layer {layer}: {what}: the parties' records of the round disagree")]
    Records {
        image: usize,
        layer: String,
        what: String,
    },
    #[error("image {image}: the encrypted chain's logits differ from the integer model's")]
    Logits { image: usize },
    #[error(
        "{asked} images asked for (--images), the test set holds {available}: give 1 to {available}"
    )]
    Images { asked: usize, available: usize },
}

/// What the server publishes and holds for one network: the integer
/// network it computes, the packing (and cost) of each layer, the keys it
/// asks for, and how each layer's replies leave.
pub struct Deployment {
    pub protocol: Protocol,
    pub mode: KeysMode,
    /// Whether the server computes every block of the dense network
    /// (`he.constant_time`): then `cost` is the dense network's.
    pub constant_time: bool,
    pub net: QuantizedNet,
    pub cost: HeCost,
    pub keys: KeySet,
    /// The key sets of both modes, for the report.
    pub dense_keys: KeySet,
    pub live_keys: KeySet,
    pub replies: Vec<ReplyShape>,
    pub params: HeParams,
    pub flooding: Flooding,
}

impl Deployment {
    /// The deployment of `qnet` (quantized on the dense network's `spec`)
    /// under `scheduler`, as `he` (`keys`, `flooding`, `noise_margin`,
    /// `plaintext_bits`, `special_prime`) says. With [`KeysMode::Live`] the
    /// network is compacted and packed as its own weights choose (the
    /// sweep's counts); with [`KeysMode::Dense`] it keeps the dense
    /// network's shapes, packing and reply shapes, skipping only the zero
    /// masks, or none of them under constant time. Parameters: the fewest
    /// primes that hold the dense network's deepest layer and its flooded
    /// reply with `noise_margin` to spare, with a special prime for key
    /// switching where [`Scheduler::special_prime`] says (as asked, else
    /// without hoisting; never under coefficient encoding).
    pub fn new(
        qnet: &QuantizedNet,
        scheduler: &Scheduler,
        he: &HeSpec,
    ) -> Result<Deployment, InferError> {
        let (mode, flooding, margin_bits) = (he.keys, he.flooding, he.noise_margin);
        // The model's own rounding decides, whatever the spec says.
        let protocol = he.protocol.check(qnet.config.requantization)?;
        let constant_time = he.constant_time()?;
        let spec: &NetSpec = &qnet.spec;
        let dense = crate::dense_network_cost(spec, scheduler)?;
        let deployed = qnet.deployed();
        let weights = |n: &QuantizedNet| -> Vec<Vec<i64>> {
            n.convs.iter().map(|l| l.weight.clone()).collect()
        };
        let live = network_cost(
            &deployed.spec,
            &weights(&deployed),
            &deployed.fc.weight,
            scheduler,
        )?;
        let params = HeParamsBuilder::new(scheduler.poly_degree(), &spec.layer_shapes())
            .plaintext_bits(he.plaintext_bits)
            .quantization(qnet.config.weight_bits, qnet.config.activation_bits)
            .fewest_primes(dense.depth(), margin_bits, flooding)
            .special_prime(scheduler.special_prime(he.special_prime))
            .build()?;
        let (net, cost, keys, depths): (_, _, _, Vec<NoiseDepth>) = match mode {
            KeysMode::Live => {
                let depths = live.layers.iter().map(|r| r.depth).collect();
                (deployed, live.clone(), live.key_set.clone(), depths)
            }
            KeysMode::Dense => {
                // Under constant time the server does the dense network's
                // work, which is what the client's checks then count.
                let under = if constant_time {
                    dense.clone()
                } else {
                    explore_he_model::network::network_cost_under(
                        spec,
                        &weights(qnet),
                        &qnet.fc.weight,
                        scheduler,
                        &dense.layouts,
                    )?
                };
                let depths = dense.layers.iter().map(|r| r.depth).collect();
                (qnet.clone(), under, dense.key_set.clone(), depths)
            }
        };
        let (n, t, moduli, special) = (
            params.poly_degree,
            params.plaintext_bits,
            params.moduli_bits().to_vec(),
            params.special_bits,
        );
        let replies = depths
            .iter()
            .map(|d| ReplyShape {
                flood_bits: d.flood_bits(n, t, &moduli, special, flooding),
                primes: d
                    .reply_primes(n, t, &moduli, special, flooding, margin_bits)
                    .0,
            })
            .collect();
        Ok(Deployment {
            protocol,
            mode,
            constant_time,
            net,
            cost,
            keys,
            dense_keys: dense.key_set,
            live_keys: live.key_set,
            replies,
            params,
            flooding,
        })
    }

    /// The server's layers: layout, integer weights and reply shape.
    fn server_layers(&self) -> Vec<(explore_he_model::layer::LayerLayout, Vec<i64>, ReplyShape)> {
        let weights = self
            .net
            .convs
            .iter()
            .chain([&self.net.fc])
            .map(|l| l.weight.clone());
        self.cost
            .layouts
            .iter()
            .cloned()
            .zip(weights)
            .zip(&self.replies)
            .map(|((layout, w), r)| (layout, w, *r))
            .collect()
    }
}

/// One encrypted inference: the HE layers' party times (ms), bytes each
/// way and rounds, the smallest noise budget a reply had left, and under
/// the two-party protocol what its steps on shares cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Inference {
    pub server_ms: f64,
    pub client_ms: f64,
    /// The client's wall time from its first message to its logits, over
    /// the network the run used: measured, the parties' waits included.
    pub wall_ms: f64,
    pub bytes_up: usize,
    pub bytes_down: usize,
    pub rounds: usize,
    pub noise_budget_bits: i64,
    pub correct: bool,
    pub nonlinear: Option<Traffic>,
}

impl Inference {
    /// Bytes and rounds of the whole inference: the HE layers', and the
    /// two-party steps' (offline and online).
    fn totals(&self) -> (f64, f64, f64) {
        let gc = self.nonlinear.unwrap_or_default();
        (
            (self.bytes_up + gc.online_client_bytes) as f64,
            (self.bytes_down + gc.online_server_bytes + gc.offline_bytes) as f64,
            (self.rounds + gc.rounds) as f64,
        )
    }
}

/// A mean and a standard deviation over the images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Spread {
        let v: Vec<f64> = values.collect();
        Spread {
            mean: mean(&v).unwrap_or(0.0),
            sd: sample_sd(&v),
        }
    }
}

/// The two-party steps of the run (per inference; times as a spread over
/// the images).
#[derive(Debug, Clone, Serialize)]
pub struct NonlinearReport {
    pub relus: usize,
    pub and_gates: usize,
    /// Base OTs and garbled tables: independent of the input.
    pub offline_bytes: Spread,
    pub online_bytes: Spread,
    pub rounds: usize,
    pub server_ms: Spread,
    pub client_ms: Spread,
}

/// The whole run: what `explore infer` prints and the sweep records.
#[derive(Debug, Clone, Serialize)]
pub struct InferReport {
    pub protocol: Protocol,
    /// What carried the parties' messages.
    pub network: Network,
    /// Each inference's measured wall time over that network.
    pub wall_ms: Spread,
    pub images: usize,
    pub matches: usize,
    pub accuracy: f64,
    pub server_ms: Spread,
    pub client_ms: Spread,
    pub bytes_up: Spread,
    pub bytes_down: Spread,
    pub rounds: usize,
    pub keys_mode: KeysMode,
    /// Whether the server computed every block of the dense network.
    pub constant_time: bool,
    /// Distinct rotations (Galois elements) the client made keys for.
    pub keys: usize,
    /// Bytes of the one-time upload: the public key and those keys.
    pub key_bytes: usize,
    pub keys_dense: usize,
    pub key_bytes_dense: usize,
    pub keys_live: usize,
    pub key_bytes_live: usize,
    pub keygen_ms: f64,
    /// The server's encoded weights in memory (counted from its plans).
    pub server_weight_bytes: usize,
    pub rotations: usize,
    pub flooding_bits: u32,
    pub ciphertext_moduli: String,
    /// Primes each returned ciphertext keeps, smallest over the layers.
    pub reply_primes: usize,
    /// Bytes of one fresh ciphertext at the full modulus, for comparison.
    pub full_ciphertext_bytes: usize,
    pub noise_budget_bits: i64,
    /// The steps between linear layers on shares (the two-party protocol).
    pub nonlinear: Option<NonlinearReport>,
    /// Computed from the bytes and rounds of the HE layers and the
    /// two-party steps together (not measured on a link).
    pub lan_ms: f64,
    pub wan_ms: f64,
}

/// Runs `images` (indices into `data`) through the encrypted chain of
/// `dep`, one after another (so each inference's time is its own; blocks,
/// giant sums and ciphertexts within an inference run in parallel), the
/// client and the server in two threads over `network`, with `done`
/// called after each image.
pub fn run(
    dep: &Deployment,
    data: &Dataset,
    images: usize,
    network: Network,
    mut done: impl FnMut(&Inference),
) -> Result<InferReport, InferError> {
    if images == 0 || images > data.len() {
        return Err(InferError::Images {
            asked: images,
            available: data.len(),
        });
    }
    let net = &dep.net;
    let mut client = Client::new(dep.params.clone(), dep.cost.layouts.clone());
    let t = Instant::now();
    let upload = client.upload(&dep.keys)?;
    let keygen_ms = t.elapsed().as_secs_f64() * 1e3;
    let upload_of = |client: &mut Client, keys: &KeySet| -> Result<usize, HeError> {
        if *keys == dep.keys {
            Ok(upload.len())
        } else {
            Ok(client.upload(keys)?.len())
        }
    };
    let key_bytes_dense = upload_of(&mut client, &dep.dense_keys)?;
    let key_bytes_live = upload_of(&mut client, &dep.live_keys)?;
    let server = Server::new(
        dep.params.clone(),
        &upload,
        dep.server_layers(),
        net.rounds()?,
        dep.mode == KeysMode::Dense,
        if dep.constant_time {
            Work::Dense
        } else {
            Work::Pruned
        },
        dep.protocol,
    )?;
    // The circuits between layers, built once for every image.
    let plan = match dep.protocol {
        Protocol::TwoParty => Some(Plan::new(net, Modulus::new(dep.params.plaintext_modulus)?)?),
        Protocol::ClientAided => None,
    };
    let image_len = data.image_len();
    let reference = net.logits(&data.images[..images * image_len])?;
    let mut runs = Vec::with_capacity(images);
    for (i, expected) in reference.iter().enumerate() {
        let run = one_image(
            dep,
            network,
            &mut client,
            &server,
            plan.as_ref(),
            data.image(i),
            i,
        )?;
        let (logits, mut inference) = run;
        if logits != *expected {
            return Err(InferError::Logits { image: i });
        }
        inference.correct = top1(&logits) == data.labels[i] as usize;
        done(&inference);
        runs.push(inference);
    }
    let spread = |f: fn(&Inference) -> f64| Spread::of(runs.iter().map(f));
    let bytes_up = spread(|r| r.bytes_up as f64);
    let bytes_down = spread(|r| r.bytes_down as f64);
    let rounds = runs[0].rounds;
    let nonlinear = runs[0].nonlinear.map(|first| {
        let gc = |f: fn(&Traffic) -> f64| {
            Spread::of(runs.iter().filter_map(|r| r.nonlinear.as_ref()).map(f))
        };
        NonlinearReport {
            relus: first.relus,
            and_gates: first.and_gates,
            offline_bytes: gc(|g| g.offline_bytes as f64),
            online_bytes: gc(|g| (g.online_client_bytes + g.online_server_bytes) as f64),
            rounds: first.rounds,
            server_ms: gc(|g| g.server_ms),
            client_ms: gc(|g| g.client_ms),
        }
    });
    let total = |f: fn((f64, f64, f64)) -> f64| Spread::of(runs.iter().map(|r| f(r.totals()))).mean;
    let (up, down, all_rounds) = (total(|t| t.0), total(|t| t.1), total(|t| t.2));
    let p = &dep.params;
    let full_ciphertext_bytes = {
        let mut ctx = crate::context::HeContext::new(p.clone());
        use fhe_traits::Serialize as _;
        ctx.encrypt(&[0])?.to_bytes().len()
    };
    Ok(InferReport {
        protocol: dep.protocol,
        network,
        wall_ms: spread(|r| r.wall_ms),
        images,
        matches: runs.len(),
        accuracy: runs.iter().filter(|r| r.correct).count() as f64 / images as f64,
        server_ms: spread(|r| r.server_ms),
        client_ms: spread(|r| r.client_ms),
        lan_ms: Link::LAN.time_ms(up, down, all_rounds),
        wan_ms: Link::WAN.time_ms(up, down, all_rounds),
        bytes_up,
        bytes_down,
        rounds,
        keys_mode: dep.mode,
        constant_time: dep.constant_time,
        keys: dep.keys.rotations().len(),
        key_bytes: upload.len(),
        keys_dense: dep.dense_keys.rotations().len(),
        key_bytes_dense,
        keys_live: dep.live_keys.rotations().len(),
        key_bytes_live,
        keygen_ms,
        server_weight_bytes: server.encoded_bytes(),
        rotations: dep.cost.total.rotations(),
        flooding_bits: dep.flooding.0,
        ciphertext_moduli: p
            .moduli_bits()
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("+"),
        reply_primes: dep.replies.iter().map(|r| r.primes).min().unwrap_or(0),
        full_ciphertext_bytes,
        noise_budget_bits: runs.iter().map(|r| r.noise_budget_bits).min().unwrap_or(0),
        nonlinear,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// One round as one party saw it: its inputs and outputs of each layer of
/// the round (its shares mod t under the two-party protocol; under
/// client-aided the client's exact values, the server's empty), and on
/// the server what it executed.
struct Seen {
    layers: Vec<usize>,
    inputs: Vec<Vec<i64>>,
    outputs: Vec<Vec<i64>>,
    executed: Executed,
}

/// The client's half of one inference.
struct ClientRun {
    logits: Vec<f64>,
    seen: Vec<Seen>,
    bytes_up: usize,
    bytes_down: usize,
    budget: i64,
    /// Its own checks (noise budgets), timed apart and counted to no party.
    checks_ms: f64,
    /// From its first message to its logits, checks left out.
    wall_ms: f64,
    /// Time spent waiting on the channel.
    waited_ms: f64,
    traffic: Traffic,
}

/// The server's half of one inference.
struct ServerRun {
    seen: Vec<Seen>,
    /// Its HE layers' time.
    he_ms: f64,
    traffic: Traffic,
}

fn as_signed(values: &[u64]) -> Vec<i64> {
    values.iter().map(|&v| v as i64).collect()
}

/// One image through the chain, client and server in two threads over
/// `network`: its logits and what the inference cost. The harness then
/// adds up what each party saw and checks every round.
fn one_image(
    dep: &Deployment,
    network: Network,
    client: &mut Client,
    server: &Server,
    plan: Option<&Plan>,
    image: &[f32],
    i: usize,
) -> Result<(Vec<f64>, Inference), InferError> {
    let net = &dep.net;
    let (c, s): (ClientRun, ServerRun) = match plan {
        None => two_parties(
            network,
            |channel| client_aided(net, client, channel, image),
            |channel| {
                let mut session = server.session();
                let mut run = ServerRun {
                    seen: Vec::new(),
                    he_ms: 0.0,
                    traffic: Traffic::default(),
                };
                for _ in 0..server.rounds() {
                    let query = channel.recv()?;
                    let clock = Instant::now();
                    let (reply, executed) = session.answer(&query)?;
                    run.he_ms += ms(clock);
                    channel.send(reply)?;
                    run.seen.push(Seen {
                        layers: executed.iter().map(|(l, _)| *l).collect(),
                        inputs: Vec::new(),
                        outputs: Vec::new(),
                        executed,
                    });
                }
                Ok(run)
            },
        )?,
        Some(plan) => two_parties(
            network,
            |channel| two_party_client(plan, client, channel, image),
            |channel| two_party_server(plan, server, channel, image.len()),
        )?,
    };
    if c.seen.len() != s.seen.len() {
        return Err(InferError::Counts {
            image: i,
            layer: "every round".into(),
            executed: format!("{} rounds", s.seen.len()),
            modeled: format!("{} rounds asked for", c.seen.len()),
        });
    }
    let modulus = plan.map(|p| p.modulus);
    for (mine, theirs) in c.seen.iter().zip(&s.seen) {
        let disagree = |what: String| InferError::Records {
            image: i,
            layer: format!("{:?}", mine.layers),
            what,
        };
        if mine.layers != theirs.layers {
            return Err(disagree(format!("the server answered {:?}", theirs.layers)));
        }
        // The harness adds the shares up for its checks.
        let join = |a: &[Vec<i64>], b: &[Vec<i64>]| -> Result<Vec<Vec<i64>>, InferError> {
            let Some(m) = modulus else {
                return Ok(a.to_vec());
            };
            let lens = |v: &[Vec<i64>]| v.iter().map(Vec::len).collect::<Vec<_>>();
            if lens(a) != lens(b) {
                return Err(disagree(format!(
                    "shares of {:?} and {:?} values",
                    lens(a),
                    lens(b)
                )));
            }
            let residues = |v: &[i64]| v.iter().map(|&x| x as u64).collect();
            Ok(a.iter()
                .zip(b)
                .map(|(a, b)| {
                    Shares {
                        client: residues(a),
                        server: residues(b),
                    }
                    .reveal(m)
                })
                .collect())
        };
        let inputs = join(&mine.inputs, &theirs.inputs)?;
        let outputs = join(&mine.outputs, &theirs.outputs)?;
        check_round(dep, i, &mine.layers, (&inputs, &outputs), &theirs.executed)?;
    }
    let nonlinear = plan.map(|_| c.traffic.plus(s.traffic));
    let gc_client_ms = nonlinear.map_or(0.0, |g| g.client_ms);
    Ok((
        c.logits,
        Inference {
            server_ms: s.he_ms,
            client_ms: c.wall_ms - c.waited_ms - gc_client_ms,
            wall_ms: c.wall_ms,
            bytes_up: c.bytes_up,
            bytes_down: c.bytes_down,
            rounds: c.seen.len(),
            noise_budget_bits: c.budget,
            correct: false,
            nonlinear,
        },
    ))
}

impl ClientRun {
    fn new() -> ClientRun {
        ClientRun {
            logits: Vec::new(),
            seen: Vec::new(),
            bytes_up: 0,
            bytes_down: 0,
            budget: i64::MAX,
            checks_ms: 0.0,
            wall_ms: 0.0,
            waited_ms: 0.0,
            traffic: Traffic::default(),
        }
    }

    /// Sends a round's query and returns the reply's answers, with its
    /// noise budgets taken (timed apart).
    fn round(
        &mut self,
        client: &Client,
        channel: &Channel,
        query: &[u8],
    ) -> Result<Vec<Vec<i64>>, InferError> {
        channel.send(query)?;
        self.bytes_up += query.len();
        let reply = channel.recv()?;
        self.bytes_down += reply.len();
        let outputs = client.read(&reply)?.into_iter().map(|a| a.output).collect();
        let clock = Instant::now();
        let budgets = client.reply_budgets(&reply)?;
        self.budget = budgets.into_iter().fold(self.budget, i64::min);
        self.checks_ms += ms(clock);
        Ok(outputs)
    }

    fn finish(mut self, start: Instant, channel: &Channel, logits: Vec<f64>) -> ClientRun {
        self.wall_ms = ms(start) - self.checks_ms;
        self.waited_ms = channel.waited().as_secs_f64() * 1e3;
        self.logits = logits;
        self
    }
}

/// The client under client-aided: it decrypts each layer's exact outputs
/// and runs the integer model's steps itself.
fn client_aided(
    net: &QuantizedNet,
    client: &mut Client,
    channel: &Channel,
    image: &[f32],
) -> Result<ClientRun, InferError> {
    let start = Instant::now();
    let mut run = ClientRun::new();
    let logits = net.logits_with(image, &mut |round: &Round| -> Result<_, InferError> {
        let inputs: Vec<(usize, &[i64])> =
            round.iter().map(|(l, q)| (*l, q[0].as_slice())).collect();
        let query = client.query(run.seen.len(), &inputs)?;
        let outputs = run.round(client, channel, &query)?;
        run.seen.push(Seen {
            layers: inputs.iter().map(|(l, _)| *l).collect(),
            inputs: inputs.iter().map(|(_, x)| x.to_vec()).collect(),
            outputs: outputs.clone(),
            executed: Vec::new(),
        });
        Ok(outputs.into_iter().map(|o| vec![o]).collect())
    })?;
    Ok(run.finish(start, channel, logits))
}

/// The client under the two-party protocol: it encrypts its input shares,
/// decrypts masked replies into its output shares, and evaluates the
/// steps between layers as garbled circuits.
fn two_party_client(
    plan: &Plan,
    client: &mut Client,
    channel: &Channel,
    image: &[f32],
) -> Result<ClientRun, InferError> {
    let start = Instant::now();
    let modulus = plan.modulus;
    let mut run = ClientRun::new();
    let mut steps = ClientSteps::connect(plan, channel, &mut rand::rng())?;
    let mut logits = logits_on(&plan.spec, image, &mut steps, &mut |round: &Round<
        Vec<u64>,
    >|
     -> Result<
        Vec<Vec<Vec<u64>>>,
        InferError,
    > {
        let mine: Vec<(usize, &[u64])> = round.iter().map(|(l, x)| (*l, x[0].as_slice())).collect();
        let query = client.query_shares(run.seen.len(), &mine)?;
        let outputs: Vec<Vec<u64>> = run
            .round(client, channel, &query)?
            .into_iter()
            .map(|o| o.iter().map(|&v| modulus.reduce(v)).collect())
            .collect();
        run.seen.push(Seen {
            layers: mine.iter().map(|(l, _)| *l).collect(),
            inputs: mine.iter().map(|(_, x)| as_signed(x)).collect(),
            outputs: outputs.iter().map(|o| as_signed(o)).collect(),
            executed: Vec::new(),
        });
        Ok(outputs.into_iter().map(|o| vec![o]).collect())
    })?;
    run.traffic = steps.traffic();
    let logits = logits.pop().expect("one image");
    Ok(run.finish(start, channel, logits))
}

/// The server under the two-party protocol: it adds its input shares to
/// the client's encrypted ones, masks every reply, and garbles the steps
/// between layers. Its share of the image is zero: it sees no pixel.
fn two_party_server(
    plan: &Plan,
    server: &Server,
    channel: &Channel,
    image_len: usize,
) -> Result<ServerRun, InferError> {
    let mut session = server.session();
    let mut steps = ServerSteps::connect(plan, channel, &mut rand::rng())?;
    let mut run = ServerRun {
        seen: Vec::new(),
        he_ms: 0.0,
        traffic: Traffic::default(),
    };
    let zeros = vec![0.0; image_len];
    logits_on(&plan.spec, &zeros, &mut steps, &mut |round: &Round<
        Vec<u64>,
    >|
     -> Result<
        Vec<Vec<Vec<u64>>>,
        InferError,
    > {
        let own: Vec<&[u64]> = round.iter().map(|(_, x)| x[0].as_slice()).collect();
        let query = channel.recv()?;
        let clock = Instant::now();
        let Reply {
            bytes,
            executed,
            shares,
        } = session.answer_shares(&query, &own)?;
        run.he_ms += ms(clock);
        channel.send(bytes)?;
        run.seen.push(Seen {
            layers: round.iter().map(|(l, _)| *l).collect(),
            inputs: own.iter().map(|x| as_signed(x)).collect(),
            outputs: shares.iter().map(|o| as_signed(o)).collect(),
            executed,
        });
        Ok(shares.into_iter().map(|o| vec![o]).collect())
    })?;
    run.traffic = steps.traffic();
    Ok(run)
}

/// The harness's checks of one round of image `i`: the server's executed
/// counts against the cost model, and each layer's output (`outputs`, the
/// shares added up under the two-party protocol) against the exact
/// convolution of its input (`inputs`).
fn check_round(
    dep: &Deployment,
    i: usize,
    layers: &[usize],
    (inputs, outputs): (&[Vec<i64>], &[Vec<i64>]),
    executed: &Executed,
) -> Result<(), InferError> {
    let n = layers.len();
    if inputs.len() != n || outputs.len() != n {
        return Err(InferError::Records {
            image: i,
            layer: format!("{layers:?}"),
            what: format!("{} inputs and {} outputs", inputs.len(), outputs.len()),
        });
    }
    if executed.iter().map(|(l, _)| *l).ne(layers.iter().copied()) {
        return Err(InferError::Counts {
            image: i,
            layer: format!("{layers:?}"),
            executed: format!(
                "layers {:?}",
                executed.iter().map(|(l, _)| l).collect::<Vec<_>>()
            ),
            modeled: format!("layers {layers:?}"),
        });
    }
    for (((l, x), output), (_, cost)) in layers.iter().zip(inputs).zip(outputs).zip(executed) {
        let layer = dep.net.layer(*l);
        let modeled = &dep.cost.layers[*l].cost;
        if cost != modeled {
            return Err(InferError::Counts {
                image: i,
                layer: layer.shape.name.clone(),
                executed: format!("{cost:?}"),
                modeled: format!("{modeled:?}"),
            });
        }
        let shape = &layer.shape;
        if x.len() != shape.c_in * shape.h * shape.w {
            return Err(InferError::Records {
                image: i,
                layer: shape.name.clone(),
                what: format!("{} input values", x.len()),
            });
        }
        let expected = conv_int(shape, x, &layer.weight);
        if output.len() != expected.len() {
            return Err(InferError::Records {
                image: i,
                layer: shape.name.clone(),
                what: format!("{} outputs, the layer has {}", output.len(), expected.len()),
            });
        }
        if let Some(index) = (0..expected.len()).find(|&j| expected[j] != output[j]) {
            return Err(InferError::Mismatch {
                image: i,
                layer: layer.shape.name.clone(),
                index,
                got: output[index],
                expected: expected[index],
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use explore_he_model::arch::DatasetKind;
    use explore_he_model::schedule::{Hoisting, Schedule};
    use explore_quant::fixtures::{config, images, random_net};
    use explore_spec::ConstantTime;

    fn scheduler(hoisting: Hoisting) -> Scheduler {
        explore_he_model::fixtures::scheduler(Schedule::Best, hoisting)
    }

    /// The spec's `he` section with a 10-bit noise margin.
    fn he(keys: KeysMode, flooding: Flooding, special_prime: bool) -> HeSpec {
        HeSpec {
            keys,
            flooding,
            special_prime: Some(special_prime),
            noise_margin: 10.0,
            ..HeSpec::default()
        }
    }

    fn data(n: usize) -> Dataset {
        Dataset {
            kind: DatasetKind::FashionMnist,
            images: images(n, 21),
            labels: (0..n as u16).map(|i| i % 10).collect(),
        }
    }

    /// The random width-0.25 ResNet-20 of the quant tests with every second
    /// diagonal group (giant step > 0) of every conv, under the dense
    /// packing of `s`, pruned away.
    fn pruned_resnet(s: &Scheduler) -> QuantizedNet {
        let mut folded = random_net(3);
        let dense = crate::dense_network_cost(&folded.spec, s).unwrap();
        for (i, c) in folded.convs.iter_mut().enumerate() {
            let groups = dense.layouts[i].slots().expect("a slot schedule").groups(i);
            let diagonal = groups.iter().filter(
                |(g, _)| matches!(g, explore_he_model::layout::PruneGroup::Diagonal { giant, .. } if *giant > 0),
            );
            for (_, idx) in diagonal.step_by(2) {
                idx.iter().for_each(|&j| c.weight[j] = 0.0);
            }
        }
        QuantizedNet::new(&folded, config(8), &images(2, 10)).unwrap()
    }

    #[test]
    fn a_pruned_resnet_runs_as_a_chain_of_rounds_equal_to_the_integer_model() {
        let test = data(2);
        // Dense keys with flooding and a special prime asked for (the
        // default deployment but for constant time, so that pruning saves
        // work, and the key switching, which the default leaves off under
        // hoisting), then live keys without either, hoisted and not.
        for (mode, flooding, hoisting, special) in [
            (KeysMode::Dense, Flooding::DEFAULT, Hoisting::On, true),
            (KeysMode::Live, Flooding::OFF, Hoisting::Off, false),
        ] {
            let s = scheduler(hoisting);
            let net = pruned_resnet(&s);
            let blocks = net.spec.blocks.len();
            let he = HeSpec {
                constant_time: Some(ConstantTime::Off),
                ..he(mode, flooding, special)
            };
            let dep = Deployment::new(&net, &s, &he).unwrap();
            assert!(!dep.constant_time);
            assert_eq!(dep.params.special_bits.is_some(), special);
            let report = run(&dep, &test, 2, Network::Memory, |_| {}).unwrap();
            assert_eq!((report.images, report.matches), (2, 2));
            // conv0, two rounds per block (conv1 with its shortcut), the FC.
            assert_eq!(report.rounds, 2 + 2 * blocks);
            assert!(report.bytes_up.mean > 0.0 && report.bytes_down.mean > 0.0);
            assert_eq!(report.bytes_up.sd, 0.0, "every image sends the same bytes");
            assert!(report.reply_primes < dep.params.moduli_bits().len());
            assert!(report.noise_budget_bits > 0);
            let dense = crate::dense_network_cost(&net.spec, &s).unwrap();
            match mode {
                // The client is asked for the dense network's keys, and the
                // server still skips the pruned products.
                KeysMode::Dense => {
                    assert_eq!(report.keys, dense.keys);
                    assert!(report.rotations < dense.total.rotations());
                    // Flooding takes a prime: three ciphertext primes and
                    // the special prime, the table's four (fhe.rs's key
                    // switching needs all four as ciphertext primes).
                    assert_eq!(dep.params.moduli_bits().len(), 3);
                    assert_eq!(dep.params.special_bits, Some(55));
                }
                KeysMode::Live => {
                    assert!(report.keys <= report.keys_dense);
                    assert!(report.key_bytes < report.key_bytes_dense);
                    assert_eq!(dep.params.moduli_bits().len(), 3);
                }
            }
        }
    }

    /// Under constant time (the default with dense keys) the server does
    /// the dense network's work for a pruned one: the counts it must
    /// execute, layer by layer, are the dense network's, and every image
    /// runs with its executed counts checked against them round by round;
    /// without it the same network does less. Live keys refuse it.
    #[test]
    fn under_constant_time_a_pruned_network_costs_the_server_what_the_dense_one_does() {
        let s = scheduler(Hoisting::On);
        let net = pruned_resnet(&s);
        let dense = crate::dense_network_cost(&net.spec, &s).unwrap();
        let default = he(KeysMode::Dense, Flooding::DEFAULT, true);
        let dep = Deployment::new(&net, &s, &default).unwrap();
        assert!(dep.constant_time);
        assert_eq!(dep.cost.layers.len(), dense.layers.len());
        for (a, b) in dep.cost.layers.iter().zip(&dense.layers) {
            assert_eq!(a.cost, b.cost, "{}", a.layer);
        }
        let report = run(&dep, &data(1), 1, Network::Memory, |_| {}).unwrap();
        assert!(report.constant_time);
        assert_eq!(report.rotations, dense.total.rotations());
        let off = HeSpec {
            constant_time: Some(ConstantTime::Off),
            ..default.clone()
        };
        let pruned = Deployment::new(&net, &s, &off).unwrap();
        assert!(pruned.cost.total.rotations() < dense.total.rotations());
        assert!(pruned.cost.total.pmults < dense.total.pmults);
        let live = HeSpec {
            constant_time: Some(ConstantTime::On),
            ..he(KeysMode::Live, Flooding::DEFAULT, true)
        };
        assert!(matches!(
            Deployment::new(&net, &s, &live),
            Err(InferError::ConstantTime(_))
        ));
    }

    /// The dense baseline under coefficient encoding, deployed with dense
    /// keys, flooding and a special prime asked for: every
    /// image's logits equal the integer model's, the client uploads no
    /// rotation key, the server rotates nothing, and no special prime is
    /// taken since nothing switches keys.
    #[test]
    fn the_coefficient_baseline_runs_as_private_inference_without_keys() {
        let s = explore_he_model::fixtures::scheduler(Schedule::Coefficients, Hoisting::On);
        let mut folded = random_net(5);
        folded.convs[1]
            .weight
            .iter_mut()
            .step_by(2)
            .for_each(|w| *w = 0.0);
        let net = QuantizedNet::new(&folded, config(8), &images(2, 10)).unwrap();
        let dep = Deployment::new(&net, &s, &he(KeysMode::Dense, Flooding::DEFAULT, true)).unwrap();
        assert_eq!(dep.params.special_bits, None);
        assert_eq!(dep.keys, KeySet::default());
        let report = run(&dep, &data(2), 2, Network::Memory, |_| {}).unwrap();
        assert_eq!((report.images, report.matches), (2, 2));
        assert_eq!(
            (report.rotations, report.keys, report.keys_dense),
            (0, 0, 0)
        );
        // The upload is the public key alone, whichever key mode.
        assert_eq!(report.key_bytes, report.key_bytes_live);
        assert!(report.key_bytes < 400_000, "{} bytes", report.key_bytes);
        // Zero weights cost as much as any: the counts are the dense one's.
        let dense = crate::dense_network_cost(&net.spec, &s).unwrap();
        assert_eq!(dep.cost.total, dense.total);
        assert!(report.noise_budget_bits > 0);
    }

    #[test]
    fn a_network_without_residual_blocks_runs_as_two_rounds() {
        // conv0, ReLU, pooling and the FC: no blocks.
        let mut folded = random_net(4);
        folded.spec.convs.truncate(1);
        folded.spec.blocks.clear();
        folded.convs.truncate(1);
        let c = folded.spec.convs[0].c_out;
        folded.spec.fc.in_features = c;
        folded.fc_weight.truncate(c * folded.spec.fc.out_features);
        let net = QuantizedNet::new(&folded, config(8), &images(2, 10)).unwrap();
        let dep = Deployment::new(
            &net,
            &scheduler(Hoisting::On),
            &he(KeysMode::Dense, Flooding::DEFAULT, false),
        )
        .unwrap();
        // Over a real socket: the parties' threads exchange bytes only.
        let report = run(&dep, &data(3), 3, Network::Loopback, |_| {}).unwrap();
        assert_eq!((report.matches, report.rounds), (3, 2));
        assert_eq!(report.network, Network::Loopback);
        assert!(report.wall_ms.mean > report.server_ms.mean + report.client_ms.mean);
        // conv0's outputs and the pooled channels on shares, then the reveal.
        let relus = net.convs[0].shape.c_out * 28 * 28 + net.fc.shape.c_in;
        let gc = report.nonlinear.as_ref().expect("two-party by default");
        assert_eq!((gc.relus, gc.rounds), (relus, 3));
        // The client-aided baseline computes the same logits with no steps
        // on shares.
        let aided = HeSpec {
            protocol: Protocol::ClientAided,
            ..he(KeysMode::Dense, Flooding::DEFAULT, false)
        };
        let dep_aided = Deployment::new(&net, &scheduler(Hoisting::On), &aided).unwrap();
        let report = run(&dep_aided, &data(3), 3, Network::Loopback, |_| {}).unwrap();
        assert_eq!((report.matches, report.rounds), (3, 2));
        assert!(report.nonlinear.is_none());
        assert!(matches!(
            run(&dep, &data(3), 4, Network::Memory, |_| {}),
            Err(InferError::Images {
                asked: 4,
                available: 3
            })
        ));
    }

    #[test]
    fn link_time_is_round_trips_plus_bytes_at_the_rate() {
        // 20 rounds and 125 MB: 1 s of bytes on a LAN plus 10 ms of trips.
        let t = Link::LAN.time_ms(100e6, 25e6, 20.0);
        assert!((t - 1010.0).abs() < 1e-6, "{t}");
        assert!((Link::WAN.time_ms(0.0, 0.0, 3.0) - 120.0).abs() < 1e-9);
    }
}
