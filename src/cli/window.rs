//! `cnnviz` without a command: the window.

use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(model: &Option<PathBuf>, store: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (model_path, model) = super::load(model)?;
    let options = cnnviz::app::WindowOptions {
        model_path,
        store: store.clone(),
    };
    cnnviz::app::run_window(model, options)?;
    Ok(ExitCode::SUCCESS)
}
