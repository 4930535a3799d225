//! Every kind of malformed IDX file is answered with the right typed error naming the
//! file, never a panic; the real MNIST files load with their published contents.

use std::io::Write;
use std::path::{Path, PathBuf};

use cnnviz::data::idx::{self, IdxArray, parse_idx_bytes, read_idx_file};
use cnnviz::data::{DataError, Split, default_data_dir, load_mnist};
use flate2::Compression;
use flate2::write::GzEncoder;

/// An IDX file of unsigned bytes with the given header sizes and data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, idx::TYPE_U8, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("in-memory write");
    encoder.finish().expect("in-memory gzip")
}

fn parse(bytes: &[u8], ndims: usize) -> Result<IdxArray, DataError> {
    parse_idx_bytes(bytes, Path::new("test.idx"), ndims)
}

/// Three 2×2 images.
fn images() -> Vec<u8> {
    idx_bytes(&[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
}

#[test]
fn well_formed_files_parse_raw_and_gzipped() {
    for bytes in [images(), gzip(&images())] {
        let array = parse(&bytes, 3).expect("valid IDX");
        assert_eq!(array.dims, vec![3, 2, 2]);
        assert_eq!(array.data, (0..12).collect::<Vec<u8>>());
    }
}

#[test]
fn bad_magic_numbers_are_refused() {
    let mut nonzero = images();
    nonzero[0] = 0x1f; // not gzip either: the second byte is not 0x8b
    let mut float = images();
    float[2] = 0x0d;
    let cases: [(&str, Vec<u8>, usize); 4] = [
        ("first bytes", nonzero, 3),
        ("float data", float, 3),
        ("3 dimensions for a label file", images(), 1),
        ("1 dimension for an image file", idx_bytes(&[2], &[1, 2]), 3),
    ];
    for (what, bytes, ndims) in cases {
        for bytes in [bytes.clone(), gzip(&bytes)] {
            match parse(&bytes, ndims) {
                Err(DataError::BadMagic { path, reason }) => {
                    assert_eq!(path, Path::new("test.idx"));
                    assert!(!reason.is_empty());
                }
                other => panic!("{what}: expected BadMagic, got {other:?}"),
            }
        }
    }
}

#[test]
fn truncated_headers_and_data_are_refused() {
    for cut in [0, 2, 4, 7, 15] {
        let bytes = &images()[..cut];
        assert!(
            matches!(parse(bytes, 3), Err(DataError::TruncatedHeader { .. })),
            "header cut at {cut}: {:?}",
            parse(bytes, 3)
        );
        assert!(matches!(
            parse(&gzip(bytes), 3),
            Err(DataError::TruncatedHeader { .. })
        ));
    }
    let full = images();
    let short = &full[..full.len() - 3];
    for bytes in [short.to_vec(), gzip(short)] {
        match parse(&bytes, 3) {
            Err(DataError::Truncated {
                expected, found, ..
            }) => assert_eq!((expected, found), (12, 9)),
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn trailing_garbage_is_refused() {
    let mut bytes = images();
    bytes.extend_from_slice(b"junk");
    for bytes in [bytes.clone(), gzip(&bytes)] {
        assert!(matches!(
            parse(&bytes, 3),
            Err(DataError::TrailingData { expected: 12, .. })
        ));
    }
}

#[test]
fn absurd_dimensions_are_refused_before_allocating() {
    let cases: [&[u32]; 5] = [
        &[u32::MAX, 28, 28],    // 4 billion images
        &[0, 28, 28],           // no images
        &[10, 0, 28],           // empty rows
        &[10, 28, 100_000],     // a side no image has
        &[1 << 24, 4096, 4096], // every dimension within its cap, the product absurd
    ];
    for dims in cases {
        let bytes = idx_bytes(dims, &[0; 16]);
        match parse(&bytes, 3) {
            Err(DataError::DimensionOutOfRange { .. } | DataError::TooLarge { .. }) => {}
            other => panic!("{dims:?}: expected a size error, got {other:?}"),
        }
    }
    // A plausible header over a short file only allocates as data arrives.
    let bytes = idx_bytes(&[1 << 20, 28, 28], &[0; 100]);
    assert!(matches!(
        parse(&bytes, 3),
        Err(DataError::Truncated { found: 100, .. })
    ));
}

#[test]
fn corrupt_gzip_is_refused() {
    let good = gzip(&images());
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff; // CRC-32 field of the trailer
    let mut garbled = good.clone();
    for b in &mut garbled[10..n - 8] {
        *b = 0xff;
    }
    let truncated = good[..n / 2].to_vec();
    let header_only = good[..10].to_vec();
    for (what, bytes) in [
        ("bad CRC", bad_crc),
        ("garbled deflate data", garbled),
        ("cut in half", truncated),
        ("header only", header_only),
    ] {
        match parse(&bytes, 3) {
            Err(DataError::Gzip { path, .. }) => assert_eq!(path, Path::new("test.idx")),
            other => panic!("{what}: expected a gzip error, got {other:?}"),
        }
    }
}

/// A temporary MNIST folder holding the test split with the given contents.
fn mnist_dir(images: &[u8], labels: &[u8], gzipped: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (name, bytes) in [
        ("t10k-images-idx3-ubyte", images),
        ("t10k-labels-idx1-ubyte", labels),
    ] {
        let (name, bytes) = if gzipped {
            (format!("{name}.gz"), gzip(bytes))
        } else {
            (name.to_string(), bytes.to_vec())
        };
        std::fs::write(dir.path().join(name), bytes).expect("write test file");
    }
    dir
}

#[test]
fn small_dataset_loads_from_raw_and_gzipped_files() {
    for gzipped in [false, true] {
        let dir = mnist_dir(&images(), &idx_bytes(&[3], &[7, 0, 9]), gzipped);
        let data = load_mnist(dir.path(), Split::Test).expect("valid files");
        assert_eq!((data.len(), data.rows, data.cols), (3, 2, 2));
        assert_eq!(data.image(2), &[8, 9, 10, 11]);
        assert_eq!(data.labels, vec![7, 0, 9]);
    }
}

#[test]
fn image_and_label_counts_must_agree() {
    let dir = mnist_dir(&images(), &idx_bytes(&[2], &[1, 2]), true);
    match load_mnist(dir.path(), Split::Test) {
        Err(
            e @ DataError::CountMismatch {
                image_count: 3,
                label_count: 2,
                ..
            },
        ) => {
            let message = e.to_string();
            assert!(message.contains("t10k-images-idx3-ubyte.gz"), "{message}");
            assert!(message.contains("t10k-labels-idx1-ubyte.gz"), "{message}");
        }
        other => panic!("expected CountMismatch, got {other:?}"),
    }
}

#[test]
fn labels_above_nine_are_refused() {
    let dir = mnist_dir(&images(), &idx_bytes(&[3], &[1, 10, 2]), false);
    match load_mnist(dir.path(), Split::Test) {
        Err(
            e @ DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            },
        ) => {
            assert!(e.to_string().contains("t10k-labels-idx1-ubyte"), "{e}");
        }
        other => panic!("expected LabelOutOfRange, got {other:?}"),
    }
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let missing = load_mnist(dir.path(), Split::Train).expect_err("nothing there");
    assert!(matches!(missing, DataError::Io { .. }));
    assert!(
        missing.to_string().contains("train-images-idx3-ubyte.gz"),
        "{missing}"
    );

    let path: PathBuf = dir.path().join("broken.idx");
    std::fs::write(&path, [0u8, 0, 8]).expect("write test file");
    let short = read_idx_file(&path, 1).expect_err("3 bytes are no header");
    assert!(short.to_string().contains("broken.idx"), "{short}");
}

#[test]
fn real_mnist_loads_with_its_published_contents() {
    let dir = default_data_dir();
    let train = load_mnist(&dir, Split::Train).expect("MNIST training set in data/mnist");
    let test = load_mnist(&dir, Split::Test).expect("MNIST test set in data/mnist");
    assert_eq!((train.len(), train.rows, train.cols), (60_000, 28, 28));
    assert_eq!((test.len(), test.rows, test.cols), (10_000, 28, 28));
    assert_eq!(train.images.len(), 60_000 * 784);
    assert_eq!(&train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(&test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let mut counts = [0usize; 10];
    for &label in &test.labels {
        counts[usize::from(label)] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // White ink on black: the background corner is 0 and some pixel is full ink.
    assert_eq!(train.image(0)[0], 0);
    assert_eq!(train.image(0).iter().max(), Some(&255));
}
