//! How pruned networks recover, as a spec gives it: the fine-tuning phase
//! with its recovery budgets (`prune.finetune.epochs`, one or a list) and
//! BatchNorm recalibration ([`Finetune`]), and whether targets are pruned
//! one by one from the regularized model or along one trajectory
//! ([`PruneSchedule`]).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::{Mapping, Value};

use crate::training::TrainConfig;

/// The fine-tuning phase after pruning. Its `epochs` is a recovery budget
/// or a list of them: each budget is a point of its own (strategy, target,
/// budget, seed), so that accuracy can be read against recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Finetune {
    /// The phase at the first budget; [`Finetune::at`] gives it at another.
    pub train: TrainConfig,
    /// Recovery epochs to measure, in the spec's order.
    pub budgets: Vec<usize>,
    /// Batches run forward in training mode after the last mask update,
    /// with no weight update, so that BatchNorm's running statistics are
    /// those of the pruned network (0: none).
    pub bn_recalibration: usize,
}

impl Finetune {
    /// The phase with `epochs` of recovery.
    pub fn at(&self, epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            ..self.train.clone()
        }
    }

    /// Whether the spec measures more than one budget (then every pruned
    /// point's key names its budget).
    pub fn several(&self) -> bool {
        self.budgets.len() > 1
    }
}

/// `epochs` as written: one number or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Budgets {
    One(usize),
    Many(Vec<usize>),
}

impl<'de> Deserialize<'de> for Finetune {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Mapping::deserialize(d)?;
        let epochs = map
            .remove("epochs")
            .ok_or_else(|| D::Error::missing_field("epochs"))?;
        let budgets = match serde_yaml::from_value::<Budgets>(epochs) {
            Ok(Budgets::One(n)) => vec![n],
            Ok(Budgets::Many(list)) => list,
            Err(_) => {
                return Err(D::Error::custom(
                    "epochs must be a number of epochs or a list of them, e.g. 2 or [1, 2, 4, 8]",
                ));
            }
        };
        let bn_recalibration = match map.remove("bn_recalibration") {
            Some(v) => serde_yaml::from_value(v).map_err(|_| {
                D::Error::custom("bn_recalibration must be a number of batches, e.g. 50")
            })?,
            None => 0,
        };
        // The rest is an ordinary phase; an empty list is refused by
        // validation, which names the field.
        map.insert(
            "epochs".into(),
            budgets.first().copied().unwrap_or(0).into(),
        );
        let train = serde_yaml::from_value(Value::Mapping(map)).map_err(D::Error::custom)?;
        Ok(Finetune {
            train,
            budgets,
            bn_recalibration,
        })
    }
}

impl Serialize for Finetune {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut map = match serde_yaml::to_value(&self.train).map_err(S::Error::custom)? {
            Value::Mapping(map) => map,
            _ => unreachable!("a phase serializes as a mapping"),
        };
        let epochs = match self.budgets.as_slice() {
            [one] => Value::from(*one),
            many => Value::Sequence(many.iter().map(|&n| Value::from(n)).collect()),
        };
        map.insert("epochs".into(), epochs);
        if self.bn_recalibration > 0 {
            map.insert("bn_recalibration".into(), self.bn_recalibration.into());
        }
        map.serialize(s)
    }
}

/// How the targets of one strategy and seed are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PruneSchedule {
    /// Every target is pruned from the regularized model and recovers on
    /// its own budget, so budget and sparsity are not confounded.
    Independent,
    /// Each target is pruned on from the previous (lower) one, so a higher
    /// target has had every earlier target's fine-tuning too (needs
    /// `prune.gradual`; one budget).
    Trajectory,
}

explore_he_model::named_enum!(PruneSchedule: String, |s| format!("unknown pruning schedule `{s}`: use independent or trajectory"), {
    Independent => "independent",
    Trajectory => "trajectory",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_take_one_budget_or_a_list_and_round_trip() {
        let one: Finetune = serde_yaml::from_str("{epochs: 2, lr: 0.05, warmup: 0.1}").unwrap();
        assert_eq!((one.budgets.as_slice(), one.train.epochs), (&[2][..], 2));
        assert_eq!(one.bn_recalibration, 0);
        let many: Finetune =
            serde_yaml::from_str("{epochs: [1, 2, 4, 8], lr: 0.05, bn_recalibration: 20}").unwrap();
        assert_eq!(many.budgets, [1, 2, 4, 8]);
        assert_eq!((many.train.epochs, many.at(4).epochs), (1, 4));
        assert_eq!(many.bn_recalibration, 20);
        assert!(many.several() && !one.several());
        for f in [one, many] {
            let text = serde_yaml::to_string(&f).unwrap();
            assert_eq!(
                serde_yaml::from_str::<Finetune>(&text).unwrap(),
                f,
                "{text}"
            );
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(
                serde_json::from_str::<Finetune>(&json).unwrap(),
                f,
                "{json}"
            );
        }
    }

    #[test]
    fn a_bad_budget_or_field_names_the_fix() {
        let e = serde_yaml::from_str::<Finetune>("{epochs: two, lr: 0.1}").unwrap_err();
        assert!(e.to_string().contains("[1, 2, 4, 8]"), "{e}");
        let e = serde_yaml::from_str::<Finetune>("{epochs: 1, lr: 0.1, lrr: 2}").unwrap_err();
        assert!(e.to_string().contains("unknown field `lrr`"), "{e}");
        let e = serde_yaml::from_str::<Finetune>("{lr: 0.1}").unwrap_err();
        assert!(e.to_string().contains("epochs"), "{e}");
    }
}
