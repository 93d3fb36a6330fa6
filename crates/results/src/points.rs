//! The sweep's results table, `points.csv`: one [`PointRecord`] per trained
//! and measured model, read and written with polars. Writes replace the file
//! atomically ([`explore_spec::atomic`]), so a sweep killed at any moment leaves
//! either the old table or the new one.
//!
//! Accuracies are fractions in [0, 1] (plots and reports show percent);
//! `NaN` in a float column means "not measured" (e.g. no encrypted run).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use explore_he_model::schedule::Schedule;
use explore_spec::atomic::{self, WriteError};
use explore_spec::{Backend, PointKey, Strategy};

/// One row of `points.csv`; fields in column order ([`SCHEMA`] maps them
/// to columns).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PointRecord {
    pub sweep: String,
    pub model: String,
    pub dataset: String,
    /// The HE schedule the point's counts and timings are under.
    pub schedule: Schedule,
    /// Where the point trained.
    pub device: Backend,
    /// `dense` for the unpruned model (then `target` is 0).
    pub strategy: Strategy,
    /// Fraction of weights (or rotations) the strategy was asked to remove.
    pub target: f64,
    /// The recovery budget (fine-tuning epochs) in a sweep of several; 0
    /// in a sweep of one (and in tables from before budgets), whose points
    /// are keyed without it.
    pub budget: u64,
    pub seed: u64,
    /// Float test accuracy, a fraction in [0, 1].
    pub accuracy: f64,
    /// Accuracy of the integer (quantized) model that runs under HE.
    pub accuracy_quantized: f64,
    /// Test images both accuracies were measured on.
    pub test_images: u64,
    /// Accuracy of the integer model on the validation images (held out of
    /// the training split): what every choice is made on. `NaN` when the
    /// spec holds out none.
    pub val_accuracy: f64,
    pub val_images: u64,
    pub weight_sparsity: f64,
    /// Rotations per inference of this model and of the dense model under
    /// the same schedule.
    pub rotations: u64,
    /// Of `rotations`, those hoisted (a further rotation of an input block
    /// already decomposed): `rotations - rotations_hoisted` pay a full key
    /// switch.
    pub rotations_hoisted: u64,
    /// The ciphertext primes the point ran under (`54+54+55`: the fewest
    /// that leave `he.noise_margin` after every layer) and the smallest
    /// noise budget a layer left, measured.
    pub ciphertext_moduli: String,
    pub noise_budget_bits: u64,
    pub rotations_dense: u64,
    pub pmults: u64,
    pub adds: u64,
    /// Distinct rotations (Galois keys the client generates and sends once)
    /// and their serialized size.
    pub galois_keys: u64,
    pub galois_key_bytes: u64,
    /// Latency predicted from operation counts and the spec's primitive costs.
    pub latency_model_ms: f64,
    /// Latency of the encrypted conv layers as timed on this machine.
    pub latency_measured_ms: f64,
    /// The encrypted output decrypted to the plaintext integer model's output.
    pub he_verified: bool,
    pub train_seconds: f64,
    /// Optimizer steps of every training phase the model went through
    /// (dense, regularization, fine-tuning along its trajectory, QAT): its
    /// training budget.
    pub train_steps: u64,
    /// The encrypted chain of `explore infer` (whole network, client and
    /// server, `he.keys` and `he.flooding` of the spec) over `infer_images`
    /// test images: mean server and client ms per inference, bytes each
    /// way and rounds. NaN and 0 where it did not run.
    pub e2e_server_ms: f64,
    pub e2e_client_ms: f64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub rounds: u64,
    pub infer_images: u64,
    /// The fingerprint of the test images ([`explore_data::Dataset::fingerprint`]),
    /// so that two tables are known to share their images without the
    /// points' outcome files; empty in tables written before it.
    pub test_set: String,
    /// The point's own fine-tuning: epochs and optimizer steps (0 for the
    /// dense model, and in tables from before they were recorded).
    pub recovery_epochs: u64,
    pub recovery_steps: u64,
    /// Float accuracy right after pruning, before any recovery, on test
    /// and validation images; `NaN` where not measured.
    pub pruned_accuracy: f64,
    pub pruned_val_accuracy: f64,
    /// Float accuracy after recovery and before QAT: against
    /// `accuracy_quantized` and `val_accuracy`, what quantization costs.
    pub recovered_accuracy: f64,
    pub recovered_val_accuracy: f64,
    /// The chain's steps between linear layers on shares, under the
    /// two-party protocol: ReLUs per inference (pooled channels included),
    /// both parties' mean ms, bytes offline (base OTs, garbled tables) and
    /// online, and rounds. 0 and NaN where they did not run (client-aided,
    /// or a table from before).
    pub relus: u64,
    pub gc_ms: f64,
    pub gc_offline_bytes: u64,
    pub gc_online_bytes: u64,
    pub gc_rounds: u64,
    /// Whether the chain's server did the dense network's work
    /// (`he.constant_time`): then `e2e_server_ms` is the dense network's
    /// time, whatever the pruning. False in a table from before.
    pub constant_time: bool,
}

/// The directory name of a row's trained model in a sweep's `points/`
/// ([`PointKey::dir_name`]).
pub fn dir_name(r: &PointRecord) -> String {
    r.key().dir_name()
}

impl PointRecord {
    /// The point this row measured.
    pub fn key(&self) -> PointKey {
        PointKey {
            strategy: self.strategy,
            target: self.target,
            budget: (self.budget > 0).then_some(self.budget as usize),
            seed: self.seed,
            schedule: self.schedule,
        }
    }
}

/// One column of `points.csv`: its name, how it becomes a polars column,
/// and how one of its text cells is parsed back into a record.
struct ColumnDef {
    name: &'static str,
    write: fn(&'static str, &[PointRecord]) -> Column,
    read: fn(&mut PointRecord, &str) -> Result<(), String>,
    /// The cell a table from before the column existed is read with, for
    /// columns added without changing what the older ones mean.
    absent: Option<&'static str>,
}

/// A column of `points.csv` backed by record field `$field`, parsed by `$parse`.
macro_rules! column {
    ($field:ident, $parse:expr) => {
        column!($field, $parse, None)
    };
    ($field:ident, $parse:expr, $absent:expr) => {
        ColumnDef {
            absent: $absent,
            name: stringify!($field),
            write: |name, records| {
                Column::new(
                    name.into(),
                    records.iter().map(|r| cell(&r.$field)).collect::<Vec<_>>(),
                )
            },
            read: |record, text| {
                record.$field = $parse(text)?;
                Ok(())
            },
        }
    };
}

/// The schema of `points.csv`, in column order: the one place a column is
/// named, written and parsed.
const SCHEMA: [ColumnDef; 48] = [
    column!(sweep, text),
    column!(model, text),
    column!(dataset, text),
    column!(schedule, |s: &str| s.parse::<Schedule>()),
    column!(device, |s: &str| s.parse::<Backend>()),
    column!(strategy, |s: &str| s.parse::<Strategy>()),
    column!(target, float),
    column!(seed, count),
    column!(accuracy, fraction),
    column!(accuracy_quantized, fraction),
    column!(test_images, count),
    column!(val_accuracy, fraction_or_nan),
    column!(val_images, count),
    column!(weight_sparsity, float),
    column!(rotations, count),
    column!(rotations_hoisted, count),
    column!(ciphertext_moduli, text),
    column!(noise_budget_bits, count),
    column!(rotations_dense, count),
    column!(pmults, count),
    column!(adds, count),
    column!(galois_keys, count),
    column!(galois_key_bytes, count),
    column!(latency_model_ms, float),
    column!(latency_measured_ms, float),
    column!(he_verified, boolean),
    column!(train_seconds, float),
    column!(train_steps, count),
    // Added with end-to-end inference: older tables read as "not run".
    column!(e2e_server_ms, float, Some("NaN")),
    column!(e2e_client_ms, float, Some("NaN")),
    column!(bytes_up, count, Some("0")),
    column!(bytes_down, count, Some("0")),
    column!(rounds, count, Some("0")),
    column!(infer_images, count, Some("0")),
    // Added with the image-set fingerprint: older tables read as unknown.
    column!(test_set, text, Some("")),
    // Added with recovery budgets: an older table is a sweep of one budget
    // whose recovery and intermediate accuracies were not recorded.
    column!(budget, count, Some("0")),
    column!(recovery_epochs, count, Some("0")),
    column!(recovery_steps, count, Some("0")),
    column!(pruned_accuracy, fraction_or_nan, Some("NaN")),
    column!(pruned_val_accuracy, fraction_or_nan, Some("NaN")),
    column!(recovered_accuracy, fraction_or_nan, Some("NaN")),
    column!(recovered_val_accuracy, fraction_or_nan, Some("NaN")),
    // Added with the two-party protocol: older tables ran client-aided.
    column!(relus, count, Some("0")),
    column!(gc_ms, float, Some("NaN")),
    column!(gc_offline_bytes, count, Some("0")),
    column!(gc_online_bytes, count, Some("0")),
    column!(gc_rounds, count, Some("0")),
    // Added with the constant-time cost in the report: older tables did
    // not say, and read as off.
    column!(constant_time, boolean, Some("false")),
];

/// Columns added with the validation split and step budgets: a table
/// without them was written by an earlier version, under a protocol that
/// chose on the test set and could not pair points.
const PROTOCOL_COLUMNS: [&str; 3] = ["val_accuracy", "val_images", "train_steps"];

/// Columns added with hoisted rotations and moduli sized to the noise.
const HOISTING_COLUMNS: [&str; 3] = [
    "rotations_hoisted",
    "ciphertext_moduli",
    "noise_budget_bits",
];

/// The columns of `points.csv`, in order.
pub fn columns() -> impl Iterator<Item = &'static str> {
    SCHEMA.iter().map(|c| c.name)
}

fn column_list() -> String {
    columns().collect::<Vec<_>>().join(",")
}

/// A field as the value polars stores (strategies as their names).
trait Cell {
    type Stored;
    fn stored(&self) -> Self::Stored;
}

fn cell<T: Cell>(value: &T) -> T::Stored {
    value.stored()
}

impl Cell for String {
    type Stored = String;
    fn stored(&self) -> String {
        self.clone()
    }
}

impl Cell for Strategy {
    type Stored = String;
    fn stored(&self) -> String {
        self.name().to_string()
    }
}

impl Cell for Backend {
    type Stored = String;
    fn stored(&self) -> String {
        self.name().to_string()
    }
}

impl Cell for Schedule {
    type Stored = String;
    fn stored(&self) -> String {
        self.name().to_string()
    }
}

macro_rules! stored_as_is {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            type Stored = $t;
            fn stored(&self) -> $t {
                *self
            }
        }
    )*};
}
stored_as_is!(f64, u64, bool);

fn text(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}

fn float(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| "is not a number (write NaN for a value not measured)".into())
}

fn count(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| "is not a non-negative integer".into())
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err(
            "is not a fraction in [0, 1]: accuracies are stored as fractions, not percent".into(),
        ),
        Err(_) => Err("is not a number".into()),
    }
}

fn fraction_or_nan(s: &str) -> Result<f64, String> {
    if s == "NaN" {
        return Ok(f64::NAN);
    }
    fraction(s)
}

fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("is not a boolean: write true or false".into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PointsError {
    // The cause is in the message, not the error chain, so `{:#}` prints it once.
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{path}: not a readable CSV table: {message}")]
    Csv { path: PathBuf, message: String },
    #[error(
        "{path}: missing column `{column}`: a points table needs the columns {}",
        column_list()
    )]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error(
        "{path}: no column `{column}`: the table predates the validation split and step budgets, so its points were chosen on the test set and cannot be paired or compared at equal budgets; rerun its sweep into a new output directory (or delete points.csv there: finished models are retrained, nothing else is lost)"
    )]
    OldProtocol { path: PathBuf, column: &'static str },
    #[error(
        "{path}: no column `{column}`: the table predates hoisted rotations and moduli sized to the noise, so its latencies price every rotation as a full key switch on the whole 128-bit modulus; rerun its sweep into a new output directory"
    )]
    BeforeHoisting { path: PathBuf, column: &'static str },
    #[error(
        "{path}: unknown column `{column}`: remove it or rename it to one of {}",
        column_list()
    )]
    UnknownColumn { path: PathBuf, column: String },
    #[error("{path}: line {line}, column `{column}`: `{value}` {problem}")]
    BadValue {
        path: PathBuf,
        line: usize,
        column: &'static str,
        value: String,
        problem: String,
    },
}

/// Reads a points table; columns are matched by name, so their order may differ.
pub fn read(path: &Path) -> Result<Vec<PointRecord>, PointsError> {
    let file = File::open(path).map_err(|error| PointsError::Io {
        action: "open",
        path: path.to_path_buf(),
        error,
    })?;
    // Every column is read as text and parsed here, so a bad cell is reported
    // with its line and column instead of silently changing the column's type.
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(file)
        .finish()
        .map_err(|e| PointsError::Csv {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if let Some(extra) = df
        .get_column_names()
        .into_iter()
        .find(|n| !columns().any(|c| c == n.as_str()))
    {
        return Err(PointsError::UnknownColumn {
            path: path.to_path_buf(),
            column: extra.to_string(),
        });
    }
    let cells: Vec<Option<&StringChunked>> = SCHEMA
        .iter()
        .map(|c| match df.column(c.name).and_then(|col| col.str()) {
            Ok(cells) => Ok(Some(cells)),
            Err(_) if c.absent.is_some() => Ok(None),
            Err(_) => Err({
                if PROTOCOL_COLUMNS.contains(&c.name) {
                    PointsError::OldProtocol {
                        path: path.to_path_buf(),
                        column: c.name,
                    }
                } else if HOISTING_COLUMNS.contains(&c.name) {
                    PointsError::BeforeHoisting {
                        path: path.to_path_buf(),
                        column: c.name,
                    }
                } else {
                    PointsError::MissingColumn {
                        path: path.to_path_buf(),
                        column: c.name,
                    }
                }
            }),
        })
        .collect::<Result<_, _>>()?;
    (0..df.height())
        .map(|row| {
            let mut record = PointRecord::default();
            for (def, column) in SCHEMA.iter().zip(&cells) {
                let bad = |value: &str, problem: String| PointsError::BadValue {
                    path: path.to_path_buf(),
                    // Line 1 is the header.
                    line: row + 2,
                    column: def.name,
                    value: value.to_string(),
                    problem,
                };
                let text = match column {
                    Some(column) => column
                        .get(row)
                        .ok_or_else(|| bad("", "is empty: every cell needs a value".into()))?,
                    None => def
                        .absent
                        .expect("only absent-tolerant columns are missing"),
                };
                (def.read)(&mut record, text).map_err(|problem| bad(text, problem))?;
            }
            Ok(record)
        })
        .collect()
}

/// The records as a polars frame with the columns of [`SCHEMA`].
fn to_frame(records: &[PointRecord]) -> DataFrame {
    let columns = SCHEMA.iter().map(|c| (c.write)(c.name, records)).collect();
    DataFrame::new(records.len(), columns).expect("columns of equal length with distinct names")
}

/// Writes the records as CSV (header first) to any writer, e.g. stdout.
pub fn write_csv<W: Write>(out: W, records: &[PointRecord]) -> PolarsResult<()> {
    CsvWriter::new(out)
        .include_header(true)
        .finish(&mut to_frame(records))
}

/// Replaces `path` with a table of `records`, atomically.
pub fn write(path: &Path, records: &[PointRecord]) -> Result<(), PointsError> {
    Ok(atomic::replace(path, |file| {
        write_csv(file, records).map_err(|e| std::io::Error::other(e.to_string()))
    })?)
}

/// Serializes appends within this process: each append rewrites the whole file.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// Adds one record to the table at `path` (creating it), atomically: the file
/// is read, extended and replaced, never written in place. Appends from
/// several threads of one process are serialized; separate processes must
/// not append to the same file.
pub fn append(path: &Path, record: &PointRecord) -> Result<(), PointsError> {
    let _guard = APPEND_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut records = if path.exists() {
        read(path)?
    } else {
        Vec::new()
    };
    records.push(record.clone());
    write(path, &records)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plausible record; tests vary the fields they care about.
    pub(crate) fn record(
        strategy: Strategy,
        target: f64,
        accuracy: f64,
        rotations: u64,
    ) -> PointRecord {
        PointRecord {
            sweep: "smoke".into(),
            model: "resnet20".into(),
            dataset: "cifar10".into(),
            schedule: Schedule::Best,
            device: Backend::Cpu,
            strategy,
            target,
            seed: 0,
            accuracy: accuracy + 0.002,
            accuracy_quantized: accuracy,
            test_images: 1000,
            val_accuracy: accuracy - 0.003,
            val_images: 500,
            weight_sparsity: target,
            rotations,
            rotations_hoisted: rotations / 2,
            ciphertext_moduli: "54+54+55".into(),
            noise_budget_bits: 30,
            rotations_dense: 1000,
            pmults: rotations * 9,
            adds: rotations * 9,
            galois_keys: 20,
            galois_key_bytes: 20 * 1_000_000,
            latency_model_ms: rotations as f64 * 2.5,
            latency_measured_ms: rotations as f64 * 2.6,
            he_verified: true,
            train_seconds: 12.5,
            train_steps: 4000,
            e2e_server_ms: rotations as f64 * 3.0,
            e2e_client_ms: 150.0,
            bytes_up: 4_000_000,
            bytes_down: 3_000_000,
            rounds: 20,
            infer_images: 1,
            test_set: "0123456789abcdef".into(),
            budget: 0,
            recovery_epochs: 2,
            recovery_steps: 470,
            pruned_accuracy: accuracy * 0.8,
            pruned_val_accuracy: accuracy * 0.79,
            recovered_accuracy: accuracy * 0.999,
            recovered_val_accuracy: accuracy * 0.998,
            relus: 36_080,
            gc_ms: 4_900.0,
            gc_offline_bytes: 700_000_000,
            gc_online_bytes: 92_000_000,
            gc_rounds: 21,
            constant_time: true,
        }
    }

    fn sample() -> Vec<PointRecord> {
        let mut odd = record(Strategy::Diagonal, 0.9, 0.123456789012345, 7);
        odd.sweep = "name, with \"quotes\"".into();
        odd.latency_measured_ms = f64::NAN;
        odd.he_verified = false;
        odd.seed = u64::MAX;
        vec![record(Strategy::Dense, 0.0, 0.91, 1000), odd]
    }

    fn same(a: &[PointRecord], b: &[PointRecord]) -> bool {
        // NaN != NaN, so compare the serialized rows.
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        let records = sample();
        write(&path, &records).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), column_list());
        let back = read(&path).unwrap();
        assert!(same(&back, &records), "{back:?}\n{records:?}");
        assert!(back[1].latency_measured_ms.is_nan());
    }

    /// `records` written as a table that lacks the last `dropped` columns,
    /// then read back.
    fn read_without_last(records: &[PointRecord], dropped: usize) -> Vec<PointRecord> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        write(&path, records).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let old: Vec<String> = text
            .lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                cells[..SCHEMA.len() - dropped].join(",")
            })
            .collect();
        std::fs::write(&path, old.join("\n") + "\n").unwrap();
        read(&path).unwrap()
    }

    #[test]
    fn a_table_from_before_end_to_end_inference_reads_as_not_run() {
        let records = vec![record(Strategy::Hybrid, 0.5, 0.8, 100)];
        // The six end-to-end columns and the image-set fingerprint come
        // before the seven of recovery budgets, the five of the two-party
        // protocol and constant time: cut all twenty off.
        let back = read_without_last(&records, 20);
        assert_eq!(
            (back[0].infer_images, back[0].rounds, back[0].bytes_up),
            (0, 0, 0)
        );
        assert!(back[0].e2e_server_ms.is_nan() && back[0].e2e_client_ms.is_nan());
        assert_eq!(back[0].test_set, "", "an older table's images are unknown");
        assert_eq!(back[0].rotations, 100);
        assert_eq!(back[0].train_steps, records[0].train_steps);
    }

    #[test]
    fn a_table_from_before_budgets_reads_one_budget_and_nothing_unmeasured() {
        let mut with_budget = record(Strategy::Hybrid, 0.5, 0.8, 100);
        with_budget.budget = 4;
        assert_eq!(with_budget.key().dir_name(), "hybrid-0.5-e4-s0");
        // The seven columns of budgets, then the five of the two-party
        // protocol and constant time.
        let back = read_without_last(&[with_budget], 13);
        assert_eq!(back[0].key().budget, None);
        assert_eq!(back[0].key().dir_name(), "hybrid-0.5-s0");
        assert_eq!((back[0].recovery_epochs, back[0].recovery_steps), (0, 0));
        for a in [
            back[0].pruned_accuracy,
            back[0].pruned_val_accuracy,
            back[0].recovered_accuracy,
            back[0].recovered_val_accuracy,
        ] {
            assert!(a.is_nan(), "{:?}", back[0]);
        }
    }

    #[test]
    fn a_table_from_before_the_two_party_protocol_reads_as_client_aided() {
        let records = vec![record(Strategy::Hybrid, 0.5, 0.8, 100)];
        let back = read_without_last(&records, 6);
        assert!(!back[0].constant_time, "an older table ran without it");
        let gc = &back[0];
        assert_eq!(
            (
                gc.relus,
                gc.gc_offline_bytes,
                gc.gc_online_bytes,
                gc.gc_rounds
            ),
            (0, 0, 0, 0)
        );
        assert!(gc.gc_ms.is_nan());
        assert_eq!(gc.rounds, records[0].rounds);
        assert_eq!(gc.recovery_steps, records[0].recovery_steps);
    }

    #[test]
    fn a_table_from_before_hoisting_names_the_rerun_that_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        write(&path, &sample()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let without = |column: &str| {
            let at = text
                .lines()
                .next()
                .unwrap()
                .split(',')
                .position(|c| c == column)
                .unwrap();
            let lines: Vec<String> = text
                .lines()
                .map(|l| {
                    let mut cells: Vec<&str> = l.split(',').collect();
                    cells.remove(at);
                    cells.join(",")
                })
                .collect();
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
            read(&path).unwrap_err()
        };
        assert!(matches!(
            without("rotations_hoisted"),
            PointsError::BeforeHoisting { .. }
        ));
        assert!(matches!(
            without("pmults"),
            PointsError::MissingColumn {
                column: "pmults",
                ..
            }
        ));
    }

    #[test]
    fn empty_table_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        write(&path, &[]).unwrap();
        assert!(read(&path).unwrap().is_empty());
    }

    #[test]
    fn append_creates_then_extends_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        let records = sample();
        for r in &records {
            append(&path, r).unwrap();
        }
        assert!(same(&read(&path).unwrap(), &records));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("points.csv")]);
    }

    #[test]
    fn failed_write_keeps_the_old_file_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        write(&path, &sample()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = atomic::replace(&path, |f| {
            f.write_all(b"sweep,mod")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Tables of 1 and 3000 rows: the large one takes long enough to write
    /// that a kill often lands mid-write.
    fn small_and_large() -> (Vec<PointRecord>, Vec<PointRecord>) {
        let large = (0..3000)
            .map(|i| record(Strategy::Hybrid, 0.5, 0.5, i))
            .collect();
        (vec![record(Strategy::Dense, 0.0, 0.91, 1000)], large)
    }

    /// Child-process body for the kill test below: rewrites the table at
    /// `EXPLORE_REWRITE_PATH` until killed.
    #[test]
    #[ignore = "runs until killed; started by kill_9_leaves_the_old_or_the_new_table"]
    fn rewrite_until_killed() {
        let path = PathBuf::from(std::env::var_os("EXPLORE_REWRITE_PATH").unwrap());
        let (small, large) = small_and_large();
        loop {
            write(&path, &large).unwrap();
            write(&path, &small).unwrap();
        }
    }

    #[test]
    fn kill_9_leaves_the_old_or_the_new_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        let (small, large) = small_and_large();
        write(&path, &small).unwrap();
        for delay_ms in [150, 230, 370] {
            let modified = || std::fs::metadata(&path).unwrap().modified().unwrap();
            let before = modified();
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "points::tests::rewrite_until_killed",
                    "--ignored",
                ])
                .env("EXPLORE_REWRITE_PATH", &path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Killed only once it has replaced the table at least once (a
            // loaded machine may start it late), then at a delay that falls
            // anywhere in its rewrite loop.
            let start = std::time::Instant::now();
            while modified() == before {
                assert!(
                    start.elapsed().as_secs() < 60,
                    "the child never rewrote the table"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            // SIGKILL on Unix: no destructor or buffered write runs.
            child.kill().unwrap();
            child.wait().unwrap();
            let table = read(&path).unwrap();
            assert!(
                table == small || table == large,
                "torn table of {} rows",
                table.len()
            );
        }
    }

    #[test]
    fn append_to_a_broken_table_fails_without_touching_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        std::fs::write(&path, "sweep,model\na,b\n").unwrap();
        let err = append(&path, &sample()[0]).unwrap_err().to_string();
        assert!(
            err.contains("points.csv") && err.contains("missing column `dataset`"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "sweep,model\na,b\n"
        );
    }

    #[test]
    fn bad_cells_name_file_line_column_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.csv");
        write(&path, &sample()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cases = [
            (
                ",0.912,",
                ",91.2,",
                "line 2, column `accuracy`: `91.2` is not a fraction",
            ),
            (
                ",1000,500,54+54+55,",
                ",lots,500,54+54+55,",
                "line 2, column `rotations`: `lots`",
            ),
            (
                ",dense,",
                ",sparse,",
                "column `strategy`: `sparse` unknown strategy",
            ),
        ];
        for (from, to, expected) in cases {
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(
                err.contains("points.csv") && err.contains(expected),
                "{err}"
            );
        }
        std::fs::write(&path, text.replacen("train_seconds", "train_secs", 1)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("unknown column `train_secs`"), "{err}");
        // A table from before the validation split says how to upgrade.
        let at = SCHEMA.iter().position(|c| c.name == "train_steps").unwrap();
        let old: String = text
            .lines()
            .map(|l| {
                let mut cells: Vec<&str> = l.split(',').collect();
                // Fields are counted from the end: the sweep name may hold a comma.
                cells.remove(cells.len() - (SCHEMA.len() - at));
                cells.join(",") + "\n"
            })
            .collect();
        std::fs::write(&path, old).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("`train_steps`") && err.contains("predates") && err.contains("rerun"),
            "{err}"
        );
        std::fs::write(&path, text.replacen("train_seconds", "train_secs", 1)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("unknown column `train_secs`"), "{err}");
        let err = read(&dir.path().join("absent.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot open") && err.contains("absent.csv"),
            "{err}"
        );
    }
}
