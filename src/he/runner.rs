//! A network on ciphertexts: every layer (convs, then the FC layer) planned,
//! run, verified and checked against the cost model's counts, one layer at
//! a time. The sweep and `explore he-bench` both run layers through here.

use serde::Serialize;

use super::HeError;
use super::context::HeContext;
use super::cost::LayerCost;
use super::layout::PackingLayout;
use super::network::HeCost;
use super::plan::{LayerPlan, LayerRun};
use crate::quant::QuantizedNet;

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

/// One layer to run: its layout, its integer weights (`[c_out, c_in, k,
/// k]`) and input (`[c_in, h, w]`), and what the cost model counts for it.
pub struct LayerJob<'a> {
    pub layout: PackingLayout,
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
        let plan = LayerPlan::new(ctx, job.layout, job.weights)?;
        let run = plan.run(ctx, job.input, repeats)?;
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
mod tests {
    use super::*;
    use crate::he::PrimitiveCosts;
    use crate::he::params::HeParams;

    #[test]
    fn a_whole_quantized_network_runs_encrypted_and_verified() {
        use crate::he::schedule::{Schedule, Scheduler};
        use crate::quant::tests::{images, random_net};
        let net = QuantizedNet::new(
            &random_net(9),
            crate::quant::tests::config(8),
            &images(2, 10),
        )
        .unwrap();
        let scheduler = Scheduler::new(
            Schedule::Best,
            None,
            crate::he::Hoisting::On,
            PrimitiveCosts::default(),
            8192,
        )
        .unwrap();
        let weights: Vec<Vec<i64>> = net.convs.iter().map(|l| l.weight.clone()).collect();
        let cost =
            crate::he::network_cost(&net.spec, &weights, &net.fc.weight, &scheduler).unwrap();
        let params = HeParams::new(8192, None, 8, 8, &net.spec.layer_shapes()).unwrap();
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
