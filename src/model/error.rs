use std::path::PathBuf;

/// Everything that can be wrong with a model file. Each message names the problem so a
/// person can fix the file (or the exporter that wrote it) without reading code.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path} is {size} bytes; at most {limit} bytes are accepted")]
    FileTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    #[error(
        "the file carries no architecture: `__metadata__` has no \"{key}\" entry (was it saved by cnnviz or with the metadata shown in the README?)"
    )]
    MissingMetadata { key: &'static str },
    #[error("architecture metadata is not valid: {0}")]
    BadMetadata(String),
    #[error("architecture is inconsistent: {0}")]
    Inconsistent(String),
    #[error("tensor `{0}` named by the architecture is missing from the file")]
    MissingTensor(String),
    #[error("tensor `{0}` is in the file but no layer of the architecture uses it")]
    ExtraTensor(String),
    #[error("tensor `{name}` has shape {found:?}, the architecture expects {expected:?}")]
    TensorShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("tensor `{name}` has dtype {found}; only F32 is supported")]
    Dtype { name: String, found: String },
    #[error("tensor `{name}` holds a non-finite value (NaN or infinity) at element {index}")]
    NonFinite { name: String, index: usize },
    /// An ONNX file cnnviz cannot import; the message names the node and its op type.
    #[error("ONNX import: {0}")]
    Onnx(String),
    /// A mistake in `--arch` text, or a state_dict it does not fit; names the item.
    #[error("--arch: {0}")]
    ArchText(String),
    #[error("model exceeds a size limit: {0}")]
    TooLarge(String),
}
