//! `cnnviz` without a command: the window.

use std::path::PathBuf;
use std::process::ExitCode;

use cnnviz::app::{StoreChoice, ViewerOptions, WindowOptions};

pub fn run(model: &Option<PathBuf>, store: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (model_path, model) = super::load(model)?;
    let options = WindowOptions {
        viewer: ViewerOptions {
            model_path,
            store: store.clone().map_or(StoreChoice::Default, StoreChoice::At),
            features: Default::default(),
            kiosk: None,
        },
    };
    cnnviz::app::run_window(model, options)?;
    Ok(ExitCode::SUCCESS)
}
