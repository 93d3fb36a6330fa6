//! Datasets: finding, downloading, reading and normalizing CIFAR-10/100,
//! Fashion-MNIST and MNIST in their official file formats, plus the training
//! augmentation. Everything downstream sees a [`Dataset`]: images as
//! normalized `f32` in C x H x W order and `u16` labels.
//!
//! File formats live in [`idx`] and [`cifar`], where the files are and how to
//! get them in `layout` and [`fetch`]. Reading is strict: a file of the wrong
//! size, a bad magic number or a label out of range is a [`DataError`] naming
//! the file, never a silently shorter dataset.

pub mod cifar;
pub mod fetch;
mod holdout;
pub mod idx;
mod layout;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::DatasetKind;

pub use fetch::Source;

/// Which dataset a spec trains and tests on, and which part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub dataset: DatasetKind,
    /// Directory holding the dataset files; searched first.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Use a deterministic subset of this many training images (drawn from
    /// what the validation split leaves).
    #[serde(default)]
    pub train_size: Option<usize>,
    /// Hold out this many training images as the validation split: chosen
    /// deterministically from `seed`, stratified by class, disjoint from
    /// the training images. Every choice a sweep makes is made on it.
    /// (Left out of the serialized spec when absent, so output directories
    /// and dense caches of specs without one keep their keys.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
    #[serde(default)]
    pub test_size: Option<usize>,
    /// Seed of the subset choice.
    #[serde(default)]
    pub seed: u64,
    /// Download the official archive when the files are missing.
    #[serde(default = "yes")]
    pub download: bool,
}

fn yes() -> bool {
    true
}

/// Errors finding, fetching or reading dataset files. Each names the file (or
/// URL) and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "{path}: {actual} bytes, expected {expected}: the file is truncated or is not the official one; delete it and fetch it again"
    )]
    Size {
        path: PathBuf,
        actual: u64,
        expected: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(
        "data.validation: {requested} images would leave no training images: the training split ({path}) holds {available}; hold out fewer, e.g. {suggestion}"
    )]
    Validation {
        path: PathBuf,
        requested: usize,
        available: usize,
        suggestion: usize,
    },
    #[error("cannot download {url}: {message}")]
    Download { url: String, message: String },
    #[error(
        "{url}: SHA-256 is {actual}, expected {expected}: the download is corrupt or not the official file (nothing was kept)"
    )]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
}

impl DataError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
        move |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// Images as read from disk: raw pixel bytes in C x H x W order per image.
#[derive(Debug, Clone, PartialEq)]
pub struct RawImages {
    pub kind: DatasetKind,
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
}

impl RawImages {
    fn image_len(&self) -> usize {
        let (c, h, w) = self.kind.input_shape();
        c * h * w
    }

    fn select(&self, indices: &[usize]) -> RawImages {
        let len = self.image_len();
        RawImages {
            kind: self.kind,
            pixels: indices
                .iter()
                .flat_map(|&i| &self.pixels[i * len..(i + 1) * len])
                .copied()
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// Scales to [0, 1], then subtracts the channel mean and divides by the
    /// channel standard deviation of the dataset's training set.
    pub fn normalize(&self) -> Dataset {
        let (mean, std) = normalization(self.kind);
        let plane = {
            let (_, h, w) = self.kind.input_shape();
            h * w
        };
        let tables: Vec<[f32; 256]> = mean
            .iter()
            .zip(std)
            .map(|(&m, &s)| std::array::from_fn(|p| (p as f32 / 255.0 - m) / s))
            .collect();
        let mut images = vec![0.0f32; self.pixels.len()];
        images
            .par_chunks_mut(self.image_len())
            .zip(self.pixels.par_chunks(self.image_len()))
            .for_each(|(out, raw)| {
                for (c, table) in tables.iter().enumerate() {
                    let range = c * plane..(c + 1) * plane;
                    for (o, &p) in out[range.clone()].iter_mut().zip(&raw[range]) {
                        *o = table[p as usize];
                    }
                }
            });
        Dataset {
            kind: self.kind,
            images,
            labels: self.labels.clone(),
        }
    }
}

/// Per-channel mean and standard deviation (of pixels scaled to [0, 1]) over
/// the official training set. Fixed per dataset rather than measured on what
/// was loaded, so train and test splits and every subset share one transform.
/// Fashion-MNIST's were measured here on the full training set (0.286041,
/// 0.353024); MNIST's and CIFAR's are the values in common use (torchvision
/// examples; CIFAR population statistics of the 50,000 training images).
pub fn normalization(kind: DatasetKind) -> (&'static [f32], &'static [f32]) {
    match kind {
        DatasetKind::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
        DatasetKind::Cifar100 => (&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762]),
        DatasetKind::FashionMnist => (&[0.2860], &[0.3530]),
        DatasetKind::Mnist => (&[0.1307], &[0.3081]),
    }
}

/// A labelled image set, normalized per channel (see [`normalization`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub kind: DatasetKind,
    /// `len() * image_len()` values, image after image, each C x H x W row-major.
    pub images: Vec<f32>,
    pub labels: Vec<u16>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image: C * H * W.
    pub fn image_len(&self) -> usize {
        let (c, h, w) = self.kind.input_shape();
        c * h * w
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// A short hex digest of the images and labels, in order: equal for
    /// two loads of the same images on any machine (normalization is a
    /// table lookup), different for any other set.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update((self.len() as u64).to_le_bytes());
        for &l in &self.labels {
            h.update(l.to_le_bytes());
        }
        for &v in &self.images {
            h.update(v.to_bits().to_le_bytes());
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        Dataset {
            kind: self.kind,
            images: indices
                .iter()
                .flat_map(|&i| self.image(i))
                .copied()
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// `n` images drawn without replacement, deterministically from `seed`,
    /// kept in their original order; everything when `n >= len()`.
    pub fn subset(&self, n: usize, seed: u64) -> Dataset {
        match subset_indices(self.len(), n, seed) {
            Some(indices) => self.select(&indices),
            None => self.clone(),
        }
    }
}

/// Sorted random indices, or `None` when `n` covers everything.
fn subset_indices(len: usize, n: usize, seed: u64) -> Option<Vec<usize>> {
    if n >= len {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut indices = rand::seq::index::sample(&mut rng, len, n).into_vec();
    indices.sort_unstable();
    Some(indices)
}

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

/// Reads a whole file, gunzipping it if it starts with the gzip magic. A read
/// error mid-stream (a truncated gzip) is returned beside what was read, so
/// the caller can report the size it expected.
fn read_bytes(path: &Path) -> Result<(Vec<u8>, Option<io::Error>), DataError> {
    let file = std::fs::File::open(path).map_err(DataError::io(path))?;
    let size = file.metadata().map_err(DataError::io(path))?.len() as usize;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let gzipped = reader
        .fill_buf()
        .map_err(DataError::io(path))?
        .starts_with(&[0x1f, 0x8b]);
    let mut bytes = Vec::with_capacity(if gzipped { size * 2 } else { size });
    let result = if gzipped {
        flate2::bufread::MultiGzDecoder::new(reader).read_to_end(&mut bytes)
    } else {
        reader.read_to_end(&mut bytes)
    };
    Ok((bytes, result.err()))
}

/// Random crop (4-pixel padding) and horizontal flip for CIFAR; a no-op for
/// the MNIST-like datasets, whose digits and garments are centred and
/// orientation-specific. Padding takes the normalized value of a black pixel
/// (`-mean / std` per channel), as when padding before normalizing.
pub fn augment(kind: DatasetKind, image: &mut [f32], rng: &mut impl rand::Rng) {
    if !matches!(kind, DatasetKind::Cifar10 | DatasetKind::Cifar100) {
        return;
    }
    let dy = rng.random_range(0..=2 * PAD);
    let dx = rng.random_range(0..=2 * PAD);
    let flip = rng.random_bool(0.5);
    crop_flip(kind, image, dy, dx, flip);
}

const PAD: usize = 4;

/// Output pixel (y, x) is padded-input pixel (y + dy, x + dx), after an
/// optional mirror of x; `dy = dx = PAD` without flip is the identity.
fn crop_flip(kind: DatasetKind, image: &mut [f32], dy: usize, dx: usize, flip: bool) {
    let (c, h, w) = kind.input_shape();
    let (mean, std) = normalization(kind);
    let src = image.to_vec();
    for ch in 0..c {
        let black = -mean[ch] / std[ch];
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let from_x = if flip { w - 1 - x } else { x };
                let sy = (y + dy).checked_sub(PAD).filter(|&v| v < h);
                let sx = (from_x + dx).checked_sub(PAD).filter(|&v| v < w);
                image[ch * h * w + y * w + x] = match (sy, sx) {
                    (Some(sy), Some(sx)) => plane[sy * w + sx],
                    _ => black,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(kind: DatasetKind) -> Vec<f32> {
        let (c, h, w) = kind.input_shape();
        (0..c * h * w).map(|i| i as f32).collect()
    }

    #[test]
    fn centred_crop_without_flip_is_identity() {
        let mut img = ramp(DatasetKind::Cifar10);
        crop_flip(DatasetKind::Cifar10, &mut img, PAD, PAD, false);
        assert_eq!(img, ramp(DatasetKind::Cifar10));
    }

    #[test]
    fn crop_shifts_and_pads_with_black() {
        let kind = DatasetKind::Cifar10;
        let src = ramp(kind);
        let mut img = src.clone();
        // Window starting at padded (0, 0): content moves 4 down and 4 right.
        crop_flip(kind, &mut img, 0, 0, false);
        let (mean, std) = normalization(kind);
        for ch in 0..3 {
            let at = |y: usize, x: usize| img[ch * 1024 + y * 32 + x];
            assert_eq!(at(0, 0), -mean[ch] / std[ch]);
            assert_eq!(at(3, 31), -mean[ch] / std[ch]);
            assert_eq!(at(4, 4), src[ch * 1024]);
            assert_eq!(at(31, 31), src[ch * 1024 + 27 * 32 + 27]);
        }
    }

    #[test]
    fn flip_mirrors_rows() {
        let kind = DatasetKind::Cifar100;
        let src = ramp(kind);
        let mut img = src.clone();
        crop_flip(kind, &mut img, PAD, PAD, true);
        assert_eq!(img[0], src[31]);
        assert_eq!(img[2 * 1024 + 5 * 32 + 3], src[2 * 1024 + 5 * 32 + 28]);
        crop_flip(kind, &mut img, PAD, PAD, true);
        assert_eq!(img, src);
    }

    #[test]
    fn augment_leaves_mnist_like_images_alone() {
        let mut rng = StdRng::seed_from_u64(1);
        for kind in [DatasetKind::FashionMnist, DatasetKind::Mnist] {
            let mut img = ramp(kind);
            augment(kind, &mut img, &mut rng);
            assert_eq!(img, ramp(kind));
        }
    }

    #[test]
    fn normalize_maps_bytes_through_channel_stats() {
        let kind = DatasetKind::Cifar10;
        let mut pixels = vec![0u8; 2 * 3072];
        pixels[3072] = 255; // image 1, red, first pixel
        pixels[3072 + 2048] = 51; // image 1, blue, first pixel
        let raw = RawImages {
            kind,
            pixels,
            labels: vec![0, 1],
        };
        let d = raw.normalize();
        let (mean, std) = normalization(kind);
        assert_eq!(d.len(), 2);
        assert_eq!(d.image(0)[0], -mean[0] / std[0]);
        assert!((d.image(1)[0] - (1.0 - mean[0]) / std[0]).abs() < 1e-6);
        assert!((d.image(1)[2048] - (0.2 - mean[2]) / std[2]).abs() < 1e-6);
    }

    #[test]
    fn subset_is_deterministic_sorted_and_total_when_large() {
        let a = subset_indices(1000, 100, 7).unwrap();
        assert_eq!(a, subset_indices(1000, 100, 7).unwrap());
        assert_ne!(a, subset_indices(1000, 100, 8).unwrap());
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[99] < 1000);
        assert_eq!(subset_indices(1000, 1000, 7), None);
        assert_eq!(subset_indices(1000, 5000, 7), None);
    }
}
