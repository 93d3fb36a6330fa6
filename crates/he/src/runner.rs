//! A network on ciphertexts: every layer (convs, then the FC layer) planned,
//! run, verified and checked against the cost model's counts, one layer at
//! a time. The sweep and `explore he-bench` both run layers through here.

use std::time::Instant;

use fhe::bfv::Ciphertext;
use serde::Serialize;

use crate::context::HeContext;
use crate::error::HeError;
use crate::layer::Plan;
use crate::plan::{LayerPlan, Work};
use explore_he_model::cost::LayerCost;
use explore_he_model::layer::LayerLayout;
use explore_he_model::network::HeCost;
use explore_quant::QuantizedNet;

/// One layer's evaluation: the executor's own operation counts (keys = the
/// Galois keys it used) and the wall time of the encrypted evaluation only
/// (rotations, products and sums, with rayon over giant sums; not key
/// generation, encoding, encryption or decryption), minimum over repeats.
/// It exists only when every output decrypted to the integer reference.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRun {
    pub layer: String,
    pub schedule: String,
    pub baby_step: usize,
    pub executed: LayerCost,
    pub measured_ms: f64,
    /// Smallest remaining noise budget over the output ciphertexts, in bits.
    pub noise_budget_bits: i64,
}

/// A layer the runner encrypts an input for, evaluates on ciphertexts and
/// verifies: slot-packed ([`LayerPlan`]) or coefficient-encoded
/// ([`crate::coefficient::CoefficientPlan`]).
pub trait EncryptedLayer {
    fn name(&self) -> &str;
    /// How it is packed, for the report, and its baby step (0 without).
    fn packing(&self) -> (String, usize);
    /// The client's input ciphertexts of a `[c_in, h, w]` integer input.
    fn encrypt(&self, ctx: &mut HeContext, input: &[i64]) -> Result<Vec<Ciphertext>, HeError>;
    /// The output ciphertexts (`None`: known to decrypt to zeros) and the
    /// operations performed.
    fn evaluate(
        &self,
        inputs: &[Ciphertext],
    ) -> Result<(Vec<Option<Ciphertext>>, LayerCost), HeError>;
    /// Decrypts `outputs` and compares each output with the integer
    /// convolution of `input`; the smallest noise budget left.
    fn verify(
        &self,
        ctx: &HeContext,
        input: &[i64],
        outputs: &[Option<Ciphertext>],
    ) -> Result<i64, HeError>;
}

impl EncryptedLayer for LayerPlan {
    fn name(&self) -> &str {
        self.layout().name()
    }

    fn packing(&self) -> (String, usize) {
        let l = self.layout();
        (l.schedule().describe(), l.baby_step())
    }

    fn encrypt(&self, ctx: &mut HeContext, input: &[i64]) -> Result<Vec<Ciphertext>, HeError> {
        ctx.encrypt_input(self.layout(), input)
    }

    fn evaluate(
        &self,
        inputs: &[Ciphertext],
    ) -> Result<(Vec<Option<Ciphertext>>, LayerCost), HeError> {
        LayerPlan::evaluate(self, inputs)
    }

    fn verify(
        &self,
        ctx: &HeContext,
        input: &[i64],
        outputs: &[Option<Ciphertext>],
    ) -> Result<i64, HeError> {
        verify(ctx, self, input, outputs)
    }
}

/// Decrypts `outputs` of `plan` and compares every slot that holds an
/// output with the integer convolution of `input` (zeros where no channel
/// or pixel is). Returns the smallest noise budget left.
pub fn verify(
    ctx: &HeContext,
    plan: &LayerPlan,
    input: &[i64],
    outputs: &[Option<Ciphertext>],
) -> Result<i64, HeError> {
    let layout = plan.layout();
    let reference = plan.reference(input);
    let mut budget = i64::MAX;
    for (b, ct) in outputs.iter().enumerate() {
        let expected = layout.expected_output(&reference, b);
        let (got, block_budget) = match ct {
            Some(ct) => (ctx.decrypt(ct)?, ctx.noise_budget(ct)?),
            None => (vec![0; expected.len()], i64::MAX),
        };
        budget = budget.min(block_budget);
        let wrong = (0..expected.len()).find(|&s| expected[s].is_some_and(|e| e != got[s]));
        if let Some(slot) = wrong {
            return Err(HeError::Mismatch {
                layer: layout.name().to_string(),
                block: b,
                slot,
                expected: expected[slot].expect("a compared slot"),
                got: got[slot],
                noise_budget_bits: block_budget,
            });
        }
    }
    Ok(budget)
}

/// Encrypts `input`, evaluates `plan` `repeats` times (each run verified),
/// then verifies once more on a random full-range input, so a wrong mask on
/// a pixel the real input leaves at zero cannot pass, and reports the
/// counts and the fastest evaluation.
pub fn run_layer(
    ctx: &mut HeContext,
    plan: &impl EncryptedLayer,
    input: &[i64],
    repeats: usize,
) -> Result<LayerRun, HeError> {
    let inputs = plan.encrypt(ctx, input)?;
    let mut best = f64::INFINITY;
    let mut counted = None;
    let mut budget = i64::MAX;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let (outputs, executed) = plan.evaluate(&inputs)?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        budget = budget.min(plan.verify(ctx, input, &outputs)?);
        counted = Some(executed);
    }
    let random = ctx.random_values(input.len(), ctx.params().activation_bits);
    let encrypted = plan.encrypt(ctx, &random)?;
    let (outputs, _) = plan.evaluate(&encrypted)?;
    budget = budget.min(plan.verify(ctx, &random, &outputs)?);
    let (schedule, baby_step) = plan.packing();
    Ok(LayerRun {
        layer: plan.name().to_string(),
        schedule,
        baby_step,
        executed: counted.expect("at least one repeat"),
        measured_ms: best,
        noise_budget_bits: budget,
    })
}

/// Every layer of a network (convs, then the FC layer) run under encryption
/// on one image.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkRun {
    pub layers: Vec<LayerRun>,
    pub executed: LayerCost,
    /// Sum of the layers' measured times.
    pub measured_ms: f64,
}

impl NetworkRun {
    /// The smallest noise budget any layer left, in bits.
    pub fn noise_budget_bits(&self) -> i64 {
        self.layers
            .iter()
            .map(|l| l.noise_budget_bits)
            .min()
            .unwrap_or(i64::MAX)
    }
}

/// One layer to run: its layout (either encoding), its integer weights (`[c_out, c_in, k,
/// k]`) and input (`[c_in, h, w]`), and what the cost model counts for it.
pub struct LayerJob<'a> {
    pub layout: LayerLayout,
    pub weights: &'a [i64],
    pub input: &'a [i64],
    pub modeled: &'a LayerCost,
}

/// Runs `jobs` in order: each layer's plan (masks and keys) is built, its
/// input encrypted, evaluated `repeats` times and verified, and its executed
/// counts must equal the model's. Plans are built one layer at a time so
/// only one layer's plaintexts are held; `done` sees each verified layer.
pub fn run_layers<'a>(
    ctx: &mut HeContext,
    jobs: impl IntoIterator<Item = LayerJob<'a>>,
    repeats: usize,
    mut done: impl FnMut(&LayerRun),
) -> Result<NetworkRun, HeError> {
    let mut layers = Vec::new();
    for job in jobs {
        let layer = job.layout.name().to_string();
        let plan = Plan::new(ctx, job.layout, job.weights, Work::Pruned)?;
        let run = run_layer(ctx, &plan, job.input, repeats)?;
        check_counts(&run, &layer, job.modeled)?;
        done(&run);
        layers.push(run);
    }
    Ok(NetworkRun {
        executed: layers
            .iter()
            .map(|r| r.executed)
            .fold(LayerCost::default(), |a, b| a + b),
        measured_ms: layers.iter().map(|r| r.measured_ms).sum(),
        layers,
    })
}

/// Runs every layer of `net` on `image` (normalized `c*h*w` floats), each
/// under its layout in `cost` (the layouts `network_cost` chose for `net`'s
/// weights), with each layer's integer input from the quantized forward
/// pass.
pub fn run_network(
    ctx: &mut HeContext,
    net: &QuantizedNet,
    cost: &HeCost,
    image: &[f32],
    repeats: usize,
) -> Result<NetworkRun, HeError> {
    let inputs = net.layer_inputs(image)?;
    let weights = net.convs.iter().chain([&net.fc]).map(|l| &l.weight);
    let jobs = weights
        .zip(&inputs)
        .zip(cost.layouts.iter().zip(&cost.layers))
        .map(|((weights, input), (layout, row))| LayerJob {
            layout: layout.clone(),
            weights,
            input,
            modeled: &row.cost,
        });
    run_layers(ctx, jobs, repeats, |_| {})
}

/// The rule that makes counts trustworthy: what the executor performed on a
/// layer equals what the cost model counts for it.
pub fn check_counts(run: &LayerRun, layer: &str, modeled: &LayerCost) -> Result<(), HeError> {
    if run.executed == *modeled {
        Ok(())
    } else {
        Err(HeError::CountMismatch {
            layer: layer.to_string(),
            executed: format!("{:?}", run.executed),
            modeled: format!("{modeled:?}"),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    use crate::params::HeParamsBuilder;
    use explore_he_model::arch::ConvShape;
    use explore_he_model::cost::conv_cost;
    pub(crate) use explore_he_model::fixtures::{schedule, shape};
    use explore_he_model::layout::{LayerSchedule, PackingLayout, PruneGroup};
    use explore_quant::max_magnitude;

    pub(crate) fn random(len: usize, bits: u32, seed: u64) -> Vec<i64> {
        let m = max_magnitude(bits) as i64;
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-m..=m)).collect()
    }

    pub(crate) fn context(layers: &[ConvShape]) -> HeContext {
        HeContext::new(HeParamsBuilder::new(8192, layers).build().unwrap())
    }

    /// Keys at `QP`: the table's last prime as the special prime.
    pub(crate) fn special_prime_context(layers: &[ConvShape]) -> HeContext {
        let params = HeParamsBuilder::new(8192, layers).special_prime(true);
        HeContext::new(params.build().unwrap())
    }

    /// Runs a layer and checks executed counts against the cost model.
    fn run_and_count(
        ctx: &mut HeContext,
        layout: &PackingLayout,
        w: &[i64],
        x: &[i64],
    ) -> LayerRun {
        let plan = LayerPlan::new(ctx, layout.clone(), w, Work::Pruned).unwrap();
        let run = run_layer(ctx, &plan, x, 1).unwrap();
        assert_eq!(
            run.executed,
            conv_cost(layout, w).cost,
            "{} under {:?}",
            layout.name(),
            layout.schedule()
        );
        assert!(run.noise_budget_bits > 0);
        // The worst-case bound never promises more budget than is measured.
        let p = ctx.params();
        let bound = conv_cost(layout, w).depth.budget_bits(
            p.poly_degree,
            p.plaintext_bits,
            p.moduli_bits(),
            p.special_bits,
        );
        assert!(
            run.noise_budget_bits as f64 >= bound.floor(),
            "{}: {} bits measured, {bound:.1} by the bound",
            layout.name(),
            run.noise_budget_bits
        );
        run
    }

    #[test]
    fn every_schedule_decrypts_exactly_with_modelled_counts() {
        // Small grids so N = 8192 holds many channel positions: two-row
        // periods with partial blocks, replicated periods, stride phases of
        // 3x3 and 1x1 convs, and a folded matrix-vector product.
        let cases = [
            (shape(6, 80, 8, 3, 1), schedule(false, false, false, 1)),
            (shape(80, 6, 8, 3, 1), schedule(false, true, false, 4)),
            (shape(6, 20, 8, 3, 1), schedule(false, true, false, 2)),
            (shape(5, 12, 9, 3, 2), schedule(true, true, false, 2)),
            (shape(5, 12, 9, 3, 2), schedule(false, true, false, 1)),
            (shape(8, 16, 8, 1, 2), schedule(true, true, false, 4)),
            (
                shape(64, 64, 8, 3, 1),
                LayerSchedule {
                    rows: true,
                    ..schedule(false, true, false, 2)
                },
            ),
            (
                shape(6, 80, 8, 3, 1),
                LayerSchedule {
                    rows: true,
                    ..schedule(false, true, false, 1)
                },
            ),
            (shape(40, 10, 1, 1, 1), LayerSchedule::GAZELLE_FC),
            (shape(40, 10, 1, 1, 1), schedule(false, true, true, 4)),
        ];
        let shapes: Vec<ConvShape> = cases.iter().map(|c| c.0.clone()).collect();
        let mut contexts = [context(&shapes), special_prime_context(&shapes)];
        // Every case with and without hoisting, with and without a special
        // prime (where every rotation switches with the client's own keys,
        // hoisted or not).
        let cases = cases.iter().flat_map(|(s, sched)| {
            [(false, false), (true, false), (false, true), (true, true)]
                .map(|(h, special)| (s.clone(), sched.hoisted(h), special))
        });
        for (i, (s, sched, special)) in cases.enumerate() {
            let ctx = &mut contexts[usize::from(special)];
            let layout = PackingLayout::new(&s, 8192, sched).unwrap();
            let mut w = random(s.weight_len(), 8, i as u64);
            let x = random(s.c_in * s.h * s.w, 8, 100 + i as u64);
            let dense = run_and_count(ctx, &layout, &w, &x);
            if sched.hoist && dense.executed.rot_input > layout.n_in() {
                assert!(dense.executed.rot_hoisted > 0, "{}", s.name);
            }
            // Zero one positional group and two diagonal groups, run again.
            let groups = layout.groups(0);
            let positional = groups
                .iter()
                .filter(|(g, _)| matches!(g, PruneGroup::Positional { .. }))
                .nth(1);
            let diagonal = groups
                .iter()
                .filter(|(g, _)| matches!(g, PruneGroup::Diagonal { giant, .. } if *giant > 0))
                .take(2);
            for (_, idx) in positional.into_iter().chain(diagonal) {
                idx.iter().for_each(|&i| w[i] = 0);
            }
            let pruned = run_and_count(ctx, &layout, &w, &x);
            assert!(
                pruned.executed.rotations() < dense.executed.rotations(),
                "{}: {:?} -> {:?}",
                s.name,
                dense.executed,
                pruned.executed
            );
        }
    }

    #[test]
    fn a_corrupted_reference_is_a_mismatch() {
        let s = shape(4, 4, 4, 3, 1);
        let mut ctx = context(std::slice::from_ref(&s));
        let w = random(s.weight_len(), 8, 1);
        let x = random(4 * 16, 8, 2);
        let layout = PackingLayout::new(&s, 8192, schedule(false, true, false, 2)).unwrap();
        let plan = LayerPlan::new(&mut ctx, layout, &w, Work::Pruned).unwrap();
        let inputs = ctx.encrypt_input(plan.layout(), &x).unwrap();
        let (outputs, _) = plan.evaluate(&inputs).unwrap();
        let mut other = x.clone();
        other[5] += 1;
        let e = verify(&ctx, &plan, &other, &outputs).unwrap_err();
        assert!(matches!(e, HeError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn values_beyond_the_chosen_bits_are_refused() {
        let s = shape(2, 2, 4, 3, 1);
        let mut ctx = context(std::slice::from_ref(&s));
        let mut w = random(s.weight_len(), 8, 3);
        w[0] = 300;
        let layout = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV).unwrap();
        let e = LayerPlan::new(&mut ctx, layout, &w, Work::Pruned)
            .err()
            .unwrap();
        assert!(matches!(e, HeError::ValueRange { value: 300, .. }), "{e}");
    }

    #[test]
    fn a_whole_quantized_network_runs_encrypted_and_verified() {
        use explore_he_model::schedule::Schedule;
        use explore_quant::fixtures::{images, random_net};
        let net = QuantizedNet::new(
            &random_net(9),
            explore_quant::fixtures::config(8),
            &images(2, 10),
        )
        .unwrap();
        let scheduler = explore_he_model::fixtures::scheduler(
            Schedule::Best,
            explore_he_model::schedule::Hoisting::On,
        );
        let weights: Vec<Vec<i64>> = net.convs.iter().map(|l| l.weight.clone()).collect();
        let cost = explore_he_model::network::network_cost(
            &net.spec,
            &weights,
            &net.fc.weight,
            &scheduler,
        )
        .unwrap();
        let params = HeParamsBuilder::new(8192, &net.spec.layer_shapes())
            .build()
            .unwrap();
        let mut ctx = HeContext::new(params);
        let run = run_network(&mut ctx, &net, &cost, &images(1, 11), 1).unwrap();
        assert_eq!(
            run.layers.len(),
            net.convs.len() + 1,
            "every conv and the FC"
        );
        assert_eq!(run.executed, cost.total);
        assert!(run.measured_ms > 0.0);
    }
}
