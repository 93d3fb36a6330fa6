//! The CIFAR binary format: fixed-size records of label byte(s) then 3072
//! pixel bytes (1024 red, 1024 green, 1024 blue, each 32 x 32 row-major).
//! CIFAR-10 records carry one label; CIFAR-100 records a coarse (20
//! superclasses) then a fine (100 classes) label, and the fine one is the label.

use std::path::Path;

use crate::dataset::RawImages;
use crate::files::{DataError, Split, read_bytes};
use explore_he_model::arch::DatasetKind;

const PIXELS: usize = 3 * 32 * 32;

/// One CIFAR file. `coarse_labels` is set for CIFAR-100 only.
#[derive(Debug, Clone, PartialEq)]
pub struct CifarBatch {
    pub images: RawImages,
    pub coarse_labels: Option<Vec<u16>>,
}

/// Records per official file: 10,000 per CIFAR-10 batch and per test file,
/// 50,000 in CIFAR-100's single training file.
pub fn official_records(kind: DatasetKind, split: Split) -> usize {
    match (kind, split) {
        (DatasetKind::Cifar100, Split::Train) => 50_000,
        _ => 10_000,
    }
}

fn label_bytes(kind: DatasetKind) -> usize {
    match kind {
        DatasetKind::Cifar100 => 2,
        _ => 1,
    }
}

/// Reads one CIFAR binary file of `kind` (CIFAR-10 or CIFAR-100). With
/// `records`, the file must hold exactly that many; otherwise any whole
/// number of records.
pub fn read_cifar(
    path: &Path,
    kind: DatasetKind,
    records: Option<usize>,
) -> Result<CifarBatch, DataError> {
    assert!(
        matches!(kind, DatasetKind::Cifar10 | DatasetKind::Cifar100),
        "read_cifar called for {kind}"
    );
    let (bytes, read_error) = read_bytes(path)?;
    let record = label_bytes(kind) + PIXELS;
    let right_count = records.is_none_or(|n| n * record == bytes.len());
    if read_error.is_some() || !right_count || bytes.len() % record != 0 {
        let expected = match records {
            Some(n) => format!("{} bytes ({n} records of {record} bytes)", n * record),
            None => format!("a multiple of {record} bytes ({kind} records)"),
        };
        let expected = match read_error {
            Some(e) => format!("{expected}; the gzip stream broke off: {e}"),
            None => expected,
        };
        return Err(DataError::Size {
            path: path.to_path_buf(),
            actual: bytes.len() as u64,
            expected,
        });
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    let mut coarse = Vec::with_capacity(if kind == DatasetKind::Cifar100 { n } else { 0 });
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let (head, px) = r.split_at(label_bytes(kind));
        let label = *head.last().expect("a label byte") as u16;
        if label as usize >= kind.classes() {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "record {i} has label {label}, but {kind} has {} classes: is this a {kind} file?",
                    kind.classes()
                ),
            });
        }
        if kind == DatasetKind::Cifar100 {
            coarse.push(head[0] as u16);
        }
        labels.push(label);
        pixels.extend_from_slice(px);
    }
    Ok(CifarBatch {
        images: RawImages {
            kind,
            pixels,
            labels,
        },
        coarse_labels: (kind == DatasetKind::Cifar100).then_some(coarse),
    })
}
