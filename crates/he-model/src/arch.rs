//! Network architectures as shapes: which convolutions a model has, in which
//! order, with which input geometry, and how they are wired into residual
//! blocks. The trainer (`model`), the HE cost model (`he`) and the integer
//! inference (`quant`) all build from one [`NetSpec`], so layer names and order
//! agree everywhere (`explore count` rows, checkpoint tensors, masks).

use serde::{Deserialize, Serialize};

/// Errors in naming an architecture or dataset, or in sizing a network.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArchError {
    #[error("unknown model `{0}`: use one of resnet20, resnet32, resnet56, resnet18")]
    UnknownArch(String),
    #[error("unknown dataset `{0}`: use one of cifar10, cifar100, fashion-mnist, mnist")]
    UnknownDataset(String),
    #[error("width {0} is not a positive finite number: use e.g. 1.0 or 0.25")]
    BadWidth(f64),
}

/// The ResNet variants this tool trains and counts (all CIFAR-style: a 3x3
/// stem, no max-pool, global average pooling, one FC layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    ResNet20,
    ResNet32,
    ResNet56,
    ResNet18,
}

crate::named_enum!(Arch: ArchError, |s| ArchError::UnknownArch(s.to_string()), {
    ResNet20 => "resnet20",
    ResNet32 => "resnet32",
    ResNet56 => "resnet56",
    ResNet18 => "resnet18",
});

impl Arch {
    /// (blocks per stage, base channels per stage).
    fn stages(self) -> (Vec<usize>, Vec<usize>) {
        match self {
            Arch::ResNet20 => (vec![3, 3, 3], vec![16, 32, 64]),
            Arch::ResNet32 => (vec![5, 5, 5], vec![16, 32, 64]),
            Arch::ResNet56 => (vec![9, 9, 9], vec![16, 32, 64]),
            Arch::ResNet18 => (vec![2, 2, 2, 2], vec![64, 128, 256, 512]),
        }
    }
}
/// Datasets fix the input shape and the number of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DatasetKind {
    #[serde(rename = "cifar10")]
    Cifar10,
    #[serde(rename = "cifar100")]
    Cifar100,
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    #[serde(rename = "mnist")]
    Mnist,
}

crate::named_enum!(DatasetKind: ArchError, |s| ArchError::UnknownDataset(s.to_string()), {
    Cifar10 => "cifar10",
    Cifar100 => "cifar100",
    FashionMnist => "fashion-mnist",
    Mnist => "mnist",
});

impl DatasetKind {
    /// Input shape (channels, height, width).
    pub fn input_shape(self) -> (usize, usize, usize) {
        match self {
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => (3, 32, 32),
            DatasetKind::FashionMnist | DatasetKind::Mnist => (1, 28, 28),
        }
    }

    pub fn classes(self) -> usize {
        match self {
            DatasetKind::Cifar100 => 100,
            _ => 10,
        }
    }
}
/// One convolution: `c_in x h x w` input (the grid it reads, before stride),
/// `c_out` filters of `k x k`, padding `k / 2`, no bias before folding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvShape {
    pub name: String,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
}

impl ConvShape {
    pub fn padding(&self) -> usize {
        self.k / 2
    }
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding() - self.k) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding() - self.k) / self.stride + 1
    }
    /// Number of weights, laid out `[c_out, c_in, k, k]` row-major.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.k * self.k
    }
}

/// The classifier: global average pool, then `in_features -> out_features`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcShape {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
}

impl FcShape {
    /// The layer as the 1x1 convolution on a 1x1 grid it is to the integer
    /// and HE models.
    pub fn as_conv(&self) -> ConvShape {
        ConvShape {
            name: self.name.clone(),
            c_in: self.in_features,
            c_out: self.out_features,
            h: 1,
            w: 1,
            k: 1,
            stride: 1,
        }
    }
}

/// A basic residual block: `relu(bn(conv2(relu(bn(conv1(x))))) + shortcut(x))`,
/// where the shortcut is identity or a 1x1 projection conv + BN. Fields index
/// [`NetSpec::convs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub conv1: usize,
    pub conv2: usize,
    pub shortcut: Option<usize>,
}

/// A network's full shape. `convs[0]` is the stem (`conv1`, followed by BN and
/// ReLU); blocks follow in forward order; each block lists conv1, conv2, then
/// its shortcut in `convs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub arch: Arch,
    pub dataset: DatasetKind,
    pub width: f64,
    pub convs: Vec<ConvShape>,
    pub blocks: Vec<Block>,
    pub fc: FcShape,
}

impl NetSpec {
    pub fn new(arch: Arch, dataset: DatasetKind, width: f64) -> Result<Self, ArchError> {
        if !(width.is_finite() && width > 0.0) {
            return Err(ArchError::BadWidth(width));
        }
        let (c0, mut h, mut w) = dataset.input_shape();
        let (blocks_per_stage, base) = arch.stages();
        let ch = |c: usize| ((c as f64 * width).round() as usize).max(1);
        let mut convs = vec![ConvShape {
            name: "conv1".into(),
            c_in: c0,
            c_out: ch(base[0]),
            h,
            w,
            k: 3,
            stride: 1,
        }];
        let mut blocks = Vec::new();
        let mut c = ch(base[0]);
        for (stage, (&n, &b)) in blocks_per_stage.iter().zip(&base).enumerate() {
            let c_out = ch(b);
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{}", stage + 1, i);
                let conv1 = ConvShape {
                    name: format!("{prefix}.conv1"),
                    c_in: c,
                    c_out,
                    h,
                    w,
                    k: 3,
                    stride,
                };
                let (oh, ow) = (conv1.out_h(), conv1.out_w());
                let conv2 = ConvShape {
                    name: format!("{prefix}.conv2"),
                    c_in: c_out,
                    c_out,
                    h: oh,
                    w: ow,
                    k: 3,
                    stride: 1,
                };
                let shortcut = (stride != 1 || c != c_out).then(|| ConvShape {
                    name: format!("{prefix}.shortcut"),
                    c_in: c,
                    c_out,
                    h,
                    w,
                    k: 1,
                    stride,
                });
                let base_idx = convs.len();
                convs.push(conv1);
                convs.push(conv2);
                let shortcut = shortcut.map(|s| {
                    convs.push(s);
                    base_idx + 2
                });
                blocks.push(Block {
                    conv1: base_idx,
                    conv2: base_idx + 1,
                    shortcut,
                });
                (c, h, w) = (c_out, oh, ow);
            }
        }
        let fc = FcShape {
            name: "fc".into(),
            in_features: c,
            out_features: dataset.classes(),
        };
        Ok(NetSpec {
            arch,
            dataset,
            width,
            convs,
            blocks,
            fc,
        })
    }

    /// Total number of conv weights.
    pub fn conv_weight_count(&self) -> usize {
        self.convs.iter().map(ConvShape::weight_len).sum()
    }

    /// Every layer as a convolution: the convs, then the FC layer.
    pub fn layer_shapes(&self) -> Vec<ConvShape> {
        self.convs
            .iter()
            .cloned()
            .chain([self.fc.as_conv()])
            .collect()
    }
}

/// The internal channels of each residual block (its `conv1` outputs, which
/// are its `conv2` inputs) that a deployment drops: those whose `conv1`
/// filter and `conv2` input slice are both entirely zero. Such a channel
/// carries a constant (its bias through ReLU) into weights that are all
/// zero, so removing it changes no output, and it stops costing slots,
/// ciphertexts and rotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// Per block, the internal channels kept, in order.
    keep: Vec<Vec<usize>>,
}

impl Compaction {
    /// The channels `convs` (weights in `spec.convs` order, `[c_out, c_in,
    /// k, k]` each) lets a deployment drop.
    pub fn of<T: Copy + Default + PartialEq>(spec: &NetSpec, convs: &[Vec<T>]) -> Compaction {
        let zero = |v: &[T]| v.iter().all(|&x| x == T::default());
        let keep = spec
            .blocks
            .iter()
            .map(|b| {
                let (c1, c2) = (&spec.convs[b.conv1], &spec.convs[b.conv2]);
                let per_filter = c1.c_in * c1.k * c1.k;
                let k2 = c2.k * c2.k;
                (0..c1.c_out)
                    .filter(|&c| {
                        let filter = &convs[b.conv1][c * per_filter..(c + 1) * per_filter];
                        let slice_zero = (0..c2.c_out).all(|o| {
                            let start = (o * c2.c_in + c) * k2;
                            zero(&convs[b.conv2][start..start + k2])
                        });
                        !(zero(filter) && slice_zero)
                    })
                    .collect()
            })
            .collect();
        Compaction { keep }
    }

    /// Whether any channel is dropped.
    pub fn is_identity(&self, spec: &NetSpec) -> bool {
        spec.blocks
            .iter()
            .zip(&self.keep)
            .all(|(b, k)| k.len() == spec.convs[b.conv1].c_out)
    }

    /// `spec` with the dropped channels removed from the blocks' convs.
    pub fn spec(&self, spec: &NetSpec) -> NetSpec {
        let mut out = spec.clone();
        for (b, keep) in spec.blocks.iter().zip(&self.keep) {
            out.convs[b.conv1].c_out = keep.len();
            out.convs[b.conv2].c_in = keep.len();
        }
        out
    }

    /// Layer `layer`'s weights (`[c_out, c_in, k, k]` of `spec`) without the
    /// dropped channels.
    pub fn weights<T: Copy>(&self, spec: &NetSpec, layer: usize, w: &[T]) -> Vec<T> {
        let shape = &spec.convs[layer];
        let k2 = shape.k * shape.k;
        for (b, keep) in spec.blocks.iter().zip(&self.keep) {
            if layer == b.conv1 {
                let per = shape.c_in * k2;
                return keep
                    .iter()
                    .flat_map(|&c| w[c * per..(c + 1) * per].iter().copied())
                    .collect();
            }
            if layer == b.conv2 {
                return (0..shape.c_out)
                    .flat_map(|o| {
                        keep.iter().flat_map(move |&c| {
                            let start = (o * shape.c_in + c) * k2;
                            w[start..start + k2].iter().copied()
                        })
                    })
                    .collect();
            }
        }
        w.to_vec()
    }

    /// Per-output-channel values of layer `layer` (biases, scales) without
    /// the dropped channels.
    pub fn outputs<T: Copy>(&self, spec: &NetSpec, layer: usize, v: &[T]) -> Vec<T> {
        match spec
            .blocks
            .iter()
            .zip(&self.keep)
            .find(|(b, _)| b.conv1 == layer)
        {
            Some((_, keep)) => keep.iter().map(|&c| v[c]).collect(),
            None => v.to_vec(),
        }
    }

    /// Per-input-channel planes of layer `layer` (`[c_in, h, w]`) without the
    /// dropped channels.
    pub fn inputs<T: Copy>(&self, spec: &NetSpec, layer: usize, x: &[T]) -> Vec<T> {
        match spec
            .blocks
            .iter()
            .zip(&self.keep)
            .find(|(b, _)| b.conv2 == layer)
        {
            Some((_, keep)) => {
                let plane = x.len() / spec.convs[layer].c_in;
                keep.iter()
                    .flat_map(|&c| x[c * plane..(c + 1) * plane].iter().copied())
                    .collect()
            }
            None => x.to_vec(),
        }
    }
}

/// A trained network with BatchNorm folded into each conv (`weight`, `bias`)
/// as plain row-major `f32`: the form the integer model and the HE executor
/// run. `convs[i]` matches `spec.convs[i]`; `fc_weight` is `[out, in]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldedNet {
    pub spec: NetSpec,
    pub convs: Vec<FoldedConv>,
    pub fc_weight: Vec<f32>,
    pub fc_bias: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldedConv {
    /// `[c_out, c_in, k, k]`
    pub weight: Vec<f32>,
    /// `[c_out]`
    pub bias: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet20_cifar_has_19_convs_plus_two_projections() {
        let s = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        assert_eq!(s.convs.len(), 21);
        assert_eq!(s.blocks.len(), 9);
        assert_eq!(s.convs[0].name, "conv1");
        assert_eq!(s.convs[7].name, "layer2.0.conv1");
        assert_eq!(s.convs[9].name, "layer2.0.shortcut");
        assert_eq!((s.convs[9].k, s.convs[9].stride, s.convs[9].h), (1, 2, 32));
        assert_eq!((s.convs[8].h, s.convs[8].c_in), (16, 32));
        assert_eq!(s.convs.last().unwrap().h, 8);
        assert_eq!((s.fc.in_features, s.fc.out_features), (64, 10));
        // 16*3*9 + 6*16*16*9 + 32*16*9 + 5*32*32*9 + 32*16 + 64*32*9 + 5*64*64*9 + 64*32
        assert_eq!(s.conv_weight_count(), 270_256);
    }

    #[test]
    fn fashion_mnist_grids_round_up_on_stride() {
        let s = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        assert_eq!(s.convs[0].c_in, 1);
        assert_eq!(s.convs[0].c_out, 4);
        let last = s.convs.last().unwrap();
        assert_eq!((last.h, last.w, last.c_out), (7, 7, 16));
    }

    #[test]
    fn resnet18_has_four_stages() {
        let s = NetSpec::new(Arch::ResNet18, DatasetKind::Cifar100, 1.0).unwrap();
        assert_eq!(s.blocks.len(), 8);
        assert_eq!(s.fc.in_features, 512);
        assert_eq!(s.fc.out_features, 100);
        assert_eq!(s.convs.iter().filter(|c| c.k == 1).count(), 3);
    }

    #[test]
    fn compaction_drops_internal_channels_zero_on_both_sides() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        let mut convs: Vec<Vec<i64>> = spec.convs.iter().map(|c| vec![1; c.weight_len()]).collect();
        let b = spec.blocks[4];
        let (c1, c2) = (spec.convs[b.conv1].clone(), spec.convs[b.conv2].clone());
        // Channel 2 of block 4: zero conv1 filter, zero conv2 input slice.
        let per = c1.c_in * 9;
        convs[b.conv1][2 * per..3 * per].fill(0);
        for o in 0..c2.c_out {
            convs[b.conv2][(o * c2.c_in + 2) * 9..(o * c2.c_in + 3) * 9].fill(0);
        }
        // Channel 3: only its filter is zero, so it stays.
        convs[b.conv1][3 * per..4 * per].fill(0);
        let k = Compaction::of(&spec, &convs);
        assert!(!k.is_identity(&spec));
        let small = k.spec(&spec);
        assert_eq!(small.convs[b.conv1].c_out, c1.c_out - 1);
        assert_eq!(small.convs[b.conv2].c_in, c2.c_in - 1);
        let w1 = k.weights(&spec, b.conv1, &convs[b.conv1]);
        let w2 = k.weights(&spec, b.conv2, &convs[b.conv2]);
        assert_eq!(w1.len(), small.convs[b.conv1].weight_len());
        assert_eq!(w2.len(), small.convs[b.conv2].weight_len());
        assert!(w2.iter().all(|&v| v == 1), "the zero slice is gone");
        assert_eq!(
            k.outputs(&spec, b.conv1, &[0, 1, 2, 3, 4, 5, 6, 7]),
            [0, 1, 3, 4, 5, 6, 7]
        );
        let x: Vec<i64> = (0..c2.c_in as i64).flat_map(|c| [c, c]).collect();
        assert_eq!(k.inputs(&spec, b.conv2, &x).len(), 2 * (c2.c_in - 1));
        let dense: Vec<Vec<i64>> = spec.convs.iter().map(|c| vec![1; c.weight_len()]).collect();
        assert!(Compaction::of(&spec, &dense).is_identity(&spec));
    }

    #[test]
    fn names_parse_and_reject() {
        assert_eq!("resnet56".parse::<Arch>().unwrap(), Arch::ResNet56);
        assert!("resnet19".parse::<Arch>().is_err());
        assert_eq!(
            "fashion-mnist".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        assert!(NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 0.0).is_err());
    }
}
