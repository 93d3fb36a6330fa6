//! Datasets: finding, downloading, reading and normalizing CIFAR-10/100,
//! Fashion-MNIST and MNIST in their official file formats, plus the training
//! augmentation. Everything downstream sees a [`Dataset`]: images as
//! normalized `f32` in C x H x W order and `u16` labels.
//!
//! File formats live in [`idx`] and [`cifar`], where the files are and how to
//! get them in `layout` and [`fetch`]. Reading is strict: a file of the wrong
//! size, a bad magic number or a label out of range is a [`DataError`] naming
//! the file, never a silently shorter dataset. The process's terminal bars
//! ([`progress`]), which a download and a training run draw together, live
//! here, at the lowest layer that draws one.

pub mod cifar;
mod dataset;
pub mod fetch;
mod files;
mod holdout;
pub mod idx;
mod layout;
pub mod progress;

use std::path::PathBuf;

use rayon::prelude::*;

use explore_he_model::arch::DatasetKind;

// What a spec asks for is the spec crate's; re-exported beside its loader.
pub use dataset::{Dataset, RawImages, augment, augments, normalization};
pub use explore_spec::DataSpec;
pub use fetch::Source;
pub use files::{DataError, Split};

use dataset::subset_indices;

/// The three parts of a dataset a sweep uses: training images, the
/// validation images held out of the official training split (empty
/// without `data.validation`), and test images.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    pub train: Dataset,
    pub validation: Dataset,
    pub test: Dataset,
}

/// Loads one split as the spec says: finds the files (the configured `path`,
/// then `data/<name>/`, then for Fashion-MNIST `/usr/share/datasets/fashion-mnist/`),
/// downloads them from the official source when missing and `spec.download`
/// is set (the base URL can be overridden with `EXPLORE_DATA_MIRROR`), reads
/// and checks them, and keeps a `train_size`/`test_size` subset chosen with
/// `spec.seed`. The training split excludes the validation images.
pub fn load(spec: &DataSpec, split: Split) -> Result<Dataset, DataError> {
    load_from(spec, split, &Source::official(spec.dataset, split))
}

/// Training, validation and test images, the training files read once.
pub fn load_splits(spec: &DataSpec) -> Result<Splits, DataError> {
    let (train, validation) = load_train(spec, &Source::official(spec.dataset, Split::Train))?;
    Ok(Splits {
        train,
        validation,
        test: load(spec, Split::Test)?,
    })
}

/// [`load`] with an explicit download source (a mirror, or a local server in tests).
pub fn load_from(spec: &DataSpec, split: Split, source: &Source) -> Result<Dataset, DataError> {
    match split {
        Split::Train => Ok(load_train(spec, source)?.0),
        Split::Test => {
            let (raw, _) = read_located(spec, split, source)?;
            Ok(subset(&raw, spec.test_size, spec.seed).normalize())
        }
    }
}

/// The training images and the validation images held out of them.
fn load_train(spec: &DataSpec, source: &Source) -> Result<(Dataset, Dataset), DataError> {
    let (raw, files) = read_located(spec, Split::Train, source)?;
    let held = holdout::validation_indices(&raw.labels, spec.validation.unwrap_or(0), spec.seed)
        .map_err(|available| DataError::Validation {
            path: files[0].clone(),
            requested: spec.validation.unwrap_or(0),
            available,
            suggestion: available / 10,
        })?;
    let rest = holdout::complement(raw.labels.len(), &held);
    let train = subset(&raw.select(&rest), spec.train_size, spec.seed);
    Ok((train.normalize(), raw.select(&held).normalize()))
}

/// A split's located files, read and checked.
fn read_located(
    spec: &DataSpec,
    split: Split,
    source: &Source,
) -> Result<(RawImages, Vec<PathBuf>), DataError> {
    let dirs = layout::search_dirs(spec);
    let files = layout::find_or_fetch(spec.dataset, split, &dirs, spec.download, source)?;
    Ok((read_split(spec.dataset, split, &files)?, files))
}

/// `size` images of `raw` chosen with `seed` (all of them without a size).
fn subset(raw: &RawImages, size: Option<usize>, seed: u64) -> RawImages {
    match size.and_then(|n| subset_indices(raw.labels.len(), n, seed)) {
        Some(indices) => raw.select(&indices),
        None => raw.clone(),
    }
}

/// Reads the located files of one split (as listed by the layout) into raw images.
fn read_split(kind: DatasetKind, split: Split, files: &[PathBuf]) -> Result<RawImages, DataError> {
    match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => {
            let [images, labels] = files else {
                unreachable!("the layout lists an images and a labels file")
            };
            idx::read_pair(kind, images, labels)
        }
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
            let records = cifar::official_records(kind, split);
            let parts = files
                .par_iter()
                .map(|f| cifar::read_cifar(f, kind, Some(records)).map(|b| b.images))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RawImages {
                kind,
                pixels: parts.iter().flat_map(|p| &p.pixels).copied().collect(),
                labels: parts.iter().flat_map(|p| &p.labels).copied().collect(),
            })
        }
    }
}
