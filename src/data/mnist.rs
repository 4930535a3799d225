//! MNIST: 28×28 grey digits with labels 0–9, read from the four original IDX files.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::DataError;
use super::idx::read_idx_file;

/// MNIST has ten classes, the digits 0–9; a larger label means a damaged file.
pub const MNIST_CLASSES: usize = 10;

/// Which half of MNIST to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60 000 images for training.
    Train,
    /// 10 000 images that training never sees, for measuring accuracy.
    Test,
}

impl Split {
    /// File-name stem shared by the image and label files of this split.
    fn stem(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Grey images (0 = black background, 255 = white ink) and their labels, kept as bytes:
/// a quarter of the memory of floats, and conversion is cheap next to a forward pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// `len() * rows * cols` bytes, image after image, each row-major.
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of one image.
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// The `rows * cols` bytes of image `i`. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.images[i * n..(i + 1) * n]
    }

    /// A copy of the items in `range` (clamped to the dataset), for quick experiments and
    /// tests that do not need all 60 000 images.
    pub fn subset(&self, range: Range<usize>) -> Dataset {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        let n = self.pixels_per_image();
        Dataset {
            images: self.images[start * n..end * n].to_vec(),
            labels: self.labels[start..end].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// Where the MNIST files live: `data/mnist` under the current directory when it exists
/// (running from a checkout or an installed copy with its data), else the source tree's.
pub fn default_data_dir() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))
    }
}

/// Loads one split from `dir`, which holds the original file names, gzipped (`*.gz`) or
/// not. Images and labels are checked against each other and labels against 0–9.
pub fn load_mnist(dir: &Path, split: Split) -> Result<Dataset, DataError> {
    let images_path = find_file(dir, &format!("{}-images-idx3-ubyte", split.stem()));
    let labels_path = find_file(dir, &format!("{}-labels-idx1-ubyte", split.stem()));
    let images = read_idx_file(&images_path, 3)?;
    let labels = read_idx_file(&labels_path, 1)?;
    let (count, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != count {
        return Err(DataError::CountMismatch {
            images: images_path,
            image_count: count,
            labels: labels_path,
            label_count: labels.dims[0],
        });
    }
    check_labels(&labels.data, &labels_path)?;
    Ok(Dataset {
        images: images.data,
        labels: labels.data,
        rows,
        cols,
    })
}

/// Prefers the gzipped file; falls back to the uncompressed one. When neither exists the
/// `.gz` path is returned, so the error names the file as it is distributed.
fn find_file(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}.gz"));
    let raw = dir.join(stem);
    if !gz.exists() && raw.exists() {
        raw
    } else {
        gz
    }
}

fn check_labels(labels: &[u8], path: &Path) -> Result<(), DataError> {
    match labels.iter().position(|&l| usize::from(l) >= MNIST_CLASSES) {
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: labels[index],
            classes: MNIST_CLASSES,
        }),
        None => Ok(()),
    }
}
