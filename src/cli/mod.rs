//! Subcommands of the `cnnviz` binary and what they share.

pub mod bench;
pub mod channels;
pub mod convert;
pub mod eval;
pub mod explain_out;
pub mod info;
pub mod kiosk;
pub mod predict;
pub mod render;
pub mod soak;
pub mod store;
pub mod train;
pub mod window;

use std::path::{Path, PathBuf};

use anyhow::Context;
use cnnviz::gpu::GpuContext;
use cnnviz::model::{Model, ModelError, load_model};

/// Where the committed model lives, relative to the repository root.
pub const DEFAULT_MODEL: &str = "weights/mnist-cnn.safetensors";

/// `weights/mnist-cnn.safetensors` under the current directory if it is there, else the
/// one in the source tree this binary was built from (so `cargo install`ed copies work).
pub fn default_model_path() -> PathBuf {
    let local = PathBuf::from(DEFAULT_MODEL);
    if local.exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL)
    }
}

pub fn load(model: &Option<PathBuf>) -> anyhow::Result<(PathBuf, Model)> {
    let path = model.clone().unwrap_or_else(default_model_path);
    let loaded = load_model(&path).map_err(|e| match e {
        // These name the file already.
        ModelError::Io { .. } | ModelError::FileTooLarge { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(other).context(format!("model {}", path.display())),
    })?;
    Ok((path, loaded))
}

pub fn gpu() -> anyhow::Result<GpuContext> {
    GpuContext::new().context("opening the GPU")
}
