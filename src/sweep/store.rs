//! A sweep's output directory: every path and file format in it, and the
//! lock that binds it to one spec. Stages ask the store where a result lives
//! and never build a path themselves.
//!
//! ```text
//! spec.lock.json                the result-shaping settings (SpecLock)
//! dense-<hash>/                 a dense checkpoint + train.json
//! regularized/<strategy>-s<seed>/   a group-Lasso checkpoint
//! regularized/plain-s<seed>/    the same phase without a penalty
//! points/<strategy>-<target>-s<seed>/   a pruned checkpoint, mask.json,
//!                               trained.json (last), layers.json,
//!                               outcomes.json (per-image correctness)
//! points.csv, front.csv, report.md, *.png, *.svg
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PointKey, Shard, SweepError};
use explore_spec::DataSpec;
use explore_spec::Strategy;
use explore_spec::TrainConfig;
use explore_spec::atomic;
use explore_spec::{ModelSpec, Spec};

/// The settings that shape a sweep's results: the spec without its name,
/// output, threads, how the report words its claims, the strategies, targets and seeds it asks for (adding
/// points to a finished sweep is what resuming is for), how many images
/// and repeats time each point, and how private inference is deployed
/// (`he.protocol`, `he.keys`, `he.constant_time`, `he.flooding`: they shape only the end-to-end measurement,
/// not what is trained or counted), and the key switching
/// (`he.special_prime`: it changes the primes and times, which each point
/// records, not the counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SpecLock(serde_json::Value);

impl SpecLock {
    pub(super) fn of(spec: &Spec) -> SpecLock {
        let mut v = serde_json::to_value(spec).expect("a spec serializes");
        for key in ["name", "output", "threads", "report"] {
            v.as_object_mut().expect("an object").remove(key);
        }
        for (section, key) in [
            ("prune", "strategies"),
            ("prune", "targets"),
            ("prune", "seeds"),
            ("he", "images"),
            ("he", "repeats"),
            ("he", "infer_images"),
            ("he", "protocol"),
            ("he", "keys"),
            ("he", "constant_time"),
            ("he", "flooding"),
            ("he", "special_prime"),
        ] {
            if let Some(obj) = v[section].as_object_mut() {
                obj.remove(key);
            }
        }
        // Sweeps locked before the setting existed ran f64 between layers:
        // their locks match `float` and differ from `fixed`.
        if v["he"]["requantization"] == "float"
            && let Some(he) = v["he"].as_object_mut()
        {
            he.remove("requantization");
        }
        SpecLock(v)
    }

    /// The dotted path of the first setting that differs, for the error.
    pub(super) fn first_difference(&self, other: &SpecLock) -> Option<String> {
        fn walk(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
            match (a.as_object(), b.as_object()) {
                (Some(x), Some(y)) => {
                    let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    keys.into_iter().find_map(|k| {
                        let null = serde_json::Value::Null;
                        let sub = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        walk(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), &sub)
                    })
                }
                _ => (a != b).then(|| path.to_string()),
            }
        }
        walk(&self.0, &other.0, "")
    }
}

/// An output directory bound to one spec.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (or creates) `dir` for `spec`, refusing a directory made by a
    /// spec with different result-shaping settings.
    pub fn open(dir: PathBuf, spec: &Spec) -> Result<Store, SweepError> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let store = Store { dir };
        let lock_path = store.lock_json();
        let lock = SpecLock::of(spec);
        if lock_path.exists() {
            let stored: SpecLock = read_json(&lock_path)?;
            if let Some(field) = lock.first_difference(&stored) {
                return Err(SweepError::SpecChanged {
                    dir: store.dir,
                    lock: lock_path,
                    field,
                });
            }
        } else {
            write_json(&lock_path, &lock)?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The result-shaping settings the directory is bound to.
    pub(super) fn lock_json(&self) -> PathBuf {
        self.dir.join("spec.lock.json")
    }

    /// A directory an earlier run wrote, read without binding it to a spec.
    pub fn existing(dir: PathBuf) -> Result<Store, SweepError> {
        let store = Store { dir };
        if !store.lock_json().exists() {
            return Err(SweepError::NotASweep { dir: store.dir });
        }
        Ok(store)
    }

    /// The dense checkpoint trained with these settings: named by a hash of
    /// them, so a changed setting never reuses it.
    pub fn dense_dir(&self, settings: &(&DataSpec, &ModelSpec, &TrainConfig)) -> PathBuf {
        let key = serde_json::to_string(settings).expect("settings serialize");
        let hash = Sha256::digest(key.as_bytes());
        let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("dense-{hex}"))
    }

    /// The group-Lasso checkpoint of a strategy and seed.
    pub fn regularized_dir(&self, strategy: Strategy, seed: u64) -> PathBuf {
        self.dir
            .join("regularized")
            .join(format!("{strategy}-s{seed}"))
    }

    /// The regularization phase without a penalty, shared by every strategy
    /// that takes no group Lasso (and the budget-matched dense control).
    pub fn plain_dir(&self, seed: u64) -> PathBuf {
        self.dir.join("regularized").join(format!("plain-s{seed}"))
    }

    /// The checkpoint and measurements of one point.
    pub fn point_dir(&self, key: &PointKey) -> PathBuf {
        self.dir.join("points").join(key.dir_name())
    }

    /// The points table a run writes: `points.csv`, or each shard its own.
    pub fn points_csv_of(&self, shard: Option<Shard>) -> PathBuf {
        match shard {
            None => self.points_csv(),
            Some(s) => self
                .dir
                .join(format!("points-{}-of-{}.csv", s.index, s.count)),
        }
    }

    pub fn points_csv(&self) -> PathBuf {
        self.dir.join("points.csv")
    }

    /// Every points table in the directory: `points.csv` first, then the
    /// shards' in name order.
    pub fn points_tables(&self) -> Result<Vec<PathBuf>, SweepError> {
        let mut shards: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("points-") && n.ends_with(".csv"))
            })
            .collect();
        shards.sort();
        let main = self.points_csv();
        Ok(main
            .exists()
            .then_some(main)
            .into_iter()
            .chain(shards)
            .collect())
    }

    pub fn front_csv(&self) -> PathBuf {
        self.dir.join("front.csv")
    }

    /// The spec's own text, kept so `explore merge` knows which points the
    /// spec asks for.
    pub fn spec_yaml(&self) -> PathBuf {
        self.dir.join("spec.yaml")
    }

    /// Holds an exclusive lock on `<what>.lock` in the directory until the
    /// guard drops: concurrent shards on one file system train a shared
    /// model once, the others wait and then load it.
    pub fn lock(&self, what: &Path) -> Result<std::fs::File, SweepError> {
        let name = what
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = self.dir.join(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }
}

/// A training summary beside a checkpoint (`train.json`, `trained.json`).
pub const DENSE_SUMMARY: &str = "train.json";
pub const POINT_SUMMARY: &str = "trained.json";
pub const MASK: &str = "mask.json";
pub const LAYERS: &str = "layers.json";

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a JSON file the sweep wrote; a malformed one is an error naming it.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, SweepError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| SweepError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// The JSON file at `path` when it exists and parses: a stage's finished
/// result. A missing or torn file is `None`, to be recomputed.
pub fn finished<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `text` so that a crash leaves either the old or the new content.
pub fn write_text(path: &Path, text: &str) -> Result<(), SweepError> {
    write_bytes(path, text.as_bytes())
}

/// Writes `bytes` so that a crash leaves either the old or the new content.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    Ok(atomic::write(path, bytes)?)
}

/// Writes `value` as JSON so that a crash leaves either the old or the new
/// content.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SweepError> {
    let bytes = serde_json::to_vec_pretty(value).expect("sweep files serialize");
    Ok(atomic::write(path, &bytes)?)
}
