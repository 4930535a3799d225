//! `cnnviz convert`: an ONNX file, or a bare PyTorch state_dict with `--arch`, to the
//! equivalent cnnviz model file (safetensors with the architecture JSON), so it can be
//! shared, inspected and loaded without the import or the `--arch` text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cnnviz::model::onnx::{ImportOptions, load_onnx_bytes, looks_like_onnx};
use cnnviz::model::{Normalization, read_model_file, save_model};

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The ONNX file (from torch.onnx.export or tf2onnx), or a safetensors state_dict
    /// with --arch.
    input: PathBuf,
    /// Where to write the cnnviz model file (.safetensors).
    output: PathBuf,
    /// Mean of the input normalisation, for pixels in 0..1; default MNIST's 0.1307.
    #[arg(long)]
    mean: Option<f32>,
    /// Standard deviation of the input normalisation; default MNIST's 0.3081.
    #[arg(long)]
    std: Option<f32>,
    /// The model's name; default: the input file's name without extension.
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_model_file(&args.input)?;
    let model = if looks_like_onnx(&args.input, &bytes) {
        let mut options = ImportOptions::for_path(&args.input);
        if let Some(name) = &args.name {
            options.name = name.clone();
        }
        let (mean, std) = options.normalization.of_channel(0);
        options.normalization =
            Normalization::uniform(args.mean.unwrap_or(mean), args.std.unwrap_or(std));
        load_onnx_bytes(&bytes, &options)
            .with_context(|| format!("model {}", args.input.display()))?
    } else if super::arch().is_some() {
        // A state_dict with its architecture from --arch, through the one loader.
        let (_, mut model) = super::load(&Some(args.input.clone()))?;
        if let Some(name) = &args.name {
            model.architecture.name = name.clone();
        }
        if args.mean.is_some() || args.std.is_some() {
            let (mean, std) = model.architecture.normalization.of_channel(0);
            model.architecture.normalization =
                Normalization::uniform(args.mean.unwrap_or(mean), args.std.unwrap_or(std));
            model.architecture.plan()?;
        }
        model
    } else {
        anyhow::bail!(
            "{} is not an ONNX file (convert reads .onnx files, or a PyTorch state_dict with --arch; cnnviz opens its own safetensors models as they are)",
            args.input.display()
        );
    };
    save_model(&model, &args.output)?;
    println!("wrote {}", args.output.display());
    print!("{}", super::info::summary(&model));
    Ok(ExitCode::SUCCESS)
}
