//! `cnnviz --kiosk [--config kiosk.toml]`: the window for unattended touch screens. The
//! config is read and the one-instance lock taken before any window or GPU, so a bad config
//! or a second kiosk on the same store stops with one clear line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cnnviz::app::{KioskOptions, StoreChoice, ViewerOptions, WindowOptions};
use cnnviz::kiosk::{AttractDigits, InstanceLock, KioskConfig};
use cnnviz::store::resolve_store_path;

/// The config with every key at its default when no file is given.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<KioskConfig> {
    match path {
        Some(path) => Ok(KioskConfig::load(path)?),
        None => Ok(KioskConfig::default()),
    }
}

/// Where the kiosk's store lives: the config's, else `--store`, else the default.
pub fn store_path(config: &KioskConfig, cli_store: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let explicit = config.store_path().or(cli_store.as_deref());
    Ok(resolve_store_path(explicit)?)
}

pub fn run(
    model: &Option<PathBuf>,
    config: KioskConfig,
    store: PathBuf,
) -> anyhow::Result<ExitCode> {
    for warning in config.warnings() {
        log::warn!("kiosk config: {warning}");
    }
    // Held until the process ends: a second kiosk on this store stops here.
    let _lock = InstanceLock::acquire(&store)?;
    let (model_path, model) = super::load(model)?;
    let (digits, problem) = AttractDigits::load(&cnnviz::data::mnist::default_data_dir());
    if let Some(problem) = problem {
        log::warn!("{problem}");
    }
    log::info!(
        "kiosk starting: store {}, idle {} s, attract {}",
        store.display(),
        config.idle_seconds,
        if config.attract.enabled { "on" } else { "off" }
    );
    let options = WindowOptions {
        viewer: ViewerOptions {
            model_path,
            store: StoreChoice::At(store),
            features: config.overlay_features(),
            kiosk: Some(KioskOptions { config, digits }),
        },
    };
    cnnviz::app::run_window(model, options).context("kiosk")?;
    log::info!("kiosk closed by the admin");
    Ok(ExitCode::SUCCESS)
}
