use std::path::PathBuf;

/// Everything that can be wrong with a dataset file. Every variant names the file, so a
/// person knows which of the four MNIST files to download again. I/O and gzip causes are
/// kept as [`std::error::Error::source`], not repeated in the message, so an error chain
/// (anyhow's `{:#}`) prints each cause once.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt or truncated gzip stream")]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an IDX file of the expected kind: {reason}")]
    BadMagic { path: PathBuf, reason: String },
    #[error("{path}: the file ends inside the {expected}-byte IDX header")]
    TruncatedHeader { path: PathBuf, expected: usize },
    #[error(
        "{path}: truncated: the header announces {expected} data bytes, the file holds {found}"
    )]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{path}: trailing garbage after the {expected} data bytes the header announces")]
    TrailingData { path: PathBuf, expected: usize },
    #[error("{path}: dimension {index} of the header is {size}, outside 1..={limit}")]
    DimensionOutOfRange {
        path: PathBuf,
        index: usize,
        size: u64,
        limit: u64,
    },
    #[error("{path}: the header announces {bytes} data bytes; at most {limit} are accepted")]
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        images: PathBuf,
        image_count: usize,
        labels: PathBuf,
        label_count: usize,
    },
    #[error("{path}: label {label} of item {index} is outside 0..{classes}")]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },
}
