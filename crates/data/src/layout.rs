//! Where a dataset's files are: their official names per split, the
//! directories searched in order, the download into the first of them, and
//! what to tell the user when the files are nowhere.

use std::path::{Path, PathBuf};

use explore_spec::DataSpec;

use crate::fetch::{self, Source};
use crate::files::{DataError, Split};
use explore_he_model::arch::DatasetKind;

/// Debian's `dataset-fashion-mnist` package installs the official files here.
const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The configured `path`, then `data/<name>/` in the working directory, then
/// (Fashion-MNIST only) Debian's install location. Downloads go to the first.
pub(super) fn search_dirs(spec: &DataSpec) -> Vec<PathBuf> {
    let kind = spec.dataset;
    let mut dirs: Vec<PathBuf> = spec.path.iter().cloned().collect();
    dirs.push(Path::new("data").join(kind.name()));
    if kind == DatasetKind::FashionMnist {
        dirs.push(PathBuf::from(DEBIAN_FASHION_MNIST));
    }
    dirs
}

/// The split's files, relative to a dataset directory, in reading order.
fn split_files(kind: DatasetKind, split: Split) -> Vec<String> {
    match (kind, split) {
        (DatasetKind::FashionMnist | DatasetKind::Mnist, _) => {
            let prefix = match split {
                Split::Train => "train",
                Split::Test => "t10k",
            };
            vec![
                format!("{prefix}-images-idx3-ubyte"),
                format!("{prefix}-labels-idx1-ubyte"),
            ]
        }
        (DatasetKind::Cifar10, Split::Train) => (1..=5)
            .map(|i| format!("cifar-10-batches-bin/data_batch_{i}.bin"))
            .collect(),
        (DatasetKind::Cifar10, Split::Test) => vec!["cifar-10-batches-bin/test_batch.bin".into()],
        (DatasetKind::Cifar100, Split::Train) => vec!["cifar-100-binary/train.bin".into()],
        (DatasetKind::Cifar100, Split::Test) => vec!["cifar-100-binary/test.bin".into()],
    }
}

/// A file is found under its relative path or directly in `dir` (for a
/// `path` pointing into the unpacked archive), plain or gzipped.
fn locate(dir: &Path, relative: &str) -> Option<PathBuf> {
    let base = Path::new(relative).file_name().expect("a file name");
    [dir.join(relative), dir.join(base)]
        .into_iter()
        .flat_map(|p| {
            let mut gz = p.clone().into_os_string();
            gz.push(".gz");
            [p, PathBuf::from(gz)]
        })
        .find(|p| p.is_file())
}

/// The first directory holding every file of the split.
fn find(kind: DatasetKind, split: Split, dirs: &[PathBuf]) -> Option<Vec<PathBuf>> {
    let wanted = split_files(kind, split);
    dirs.iter()
        .find_map(|dir| wanted.iter().map(|f| locate(dir, f)).collect())
}

/// Finds the split's files, downloading them into `dirs[0]` when missing and
/// allowed; otherwise explains where to put them and how to get them.
pub(super) fn find_or_fetch(
    kind: DatasetKind,
    split: Split,
    dirs: &[PathBuf],
    download: bool,
    source: &Source,
) -> Result<Vec<PathBuf>, DataError> {
    if let Some(files) = find(kind, split, dirs) {
        return Ok(files);
    }
    let why = if download {
        match fetch::install(source, &dirs[0]) {
            Ok(()) => match find(kind, split, &dirs[..1]) {
                Some(files) => return Ok(files),
                None => format!(
                    "the files fetched from {} do not include them",
                    source.base_url
                ),
            },
            Err(e) => e.to_string(),
        }
    } else {
        "downloading is off (`data.download: false` in the spec)".into()
    };
    Err(DataError::NotFound(not_found_message(
        kind, split, dirs, &why,
    )))
}

fn not_found_message(kind: DatasetKind, split: Split, dirs: &[PathBuf], why: &str) -> String {
    let looked = dirs
        .iter()
        .map(|d| format!("{}/", d.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let gz = if matches!(kind, DatasetKind::FashionMnist | DatasetKind::Mnist) {
        " (each plain or .gz)"
    } else {
        ""
    };
    let files = split_files(kind, split).join(", ");
    let target = dirs[0].display();
    let how = match kind {
        DatasetKind::FashionMnist => format!(
            "install Debian's package (`apt-get install dataset-fashion-mnist`, which puts the files in {DEBIAN_FASHION_MNIST}/), \
             or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
             t10k-labels-idx1-ubyte.gz from {} into {target}/",
            Source::official(kind, split).base_url
        ),
        DatasetKind::Mnist => format!(
            "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
             t10k-labels-idx1-ubyte.gz from {} into {target}/",
            Source::official(kind, split).base_url
        ),
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
            let source = Source::official(kind, split);
            let archive = &source.files[0];
            format!(
                "download {} and unpack it into {target}/ (`tar xzf {} -C {target}`)",
                source.url(archive),
                archive.name
            )
        }
    };
    format!(
        "no {kind} {split} files found\n  looked in: {looked}\n  for: {files}{gz}\n  not downloaded: {why}\n  \
         to fix: {how}; or set `data.path` in the spec to a directory holding them \
         (a mirror of the official files can be given with {}=<base URL>)",
        fetch::MIRROR_ENV
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::RemoteFile;

    fn unreachable_source(name: &str) -> Source {
        // Port 1 on loopback: connection refused at once, no network needed.
        Source {
            base_url: "http://127.0.0.1:1".into(),
            files: vec![RemoteFile {
                name: name.into(),
                sha256: "00".repeat(32),
            }],
        }
    }

    #[test]
    fn missing_files_without_network_say_where_and_how() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cifar10");
        let source = unreachable_source("cifar-10-binary.tar.gz");
        let e = find_or_fetch(
            DatasetKind::Cifar10,
            Split::Test,
            &[dir.clone()],
            true,
            &source,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(&format!("{}/", dir.display())), "{e}");
        assert!(e.contains("cifar-10-batches-bin/test_batch.bin"), "{e}");
        assert!(e.contains("127.0.0.1:1/cifar-10-binary.tar.gz"), "{e}");
        assert!(e.contains("tar xzf cifar-10-binary.tar.gz"), "{e}");
        assert!(!dir.exists(), "a failed download left {}", dir.display());
    }

    #[test]
    fn fashion_mnist_hint_names_the_debian_package() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = [tmp.path().to_path_buf()];
        let source = unreachable_source("t10k-images-idx3-ubyte.gz");
        let e = find_or_fetch(
            DatasetKind::FashionMnist,
            Split::Test,
            &dirs,
            false,
            &source,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("apt-get install dataset-fashion-mnist"), "{e}");
        assert!(
            e.contains("t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each plain or .gz)"),
            "{e}"
        );
        assert!(e.contains("data.download: false"), "{e}");
    }

    #[test]
    fn files_are_found_plain_gzipped_or_inside_the_archive_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(a.join("cifar-10-batches-bin")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("cifar-10-batches-bin/test_batch.bin"), b"").unwrap();
        std::fs::write(b.join("t10k-images-idx3-ubyte.gz"), b"").unwrap();
        std::fs::write(b.join("t10k-labels-idx1-ubyte"), b"").unwrap();
        let dirs = [b.clone(), a.clone()];
        assert_eq!(
            find(DatasetKind::Cifar10, Split::Test, &dirs),
            Some(vec![a.join("cifar-10-batches-bin/test_batch.bin")])
        );
        assert_eq!(
            find(DatasetKind::Mnist, Split::Test, &dirs),
            Some(vec![
                b.join("t10k-images-idx3-ubyte.gz"),
                b.join("t10k-labels-idx1-ubyte")
            ])
        );
        assert_eq!(find(DatasetKind::Mnist, Split::Train, &dirs), None);
        // A path pointing into the unpacked folder itself.
        let inner = [a.join("cifar-10-batches-bin")];
        assert!(find(DatasetKind::Cifar10, Split::Test, &inner).is_some());
    }
}
