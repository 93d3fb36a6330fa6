//! The idx format of MNIST and Fashion-MNIST (`*-idx3-ubyte` images,
//! `*-idx1-ubyte` labels, optionally gzipped): a big-endian header (two zero
//! bytes, type 0x08 = unsigned byte, the number of dimensions, then each
//! dimension as u32) followed by the bytes.

use std::path::Path;

use crate::dataset::RawImages;
use crate::files::{DataError, read_bytes};
use explore_he_model::arch::DatasetKind;

/// One idx file: its dimensions and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an unsigned-byte idx file with `ndims` dimensions, checking the
/// magic number and that the file holds exactly what the header announces.
pub fn read_idx(path: &Path, ndims: usize) -> Result<Idx, DataError> {
    let (bytes, read_error) = read_bytes(path)?;
    let header_len = 4 + 4 * ndims;
    let format = |message: String| DataError::Format {
        path: path.to_path_buf(),
        message,
    };
    if bytes.len() < header_len {
        return Err(DataError::Size {
            path: path.to_path_buf(),
            actual: bytes.len() as u64,
            expected: format!("at least a {header_len}-byte idx header"),
        });
    }
    let magic = &bytes[..4];
    if magic != [0, 0, 0x08, ndims as u8] {
        return Err(format(format!(
            "magic number {magic:02x?} is not that of an idx file of unsigned bytes with {ndims} dimension(s) \
             ([00, 00, 08, {ndims:02x}]): is this the right file (images are idx3, labels idx1)?"
        )));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = header_len + dims.iter().product::<usize>();
    if bytes.len() != expected || read_error.is_some() {
        let shape = dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" x ");
        let gzip = match &read_error {
            Some(e) => format!("; the gzip stream broke off after that: {e}"),
            None => String::new(),
        };
        return Err(DataError::Size {
            path: path.to_path_buf(),
            actual: bytes.len() as u64,
            expected: format!("{expected} bytes (header: {shape}){gzip}"),
        });
    }
    let mut data = bytes;
    data.drain(..header_len);
    Ok(Idx { dims, data })
}

/// Reads an images file and its labels file, checking 28 x 28 images, equal
/// counts and labels below the number of classes.
pub fn read_pair(kind: DatasetKind, images: &Path, labels: &Path) -> Result<RawImages, DataError> {
    let (img, lab) = rayon::join(|| read_idx(images, 3), || read_idx(labels, 1));
    let (img, lab) = (img?, lab?);
    let (_, h, w) = kind.input_shape();
    if img.dims[1..] != [h, w] {
        return Err(DataError::Format {
            path: images.to_path_buf(),
            message: format!(
                "images are {} x {}, but {kind} images are {h} x {w}",
                img.dims[1], img.dims[2]
            ),
        });
    }
    if img.dims[0] != lab.dims[0] {
        return Err(DataError::Format {
            path: labels.to_path_buf(),
            message: format!(
                "{} labels for the {} images of {}: the two files do not belong together",
                lab.dims[0],
                img.dims[0],
                images.display()
            ),
        });
    }
    let classes = kind.classes();
    if let Some(i) = lab.data.iter().position(|&l| l as usize >= classes) {
        return Err(DataError::Format {
            path: labels.to_path_buf(),
            message: format!(
                "label {} of image {i} is not a {kind} class (0..{classes})",
                lab.data[i]
            ),
        });
    }
    Ok(RawImages {
        kind,
        pixels: img.data,
        labels: lab.data.into_iter().map(u16::from).collect(),
    })
}
