//! A layer planned under the encoding its [`LayerLayout`] names: slots
//! ([`LayerPlan`], with the rotation keys it asks for) or coefficients
//! ([`CoefficientPlan`], with none). The runner and the protocol's server
//! hold layers as this one type, so a network under either encoding runs,
//! verifies and answers through the same code.

use fhe::bfv::Ciphertext;

use crate::coefficient::CoefficientPlan;
use crate::context::HeContext;
use crate::error::HeError;
use crate::keys::KeySource;
use crate::plan::{LayerPlan, Work};
use crate::runner::EncryptedLayer;
use explore_he_model::arch::ConvShape;
use explore_he_model::cost::LayerCost;
use explore_he_model::layer::LayerLayout;

/// One layer's encoded weights (and keys), under either encoding.
pub enum Plan {
    Slots(LayerPlan),
    Coefficients(CoefficientPlan),
}

impl Plan {
    /// Plans `layout` for `weights` (`[c_out, c_in, k, k]`), taking the keys
    /// a slot packing rotates with from `keys`. `work` chooses a slot
    /// packing's masks; coefficient encoding multiplies every weight
    /// polynomial whatever its values, so its work is always the dense one.
    pub fn new(
        keys: &mut impl KeySource,
        layout: LayerLayout,
        weights: &[i64],
        work: Work,
    ) -> Result<Plan, HeError> {
        Ok(match layout {
            LayerLayout::Slots(l) => Plan::Slots(LayerPlan::new(keys, l, weights, work)?),
            LayerLayout::Coefficients(l) => {
                Plan::Coefficients(CoefficientPlan::new(keys, l, weights)?)
            }
        })
    }

    pub fn shape(&self) -> &ConvShape {
        match self {
            Plan::Slots(p) => p.layout().shape(),
            Plan::Coefficients(p) => p.layout().shape(),
        }
    }

    /// The input ciphertexts the layer takes.
    pub fn n_in(&self) -> usize {
        match self {
            Plan::Slots(p) => p.layout().n_in(),
            Plan::Coefficients(p) => p.layout().input_ciphertexts(),
        }
    }

    /// The encoded weight plaintexts the server holds.
    pub fn plaintexts(&self) -> usize {
        match self {
            Plan::Slots(p) => p.plaintexts(),
            Plan::Coefficients(p) => p.plaintexts(),
        }
    }

    fn inner(&self) -> &(dyn EncryptedLayer + Sync) {
        match self {
            Plan::Slots(p) => p,
            Plan::Coefficients(p) => p,
        }
    }
}

impl EncryptedLayer for Plan {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn packing(&self) -> (String, usize) {
        self.inner().packing()
    }

    fn encrypt(&self, ctx: &mut HeContext, input: &[i64]) -> Result<Vec<Ciphertext>, HeError> {
        self.inner().encrypt(ctx, input)
    }

    fn evaluate(
        &self,
        inputs: &[Ciphertext],
    ) -> Result<(Vec<Option<Ciphertext>>, LayerCost), HeError> {
        self.inner().evaluate(inputs)
    }

    fn verify(
        &self,
        ctx: &HeContext,
        input: &[i64],
        outputs: &[Option<Ciphertext>],
    ) -> Result<i64, HeError> {
        self.inner().verify(ctx, input, outputs)
    }
}
