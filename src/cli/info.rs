//! `cnnviz info`: which adapter runs the kernels, and what the model looks like.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cnnviz::gpu::NetworkOptions;
use cnnviz::gpu::tune::tuned_network;
use cnnviz::model::arch_text::{guess_arch_line, natural_cmp};
use cnnviz::model::file::tensor_shapes;
use cnnviz::model::onnx::looks_like_onnx;
use cnnviz::model::{LayerOp, METADATA_KEY, Model, read_model_file};
use safetensors::SafeTensors;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Batch sizes whose kernel choice to show (tuning them if nothing is cached): the
    /// window runs 1 image, `eval` 500 by default.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 500])]
    batches: Vec<u32>,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let source = super::model_source(&args.model);
    if source.arch.is_none()
        && let Some(explanation) = missing_architecture(&source.path)
    {
        print!("{explanation}");
        anyhow::bail!(
            "model {} has no architecture: give it with --arch (above: the tensors found and a suggested line)",
            source.path.display()
        );
    }
    let (path, model) = super::load(&args.model)?;
    let gpu = super::gpu()?;
    println!("adapter: {}", gpu.describe());
    println!();
    println!("model: {} ({})", model.architecture.name, path.display());
    print!("{}", summary(&model));
    let (fits, _) = cnnviz::gpu::GpuNetwork::max_batch_for(&model, &gpu.device.limits());
    for &batch in &args.batches {
        let batch = batch.clamp(1, fits.max(1));
        let (network, choice) = tuned_network(
            &gpu.device,
            &gpu.queue,
            &model,
            batch,
            &NetworkOptions::default(),
        )?;
        println!();
        println!(
            "kernels of a {batch}-image network ({}, tuning bucket {}):",
            choice.variant, choice.bucket
        );
        for decision in &choice.decisions {
            println!("  {}", decision.describe());
        }
        println!("  launches: {}", network.forward_kernels().join(", "));
        if let Some(path) = &choice.cache_path {
            println!("  cache: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// For a safetensors file without cnnviz's metadata (a bare PyTorch `state_dict`): what
/// is missing, the tensors it holds, and an `--arch` line guessed from their shapes.
/// `None` for any other file (the loader's own error says what is wrong with it).
pub fn missing_architecture(path: &Path) -> Option<String> {
    let bytes = read_model_file(path).ok()?;
    if looks_like_onnx(path, &bytes) {
        return None;
    }
    let tensors = SafeTensors::deserialize(&bytes).ok()?;
    let (_, header) = SafeTensors::read_metadata(&bytes).ok()?;
    if header
        .metadata()
        .as_ref()
        .is_some_and(|m| m.contains_key(METADATA_KEY))
    {
        return None;
    }
    let mut shapes = tensor_shapes(&tensors);
    shapes.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let mut out = format!(
        "model {} holds {} tensors but no architecture: its `__metadata__` has no \"{METADATA_KEY}\" entry (files cnnviz writes have one; a PyTorch state_dict saved with safetensors.torch.save_file has not).\n\ntensors found:\n",
        path.display(),
        shapes.len()
    );
    let width = shapes.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, shape) in &shapes {
        let dtype = tensors
            .tensor(name)
            .map(|t| format!("{:?}", t.dtype()))
            .unwrap_or_default();
        out += &format!("  {name:<width$}  {shape:?} {dtype}\n");
    }
    out += "\nGive the architecture with --arch: short text (README, \"Bring your own model\") or a JSON architecture file.\n";
    match guess_arch_line(&shapes) {
        Some(line) => {
            out += "A guess from the shapes (a state_dict records no input size, padding, pooling or activations: check them):\n";
            out += &format!(
                "  cnnviz info --model {} --arch \"{line}\"\n",
                path.display()
            );
        }
        None => out += "No --arch line could be guessed from these tensors.\n",
    }
    Some(out)
}

/// A table of layers with their output shapes and parameter counts.
pub fn summary(model: &Model) -> String {
    let a = &model.architecture;
    let mut out = format!(
        "input: {} (normalised with mean {} and std {}; preprocessing: {:?})\nclasses: {}\n\n",
        model.input_shape(),
        a.normalization.mean,
        a.normalization.std,
        a.preprocessing(),
        a.classes.join(" ")
    );
    let mut rows = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let op = match layer.plan.op {
            LayerOp::Conv2d(g) if g.padding_end != g.padding => format!(
                "{}→{} k{} s{} p{}/{}",
                g.in_channels, g.out_channels, g.kernel, g.stride, g.padding, g.padding_end
            ),
            LayerOp::Conv2d(g) => format!(
                "{}→{} k{} s{} p{}",
                g.in_channels, g.out_channels, g.kernel, g.stride, g.padding
            ),
            LayerOp::Relu => "max(0, x)".to_string(),
            LayerOp::LeakyRelu { negative_slope } => {
                format!("max(0, x) + {negative_slope}·min(0, x)")
            }
            LayerOp::Sigmoid => "1 / (1 + e^-x)".to_string(),
            LayerOp::Tanh => "tanh(x)".to_string(),
            LayerOp::Dropout => "identity at inference".to_string(),
            LayerOp::BatchNorm { eps, .. } => format!("(x - mean) / sqrt(var + {eps}) · γ + β"),
            LayerOp::MaxPool2d { kernel, stride } => format!("k{kernel} s{stride}"),
            LayerOp::AvgPool2d(g) => format!(
                "mean k{} s{} p{}{}",
                g.kernel,
                g.stride,
                g.padding,
                if g.count_include_pad {
                    ""
                } else {
                    " (pads not counted)"
                }
            ),
            LayerOp::GlobalAvgPool => "mean of each channel".to_string(),
            LayerOp::Flatten => "C·H·W → vector".to_string(),
            LayerOp::Dense {
                in_features,
                out_features,
            } => format!("{in_features}→{out_features}"),
        };
        let params = layer
            .params
            .as_ref()
            .map(|p| {
                p.weight.len() + p.bias.len() + p.running.as_ref().map_or(0, |r| 2 * r.mean.len())
            })
            .unwrap_or(0);
        rows.push([
            i.to_string(),
            layer.plan.name.clone(),
            a.layers[i].kind_name().to_string(),
            op,
            layer.plan.output.to_string(),
            params.to_string(),
        ]);
    }
    // Columns as wide as their longest entry (exporters' layer names can be long).
    let header = ["#", "layer", "type", "operation", "output", "params"].map(str::to_string);
    let width = |column: usize, least: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[column].chars().count())
            .fold(least, usize::max)
    };
    let (name_w, kind_w, op_w) = (width(1, 10), width(2, 10), width(3, 34));
    for r in std::iter::once(&header).chain(&rows) {
        out += &format!(
            "{:>3}  {:<name_w$} {:<kind_w$} {:<op_w$} {:>12} {:>10}\n",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }
    out += &format!("parameters: {}\n", model.parameter_count());
    let blocks: Vec<String> = model
        .conv_blocks()
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i}: {} ({}×{}×{})", b.name, b.channels, b.height, b.width))
        .collect();
    out += &format!(
        "Grad-CAM conv blocks (default: the last): {}\n",
        blocks.join(", ")
    );
    out
}
