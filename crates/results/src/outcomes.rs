//! Per-image outcomes of a point: which validation and which test images
//! its integer model (the one the encrypted network computes) classifies
//! correctly. They are what paired statistics need, since two models
//! measured on the same images differ far less than two independent
//! accuracies would suggest. The one home of the file format,
//! `outcomes.json` in each point's directory:
//!
//! ```text
//! {"validation": {"images": 1000, "correct": 812, "set": "<hex>", "bits": "<hex>"},
//!  "test":       {"images": 1000, "correct": 801, "set": "<hex>", "bits": "<hex>"}}
//! ```
//!
//! `bits` holds one bit per image in image order, least significant bit of
//! each byte first, as hex; `correct` is its population count, kept so a
//! reader can see the accuracy and a torn or edited file is caught; `set`
//! identifies the images themselves ([`explore_data::Dataset::fingerprint`]),
//! so two points are paired only when they saw the same images.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::points::PointRecord;
use explore_spec::atomic::{self, WriteError};

/// The file name in a point's directory.
pub const FILE: &str = "outcomes.json";

#[derive(Debug, thiserror::Error)]
pub enum OutcomesError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {message}: the file is damaged; delete the point's directory and rerun its sweep to measure it again"
    )]
    Malformed { path: PathBuf, message: String },
    #[error(
        "{path} disagrees with the points table on {point}: {message}; the table and the point's directory come from different runs: rerun the point (delete its directory) or use the table written with it"
    )]
    Disagrees {
        path: PathBuf,
        point: String,
        message: String,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Which images of one set a model got right, and which set it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correct {
    outcomes: Vec<bool>,
    /// The image set's fingerprint.
    pub set: String,
}

impl Correct {
    pub fn new(outcomes: Vec<bool>, set: String) -> Correct {
        Correct { outcomes, set }
    }

    pub fn images(&self) -> usize {
        self.outcomes.len()
    }

    pub fn count(&self) -> usize {
        self.outcomes.iter().filter(|&&c| c).count()
    }

    /// Fraction correct; `NaN` for an empty set.
    pub fn accuracy(&self) -> f64 {
        self.count() as f64 / self.images() as f64
    }

    pub fn as_slice(&self) -> &[bool] {
        &self.outcomes
    }
}

/// A point's outcomes on both sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcomes {
    pub validation: Correct,
    pub test: Correct,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    images: usize,
    correct: usize,
    set: String,
    bits: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomesFile {
    validation: SetFile,
    test: SetFile,
}

impl SetFile {
    fn of(c: &Correct) -> SetFile {
        let bytes: Vec<u8> = c
            .outcomes
            .chunks(8)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u8, |b, (i, &bit)| b | (u8::from(bit) << i))
            })
            .collect();
        SetFile {
            images: c.images(),
            correct: c.count(),
            set: c.set.clone(),
            bits: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    fn decode(&self, set: &str) -> Result<Correct, String> {
        let want = self.images.div_ceil(8) * 2;
        if self.bits.len() != want {
            return Err(format!(
                "{set}: {} hex digits for {} images, expected {want}",
                self.bits.len(),
                self.images
            ));
        }
        let mut out = Vec::with_capacity(self.images);
        for (k, pair) in self.bits.as_bytes().chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).unwrap_or("??");
            let byte = u8::from_str_radix(text, 16)
                .map_err(|_| format!("{set}: `{text}` at digit {} is not hex", 2 * k))?;
            for i in 0..8 {
                if out.len() < self.images {
                    out.push(byte >> i & 1 == 1);
                } else if byte >> i & 1 == 1 {
                    return Err(format!("{set}: a bit is set past image {}", self.images));
                }
            }
        }
        let c = Correct::new(out, self.set.clone());
        if c.count() != self.correct {
            return Err(format!(
                "{set}: {} bits set but `correct` says {}",
                c.count(),
                self.correct
            ));
        }
        Ok(c)
    }
}

impl Outcomes {
    /// The outcomes file in a point's directory.
    pub fn path(point_dir: &Path) -> PathBuf {
        point_dir.join(FILE)
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), OutcomesError> {
        let file = OutcomesFile {
            validation: SetFile::of(&self.validation),
            test: SetFile::of(&self.test),
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("outcomes serialize");
        Ok(atomic::write(path, &bytes)?)
    }

    /// Reads and checks a file; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Outcomes>, OutcomesError> {
        let Some(bytes) = atomic::read_optional(path).map_err(|source| OutcomesError::Io {
            path: path.to_path_buf(),
            source,
        })?
        else {
            return Ok(None);
        };
        let malformed = |message: String| OutcomesError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        let file: OutcomesFile =
            serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        Ok(Some(Outcomes {
            validation: file.validation.decode("validation").map_err(malformed)?,
            test: file.test.decode("test").map_err(malformed)?,
        }))
    }

    /// Checks that these outcomes are the ones `record` reports: the same
    /// test images (where the row records their fingerprint), the same
    /// image counts and the same integer-model accuracies.
    pub fn check_against(&self, record: &PointRecord, path: &Path) -> Result<(), OutcomesError> {
        if !record.test_set.is_empty() && record.test_set != self.test.set {
            return Err(OutcomesError::Disagrees {
                path: path.to_path_buf(),
                point: point_name(record),
                message: format!(
                    "test images {} in the file, {} in the table",
                    self.test.set, record.test_set
                ),
            });
        }
        let sets = [
            (
                "test",
                &self.test,
                record.test_images,
                record.accuracy_quantized,
                "accuracy_quantized",
            ),
            (
                "validation",
                &self.validation,
                record.val_images,
                record.val_accuracy,
                "val_accuracy",
            ),
        ];
        for (set, c, images, accuracy, column) in sets {
            let disagree = |message: String| OutcomesError::Disagrees {
                path: path.to_path_buf(),
                point: point_name(record),
                message,
            };
            if c.images() as u64 != images {
                return Err(disagree(format!(
                    "{} {set} images in the file, {images} in the table",
                    c.images()
                )));
            }
            // Half an image of slack for the table's decimal rounding.
            if images > 0 && (c.accuracy() - accuracy).abs() > 0.5 / images as f64 {
                return Err(disagree(format!(
                    "{set} accuracy {:.4} in the file, {column} {accuracy:.4} in the table",
                    c.accuracy()
                )));
            }
        }
        Ok(())
    }
}

/// The outcomes of every row of a points table that has them, each checked
/// against its row: they live in `points/<point>/` beside the table.
pub fn of_table(
    table: &Path,
    rows: &[PointRecord],
) -> Result<Vec<Option<Outcomes>>, OutcomesError> {
    let dir = table.parent().unwrap_or_else(|| Path::new("."));
    rows.iter()
        .map(|r| {
            let path = Outcomes::path(&dir.join("points").join(crate::points::dir_name(r)));
            let o = Outcomes::read(&path)?;
            if let Some(o) = &o {
                o.check_against(r, &path)?;
            }
            Ok(o)
        })
        .collect()
}

fn point_name(r: &PointRecord) -> String {
    format!("{} {} seed {}", r.strategy, r.target, r.seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, every: usize) -> Correct {
        Correct::new((0..n).map(|i| i % every != 0).collect(), format!("set{n}"))
    }

    #[test]
    fn outcomes_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = Outcomes::path(dir.path());
        assert_eq!(Outcomes::read(&path).unwrap(), None);
        let o = Outcomes {
            validation: sample(13, 3),
            test: sample(1000, 7),
        };
        o.write(&path).unwrap();
        assert_eq!(Outcomes::read(&path).unwrap(), Some(o.clone()));
        // 1000 images take 250 hex digits: compact enough to commit.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 450, "{}", text.len());
        assert_eq!(o.test.count(), 1000 - 143);
    }

    #[test]
    fn edited_or_torn_files_are_errors_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = Outcomes::path(dir.path());
        let o = Outcomes {
            validation: sample(16, 2),
            test: sample(16, 4),
        };
        o.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for (from, to, words) in [
            ("\"correct\": 12", "\"correct\": 11", "bits set"),
            ("\"images\": 16", "\"images\": 17", "hex digits"),
        ] {
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let e = Outcomes::read(&path).unwrap_err().to_string();
            assert!(e.contains(words) && e.contains("delete"), "{e}");
        }
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert!(Outcomes::read(&path).is_err());
    }

    #[test]
    fn a_table_row_with_other_counts_or_accuracies_is_refused() {
        let o = Outcomes {
            validation: sample(100, 5),
            test: sample(200, 4),
        };
        let mut r = PointRecord {
            test_images: 200,
            accuracy_quantized: 0.75,
            val_images: 100,
            val_accuracy: 0.8,
            ..PointRecord::default()
        };
        let p = Path::new("o.json");
        o.check_against(&r, p).unwrap();
        r.accuracy_quantized = 0.73;
        let e = o.check_against(&r, p).unwrap_err().to_string();
        assert!(e.contains("accuracy_quantized 0.7300"), "{e}");
        r.accuracy_quantized = 0.75;
        r.val_images = 99;
        let e = o.check_against(&r, p).unwrap_err().to_string();
        assert!(e.contains("validation images"), "{e}");
        // The row's image-set fingerprint must be the file's, when it has one.
        r.val_images = 100;
        r.test_set = "set200".into();
        o.check_against(&r, p).unwrap();
        r.test_set = "other".into();
        let e = o.check_against(&r, p).unwrap_err().to_string();
        assert!(e.contains("test images set200 in the file, other"), "{e}");
    }
}
