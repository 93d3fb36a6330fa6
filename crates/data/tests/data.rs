//! Dataset loading against real files: the first 20 CIFAR test images, the
//! embedded Fashion-MNIST subset, damaged copies of them, and downloads from
//! a local HTTP server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Instant;

use explore_data::cifar::read_cifar;
use explore_data::fetch::{self, RemoteFile, Source};
use explore_data::{self as data, DataError, Dataset, Split};
use explore_he_model::arch::DatasetKind;
use explore_spec::DataSpec;
use sha2::{Digest, Sha256};

const CIFAR10_FIXTURE: &str = "tests/fixtures/cifar10-test-first20.bin";
const CIFAR100_FIXTURE: &str = "tests/fixtures/cifar100-test-first20.bin";
/// The Fashion-MNIST subset the quick sweep runs on, committed at the
/// workspace root.
fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-subset")
}

fn spec(dataset: DatasetKind, path: &Path) -> DataSpec {
    DataSpec {
        dataset,
        path: Some(path.to_path_buf()),
        train_size: None,
        test_size: None,
        validation: None,
        seed: 0,
        download: false,
    }
}

fn class_counts(d: &Dataset) -> Vec<usize> {
    let mut counts = vec![0; d.kind.classes()];
    for &l in &d.labels {
        counts[l as usize] += 1;
    }
    counts
}

#[test]
fn cifar10_fixture_has_the_official_labels_and_pixels() {
    let batch = read_cifar(Path::new(CIFAR10_FIXTURE), DatasetKind::Cifar10, None).unwrap();
    assert_eq!(
        batch.images.labels,
        [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
    );
    assert_eq!(batch.images.pixels.len(), 20 * 3072);
    // Image 0, red plane, first row.
    assert_eq!(
        batch.images.pixels[..8],
        [158, 159, 165, 166, 160, 156, 162, 159]
    );
    assert_eq!(batch.coarse_labels, None);
}

#[test]
fn cifar100_fixture_uses_fine_labels() {
    let batch = read_cifar(Path::new(CIFAR100_FIXTURE), DatasetKind::Cifar100, None).unwrap();
    assert_eq!(batch.images.labels.len(), 20);
    assert_eq!(batch.images.labels[0], 49);
    assert_eq!(batch.coarse_labels.unwrap()[0], 10);
    assert_eq!(batch.images.pixels.len(), 20 * 3072);
}

#[test]
fn cifar_file_of_the_wrong_size_names_file_and_expected_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("test_batch.bin");
    // The 20-record fixture is a whole number of records but not an official batch.
    std::fs::copy(CIFAR10_FIXTURE, &file).unwrap();
    let e = data::load(&spec(DatasetKind::Cifar10, tmp.path()), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.contains("61460 bytes, expected 30730000 bytes"), "{e}");
    // Cut mid-record: not even a whole number of records.
    let bytes = std::fs::read(CIFAR10_FIXTURE).unwrap();
    std::fs::write(&file, &bytes[..5000]).unwrap();
    let e = read_cifar(&file, DatasetKind::Cifar10, None).unwrap_err();
    assert!(matches!(e, DataError::Size { actual: 5000, .. }), "{e}");
    assert!(e.to_string().contains("a multiple of 3073 bytes"), "{e}");
}

#[test]
fn embedded_subset_is_class_balanced() {
    let s = spec(DatasetKind::FashionMnist, &subset_dir());
    let train = data::load(&s, Split::Train).unwrap();
    let test = data::load(&s, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (5000, 1000));
    assert_eq!(class_counts(&train), vec![500; 10]);
    assert_eq!(class_counts(&test), vec![100; 10]);
    assert_eq!(train.image_len(), 784);
    assert_eq!(train.images.len(), 5000 * 784);
    // The official sets start with an ankle boot (9) in both splits.
    assert_eq!((train.labels[0], test.labels[0]), (9, 9));
    // A black pixel maps to -mean/std of Fashion-MNIST.
    let (mean, std) = data::normalization(DatasetKind::FashionMnist);
    assert_eq!(train.image(0)[0], -mean[0] / std[0]);
}

#[test]
fn configured_sizes_take_a_seeded_subset() {
    let mut s = spec(DatasetKind::FashionMnist, &subset_dir());
    s.train_size = Some(300);
    s.seed = 5;
    let a = data::load(&s, Split::Train).unwrap();
    let b = data::load(&s, Split::Train).unwrap();
    assert_eq!(a.len(), 300);
    assert_eq!(a, b);
    s.seed = 6;
    assert_ne!(a.labels, data::load(&s, Split::Train).unwrap().labels);
    // The same draw through Dataset::subset on the full split.
    s.train_size = None;
    let full = data::load(&s, Split::Train).unwrap();
    assert_eq!(full.subset(300, 5), a);
    assert_eq!(full.subset(5000, 5), full);
}

/// Copies the subset's test files into a temp dir, replacing one with `damage(bytes)`.
fn damaged_copy(file: &str, damage: impl Fn(Vec<u8>) -> Vec<u8>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(subset_dir().join(name), tmp.path().join(name)).unwrap();
    }
    let path = tmp.path().join(file);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, damage(bytes)).unwrap();
    (tmp, path)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

#[test]
fn truncated_idx_files_name_file_and_expected_size() {
    // 1,000 images: 16-byte header + 1000 * 28 * 28 bytes.
    let expected = "784016 bytes (header: 1000 x 28 x 28)";
    let (tmp, path) = damaged_copy("t10k-images-idx3-ubyte.gz", |b| b[..b.len() / 2].to_vec());
    let e = data::load(&spec(DatasetKind::FashionMnist, tmp.path()), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains(expected),
        "{e}"
    );
    assert!(e.contains("gzip stream broke off"), "{e}");

    // Uncompressed and cut short: the plain file is found before the .gz one.
    let (tmp, path) = damaged_copy("t10k-images-idx3-ubyte.gz", |b| {
        gunzip(&b)[..700_000].to_vec()
    });
    let plain = path.with_extension("");
    std::fs::rename(&path, &plain).unwrap();
    let e = data::load(&spec(DatasetKind::FashionMnist, tmp.path()), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&plain.display().to_string()), "{e}");
    assert!(
        e.contains(&format!("700000 bytes, expected {expected}")),
        "{e}"
    );
}

#[test]
fn mismatched_or_foreign_idx_files_are_rejected() {
    // Labels of another length than the images.
    let (tmp, _) = damaged_copy("t10k-labels-idx1-ubyte.gz", |b| {
        let mut raw = gunzip(&b);
        raw[4..8].copy_from_slice(&999u32.to_be_bytes());
        raw.truncate(8 + 999);
        raw
    });
    let e = data::load(&spec(DatasetKind::FashionMnist, tmp.path()), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(e.contains("999 labels for the 1000 images"), "{e}");
    // An images file where a labels file belongs: wrong magic number.
    let (tmp, path) = damaged_copy("t10k-labels-idx1-ubyte.gz", |_| {
        std::fs::read(subset_dir().join("t10k-images-idx3-ubyte.gz")).unwrap()
    });
    let e = data::load(&spec(DatasetKind::FashionMnist, tmp.path()), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("magic number"),
        "{e}"
    );
}

/// An HTTP server on 127.0.0.1 that answers `requests` GETs from `files`
/// (404 for other paths), then stops.
fn serve(files: Vec<(String, Vec<u8>)>, requests: usize) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let found = files.iter().find(|(name, _)| path == format!("/{name}"));
            let (status, body) = match found {
                Some((_, body)) => ("200 OK", &body[..]),
                None => ("404 Not Found", &b""[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body).unwrap();
        }
    });
    (base, handle)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn archive_download_checks_sha256_and_unpacks_atomically() {
    let fixture = std::fs::read(CIFAR10_FIXTURE).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(fixture.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        "cifar-10-batches-bin/test_batch.bin",
        &fixture[..],
    )
    .unwrap();
    let archive = tar.into_inner().unwrap().finish().unwrap();
    let name = "cifar-10-binary.tar.gz";
    let (base, server) = serve(vec![(name.to_string(), archive.clone())], 2);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar10");
    let mut source = Source {
        base_url: base,
        files: vec![RemoteFile {
            name: name.into(),
            sha256: sha256_hex(b"not the archive"),
        }],
    };
    let e = fetch::install(&source, &dir).unwrap_err();
    assert!(matches!(e, DataError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains(&sha256_hex(&archive)), "{e}");
    assert_eq!(dir_entries(&dir), Vec::<String>::new(), "left behind");

    source.files[0].sha256 = sha256_hex(&archive);
    fetch::install(&source, &dir).unwrap();
    assert_eq!(dir_entries(&dir), ["cifar-10-batches-bin"]);
    let batch = read_cifar(
        &dir.join("cifar-10-batches-bin/test_batch.bin"),
        DatasetKind::Cifar10,
        None,
    )
    .unwrap();
    assert_eq!(batch.images.labels[..4], [3, 8, 8, 0]);
    server.join().unwrap();
}

#[test]
fn load_downloads_missing_files_into_the_configured_path() {
    let files: Vec<(String, Vec<u8>)> = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(subset_dir().join(n)).unwrap()))
        .collect();
    let source = Source {
        base_url: String::new(),
        files: files
            .iter()
            .map(|(name, bytes)| RemoteFile {
                name: name.clone(),
                sha256: sha256_hex(bytes),
            })
            .collect(),
    };
    let (base, server) = serve(files, 2);
    let source = Source {
        base_url: base,
        ..source
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    // MNIST, not Fashion-MNIST: Debian's Fashion-MNIST directory is searched
    // before downloading, and would be found on machines that have it. The
    // files are the same format, and Fashion-MNIST labels are valid MNIST labels.
    let s = DataSpec {
        download: true,
        ..spec(DatasetKind::Mnist, &dir)
    };
    let test = data::load_from(&s, Split::Test, &source).unwrap();
    assert_eq!(test.len(), 1000);
    assert_eq!(class_counts(&test), vec![100; 10]);
    let mut got = dir_entries(&dir);
    got.sort();
    assert_eq!(
        got,
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    );
    server.join().unwrap();
}

/// The full Fashion-MNIST, where Debian's `dataset-fashion-mnist` put it.
/// Also checks the normalization constants against the real training set.
#[test]
fn full_fashion_mnist_loads_fast_and_normalizes_to_zero_mean_unit_std() {
    let debian = Path::new("/usr/share/datasets/fashion-mnist");
    if !debian.join("train-images-idx3-ubyte.gz").exists() {
        eprintln!(
            "skipped: {} not installed (apt-get install dataset-fashion-mnist)",
            debian.display()
        );
        return;
    }
    let start = Instant::now();
    let train = data::load(&spec(DatasetKind::FashionMnist, debian), Split::Train).unwrap();
    eprintln!("full Fashion-MNIST train loaded in {:.2?}", start.elapsed());
    assert_eq!(train.len(), 60_000);
    assert_eq!(class_counts(&train), vec![6000; 10]);
    let n = train.images.len() as f64;
    let mean = train.images.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = train
        .images
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(
        mean.abs() < 1e-3 && (var.sqrt() - 1.0).abs() < 1e-3,
        "mean {mean}, std {}",
        var.sqrt()
    );
}
