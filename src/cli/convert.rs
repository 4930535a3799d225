//! `cnnviz convert`: an ONNX file, or a bare PyTorch state_dict with `--arch`, to the
//! equivalent cnnviz model file (safetensors with the architecture JSON), so it can be
//! shared, inspected and loaded without the import or the `--arch` text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cnnviz::model::onnx::{ImportOptions, load_onnx_bytes, looks_like_onnx};
use cnnviz::model::spec::ChannelValues;
use cnnviz::model::{Normalization, read_model_file, save_model};

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The ONNX file (from torch.onnx.export or tf2onnx), or a safetensors state_dict
    /// with --arch.
    input: PathBuf,
    /// Where to write the cnnviz model file (.safetensors).
    output: PathBuf,
    /// Mean of the input normalisation, for pixels in 0..1: one value, or one per channel
    /// (`0.485,0.456,0.406`); default MNIST's 0.1307.
    #[arg(long, value_delimiter = ',')]
    mean: Vec<f32>,
    /// Standard deviation of the input normalisation, one value or one per channel;
    /// default MNIST's 0.3081.
    #[arg(long, value_delimiter = ',')]
    std: Vec<f32>,
    /// The model's name; default: the input file's name without extension.
    #[arg(long)]
    name: Option<String>,
}

/// `--mean` / `--std` where given, else `current`'s.
fn normalization(args: &ConvertArgs, current: &Normalization) -> Normalization {
    let values = |given: &[f32], current: &ChannelValues| match given {
        [] => current.clone(),
        [one] => ChannelValues::One(*one),
        each => ChannelValues::Each(each.to_vec()),
    };
    Normalization {
        mean: values(&args.mean, &current.mean),
        std: values(&args.std, &current.std),
    }
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_model_file(&args.input)?;
    let model = if looks_like_onnx(&args.input, &bytes) {
        let mut options = ImportOptions::for_path(&args.input);
        if let Some(name) = &args.name {
            options.name = name.clone();
        }
        options.normalization = normalization(args, &options.normalization);
        load_onnx_bytes(&bytes, &options)
            .with_context(|| format!("model {}", args.input.display()))?
    } else if super::arch().is_some() {
        // A state_dict with its architecture from --arch, through the one loader.
        let (_, mut model) = super::load(&Some(args.input.clone()))?;
        if let Some(name) = &args.name {
            model.architecture.name = name.clone();
        }
        model.architecture.normalization = normalization(args, &model.architecture.normalization);
        model.architecture.plan()?;
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
