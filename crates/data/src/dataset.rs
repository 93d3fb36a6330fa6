//! A dataset in memory: raw pixel bytes as read ([`RawImages`]), the fixed
//! per-channel normalization, the normalized [`Dataset`] everything
//! downstream sees, and the training augmentation.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use explore_he_model::arch::DatasetKind;

/// Images as read from disk: raw pixel bytes in C x H x W order per image.
#[derive(Debug, Clone, PartialEq)]
pub struct RawImages {
    pub kind: DatasetKind,
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
}

impl RawImages {
    pub(crate) fn image_len(&self) -> usize {
        let (c, h, w) = self.kind.input_shape();
        c * h * w
    }

    pub(crate) fn select(&self, indices: &[usize]) -> RawImages {
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
pub(crate) fn subset_indices(len: usize, n: usize, seed: u64) -> Option<Vec<usize>> {
    if n >= len {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut indices = rand::seq::index::sample(&mut rng, len, n).into_vec();
    indices.sort_unstable();
    Some(indices)
}

/// Whether [`augment`] changes `kind`'s images: CIFAR's are cropped and
/// flipped; the MNIST-like datasets' digits and garments are centred and
/// orientation-specific, so they are left as they are (and no random number
/// is drawn for them).
pub fn augments(kind: DatasetKind) -> bool {
    matches!(kind, DatasetKind::Cifar10 | DatasetKind::Cifar100)
}

/// Random crop (4-pixel padding) and horizontal flip where [`augments`]
/// says so, else a no-op. Padding takes the normalized value of a black
/// pixel (`-mean / std` per channel), as when padding before normalizing.
pub fn augment(kind: DatasetKind, image: &mut [f32], rng: &mut impl rand::Rng) {
    if !augments(kind) {
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
