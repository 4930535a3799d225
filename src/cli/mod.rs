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
use std::sync::OnceLock;

use anyhow::Context;
use cnnviz::gpu::GpuContext;
use cnnviz::model::{Model, ModelError, ModelSource};

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

/// The global `--arch` flag. Every command that takes `--model` loads through [`load`],
/// so the flag is kept here once rather than threaded through each command's arguments.
static ARCH: OnceLock<Option<String>> = OnceLock::new();

/// Records `--arch` (called once by `main`, before any command runs).
pub fn set_arch(arch: Option<String>) {
    let _ = ARCH.set(arch);
}

/// `--arch`, if given.
pub fn arch() -> Option<String> {
    ARCH.get().cloned().flatten()
}

/// Where the model comes from: `--model` (or the committed one) with `--arch`.
pub fn model_source(model: &Option<PathBuf>) -> ModelSource {
    ModelSource {
        path: model.clone().unwrap_or_else(default_model_path),
        arch: arch(),
    }
}

pub fn load(model: &Option<PathBuf>) -> anyhow::Result<(PathBuf, Model)> {
    let source = model_source(model);
    let path = source.path.clone();
    let loaded = source.load().map_err(|e| match e {
        // These name the file already.
        ModelError::Io { .. } | ModelError::FileTooLarge { .. } => anyhow::Error::new(e),
        ModelError::MissingMetadata { .. } => anyhow::Error::new(e).context(format!(
            "model {} (for a bare PyTorch state_dict give its architecture with --arch; `cnnviz info --model {}` lists its tensors and suggests a line)",
            path.display(),
            path.display()
        )),
        other => anyhow::Error::new(other).context(format!("model {}", path.display())),
    })?;
    Ok((path, loaded))
}

pub fn gpu() -> anyhow::Result<GpuContext> {
    GpuContext::new().context("opening the GPU")
}
