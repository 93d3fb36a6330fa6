//! What reading a dataset's files shares: the errors, each naming the file
//! (or URL) and the fix, the split names, and reading a file that may be
//! gzipped.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

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
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
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

/// Reads a whole file, gunzipping it if it starts with the gzip magic. A read
/// error mid-stream (a truncated gzip) is returned beside what was read, so
/// the caller can report the size it expected.
pub(crate) fn read_bytes(path: &Path) -> Result<(Vec<u8>, Option<io::Error>), DataError> {
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
