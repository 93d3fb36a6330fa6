//! Checkpoints: one directory per trained model holding its weights
//! (`model.safetensors`), the [`NetSpec`] they belong to (`net.json`) and the
//! BN-folded weights the integer and HE models run (`folded.json`). This
//! module owns the file names, saving, loading and the shape check, so a
//! checkpoint cannot be read into another network.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use burn_store::{ModuleSnapshot, SafetensorsStore};

use crate::model::ResNet;
use explore_he_model::arch::{ConvShape, FoldedNet, NetSpec};
use explore_spec::atomic::{self, WriteError};

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const NET_FILE: &str = "net.json";
pub const FOLDED_FILE: &str = "folded.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(
        "{path}: not a network description ({source}); it is written by `explore train` beside {WEIGHTS_FILE}"
    )]
    NetJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "checkpoint {path} holds {found}, but {expected} is asked for: retrain (`explore train`), or give the checkpoint's model, dataset and width (the spec's `model` and `data`, or --model, --dataset and --width)"
    )]
    WrongArch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("checkpoint {path}: {message}")]
    Store { path: PathBuf, message: String },
    #[error(
        "cannot read checkpoint {path}: {source}; pass a {FOLDED_FILE} file or the checkpoint directory holding one"
    )]
    FoldedMissing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "checkpoint {path}: not a BN-folded network ({source}); it is written beside {WEIGHTS_FILE} by every training run"
    )]
    FoldedJson {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Writes `dir/model.safetensors`, `dir/net.json` and `dir/folded.json`,
/// creating `dir`. Returns the weights file's path.
pub fn save(model: &ResNet, dir: &Path) -> Result<PathBuf, CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(model.spec()).expect("NetSpec serializes");
    atomic::write(&dir.join(NET_FILE), json.as_bytes())?;
    let path = dir.join(WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(&path).overwrite(true);
    // `valid` brings in the running statistics' latest update.
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| CheckpointError::Store {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let folded = serde_json::to_vec(&model.fold()).expect("folded net serializes");
    atomic::write(&dir.join(FOLDED_FILE), &folded)?;
    Ok(path)
}

/// Loads a checkpoint written by [`save`]: `path` is its directory or its
/// `model.safetensors`. The `net.json` beside it must describe `expected`,
/// otherwise the error names both architectures.
pub fn load(path: &Path, expected: &NetSpec, device: &Device) -> Result<ResNet, CheckpointError> {
    let (dir, weights) = if path.is_dir() {
        (path.to_path_buf(), path.join(WEIGHTS_FILE))
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf())
    };
    let net_path = dir.join(NET_FILE);
    let text = std::fs::read_to_string(&net_path).map_err(|source| CheckpointError::Io {
        action: "read",
        path: net_path.clone(),
        source,
    })?;
    let found: NetSpec =
        serde_json::from_str(&text).map_err(|source| CheckpointError::NetJson {
            path: net_path.clone(),
            source,
        })?;
    check_spec(&weights, &found, expected)?;
    if !weights.is_file() {
        return Err(CheckpointError::Io {
            action: "read",
            path: weights,
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    let mut model = ResNet::new(expected, device);
    let mut store = SafetensorsStore::from_file(&weights);
    model
        .load_from(&mut store)
        .map_err(|e| CheckpointError::Store {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    Ok(model)
}

/// Reads the BN-folded weights of a checkpoint (`path` is a `folded.json`
/// or the directory holding one) and checks they are `expected`'s.
pub fn load_folded(path: &Path, expected: &NetSpec) -> Result<FoldedNet, CheckpointError> {
    let file = if path.is_dir() {
        path.join(FOLDED_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|source| CheckpointError::FoldedMissing {
        path: file.clone(),
        source,
    })?;
    let folded: FoldedNet =
        serde_json::from_slice(&bytes).map_err(|source| CheckpointError::FoldedJson {
            path: file.clone(),
            source,
        })?;
    check_spec(&file, &folded.spec, expected)?;
    Ok(folded)
}

fn check_spec(path: &Path, found: &NetSpec, expected: &NetSpec) -> Result<(), CheckpointError> {
    if found == expected {
        return Ok(());
    }
    let (found, expected) = describe_difference(found, expected);
    Err(CheckpointError::WrongArch {
        path: path.to_path_buf(),
        found,
        expected,
    })
}

/// Short descriptions of two different specs that show where they differ:
/// the headline (arch, width, dataset, layer count) and the first layer whose
/// shape differs.
fn describe_difference(found: &NetSpec, expected: &NetSpec) -> (String, String) {
    let head = |s: &NetSpec| {
        format!(
            "{} width {} for {} ({} convs, fc {}->{})",
            s.arch,
            s.width,
            s.dataset,
            s.convs.len(),
            s.fc.in_features,
            s.fc.out_features
        )
    };
    let layer = |c: Option<&ConvShape>| match c {
        Some(c) => format!(
            "{} [{}, {}, {}, {}] stride {} on {}x{}",
            c.name, c.c_out, c.c_in, c.k, c.k, c.stride, c.h, c.w
        ),
        None => "no such layer".into(),
    };
    let n = found.convs.len().max(expected.convs.len());
    match (0..n).find(|&i| found.convs.get(i) != expected.convs.get(i)) {
        Some(i) => (
            format!(
                "{}, layer {}: {}",
                head(found),
                i,
                layer(found.convs.get(i))
            ),
            format!(
                "{}, layer {}: {}",
                head(expected),
                i,
                layer(expected.convs.get(i))
            ),
        ),
        None => (head(found), head(expected)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Tensor, TensorData};
    use explore_he_model::arch::{Arch, DatasetKind};

    fn tiny() -> NetSpec {
        NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.125).unwrap()
    }

    /// One training-mode forward so BatchNorm's running statistics move
    /// away from their start.
    fn warmed_up(spec: &NetSpec) -> ResNet {
        let device = Device::flex().autodiff();
        device.seed(3);
        let model = ResNet::new(spec, &device);
        let (c, h, w) = spec.dataset.input_shape();
        let x: Vec<f32> = (0..8 * c * h * w)
            .map(|i| (i * 7919 % 997) as f32 / 997.0)
            .collect();
        let _ = model.forward(Tensor::from_data(TensorData::new(x, [8, c, h, w]), &device));
        model
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_another_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let spec = tiny();
        let model = warmed_up(&spec);
        let path = save(&model, dir.path()).unwrap();
        let device = Device::flex();
        let loaded = load(&path, &spec, &device).unwrap();
        assert_eq!(loaded.fold(), model.fold());
        let loaded_dir = load(dir.path(), &spec, &device).unwrap();
        assert_eq!(loaded_dir.conv_weight_data(), model.conv_weight_data());
        assert_eq!(load_folded(dir.path(), &spec).unwrap(), model.fold());

        let wider = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        for e in [
            load(dir.path(), &wider, &device).unwrap_err().to_string(),
            load_folded(dir.path(), &wider).unwrap_err().to_string(),
        ] {
            assert!(e.contains("width 0.125") && e.contains("width 0.25"), "{e}");
            assert!(
                e.contains("[2, 1, 3, 3]") && e.contains("[4, 1, 3, 3]"),
                "{e}"
            );
        }
    }

    #[test]
    fn tensors_of_another_shape_are_rejected_even_with_a_matching_net_json() {
        let dir = tempfile::tempdir().unwrap();
        let spec = tiny();
        let wider = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        save(&warmed_up(&wider), dir.path()).unwrap();
        std::fs::write(
            dir.path().join(NET_FILE),
            serde_json::to_string(&spec).unwrap(),
        )
        .unwrap();
        let e = load(dir.path(), &spec, &Device::flex()).unwrap_err();
        assert!(matches!(e, CheckpointError::Store { .. }), "{e}");
    }

    #[test]
    fn a_missing_folded_file_names_what_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_folded(dir.path(), &tiny()).unwrap_err().to_string();
        assert!(
            e.contains("folded.json") && e.contains("checkpoint directory"),
            "{e}"
        );
    }
}
