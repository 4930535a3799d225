//! `cnnviz predict`: the digit in each image, all class probabilities, and Grad-CAM (or,
//! with `--method`, any explanation method: `explain_out`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use cnnviz::colormap::ColorMap;
use cnnviz::data::model_input::input_from_image;
use cnnviz::data::preprocess::{PreprocessError, load_image};
use cnnviz::gpu::{CamTarget, GpuNetwork, InferenceRequest};
use cnnviz::heatmap;
use cnnviz::model::Model;
use serde_json::json;

use super::explain_out::{self, ExplainArgs, ExplainInput, ExplainJob};

/// Images go to the GPU in batches of at most this many.
const MAX_BATCH: usize = 256;

#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// PNG or JPEG images of digits: any size, colour or grey, dark ink on light paper or the
    /// reverse.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Grad-CAM target class index; default: the predicted class.
    #[arg(long)]
    target: Option<usize>,
    /// Grad-CAM conv block: its index (0 = first) or its layer name; default: the last.
    #[arg(long)]
    layer: Option<String>,
    /// Write a Grad-CAM overlay PNG per image into this folder.
    #[arg(long)]
    heatmap_out: Option<PathBuf>,
    /// Colour map of the overlays.
    #[arg(long, value_enum, default_value_t)]
    colormap: ColorMap,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    explain: ExplainArgs,
}

/// An image that preprocessed into a model input.
struct Prepared {
    file: PathBuf,
    input: Vec<f32>,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let methods = match args
        .explain
        .method
        .as_deref()
        .map(explain_out::parse_methods)
    {
        None => None,
        Some(Ok(methods)) => Some(methods),
        Some(Err(e)) => {
            // A usage error, like clap's own: exit status 2.
            eprintln!("cnnviz: error: --method: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let (_, model) = super::load(&args.model)?;
    let block = resolve_block(&model, args.layer.as_deref())?;
    if block.is_none() && methods.is_none() {
        eprintln!("{NO_GRAD_CAM}");
    }
    let target = match args.target {
        None => CamTarget::Predicted,
        Some(c) if c < model.num_classes() => CamTarget::Class(c),
        Some(c) => bail!(
            "--target {c} is not a class index (0..{})",
            model.num_classes() - 1
        ),
    };
    if let Some(dir) = &args.heatmap_out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (input, preprocessing) = (model.architecture.input, model.architecture.preprocessing());

    let mut failed = false;
    let mut prepared = Vec::new();
    for file in &args.images {
        let result =
            load_image(file).and_then(|image| input_from_image(&image, input, preprocessing));
        match result {
            Ok(pixels) => prepared.push(Prepared {
                file: file.clone(),
                input: pixels,
            }),
            Err(e) => {
                failed = true;
                match e {
                    PreprocessError::Empty => eprintln!("cnnviz: error: {}: {e}", file.display()),
                    // The other errors name the file themselves.
                    _ => eprintln!("cnnviz: error: {e}"),
                }
            }
        }
    }
    if prepared.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    if let Some(methods) = methods {
        let job = ExplainJob {
            args: &args.explain,
            methods,
            class: args.target,
            block,
            json: args.json,
            heatmap_out: args.heatmap_out.as_deref(),
            colormap: args.colormap,
        };
        let images: Vec<ExplainInput> = prepared
            .iter()
            .map(|p| ExplainInput {
                file: &p.file,
                pixels: &p.input,
                input: model.normalize(&p.input),
            })
            .collect();
        let code = explain_out::run(&job, &model, &images)?;
        return Ok(if failed { ExitCode::FAILURE } else { code });
    }

    let gpu = super::gpu()?;
    let batch_capacity = prepared.len().min(MAX_BATCH) as u32;
    let network = GpuNetwork::new(&gpu.device, &model, batch_capacity)?;
    for chunk in prepared.chunks(MAX_BATCH) {
        let normalised: Vec<f32> = chunk
            .iter()
            .flat_map(|p| model.normalize(&p.input))
            .collect();
        let request = InferenceRequest {
            batch: chunk.len() as u32,
            target,
            block,
            grad_cam: block.is_some(),
            ..InferenceRequest::default()
        };
        let output = network.run_blocking(&gpu.device, &gpu.queue, &normalised, &request)?;
        let blocks = model.conv_blocks();
        let block_info = block.and_then(|b| blocks.get(b));
        for (p, result) in chunk.iter().zip(&output.images) {
            let cam = result.grad_cam.as_ref();
            if block.is_some() && cam.is_none() {
                bail!("the GPU network returned no Grad-CAM");
            }
            if args.json {
                let line = json!({
                    "file": p.file.display().to_string(),
                    "predicted": result.predicted,
                    "label": model.architecture.classes[result.predicted],
                    "probabilities": result.probabilities,
                    "logits": result.logits,
                    "target": result.target,
                    "layer": block_info.map(|b| b.name.as_str()),
                    "input": input_json(&p.input, input.channels, input.width),
                    "cam": cam.map(|c| rows(&c.heatmap, input.width)),
                    "cam_raw": cam.zip(block_info).map(|(c, b)| rows(&c.raw, b.width)),
                });
                println!("{line}");
            } else {
                print_text(&model, &p.file, result.predicted, &result.probabilities);
            }
            if let (Some(dir), Some(cam)) = (&args.heatmap_out, cam) {
                let picture = heatmap::overlay(
                    &p.input,
                    &cam.heatmap,
                    input.width,
                    input.height,
                    10,
                    args.colormap,
                );
                let out = overlay_path(dir, &p.file);
                picture
                    .save(&out)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The note for a model without conv layers, said once per command.
pub const NO_GRAD_CAM: &str = "note: this model has no conv layer, so Grad-CAM is off";

/// Accepts a block index (`1`) or the name of its conv layer (`conv2`); without one, the
/// last block. `None` for a model without conv layers (Grad-CAM is then off).
pub fn resolve_block(model: &Model, layer: Option<&str>) -> anyhow::Result<Option<usize>> {
    let blocks = model.conv_blocks();
    if blocks.is_empty() {
        if let Some(layer) = layer {
            bail!("--layer {layer}: this model has no conv layer, so there is no Grad-CAM");
        }
        return Ok(None);
    }
    let Some(layer) = layer else {
        return Ok(Some(blocks.len() - 1));
    };
    if let Ok(i) = layer.parse::<usize>()
        && i < blocks.len()
    {
        return Ok(Some(i));
    }
    if let Some(i) = blocks.iter().position(|b| b.name == layer) {
        return Ok(Some(i));
    }
    let names: Vec<String> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i} or {}", b.name))
        .collect();
    bail!(
        "--layer {layer} is not a conv block of this model (choose {})",
        names.join(", ")
    )
}

pub fn print_text(model: &Model, file: &Path, predicted: usize, probabilities: &[f32]) {
    let classes = &model.architecture.classes;
    println!(
        "{}: {} ({:.2} %)",
        file.display(),
        classes[predicted],
        100.0 * probabilities[predicted]
    );
    let all: Vec<String> = classes
        .iter()
        .zip(probabilities)
        .map(|(c, p)| format!("{c}:{p:.4}"))
        .collect();
    println!("  {}", all.join(" "));
}

fn rows(values: &[f32], width: usize) -> Vec<&[f32]> {
    values.chunks(width).collect()
}

/// A grey input as rows (H×W), a colour one as channels of rows (C×H×W), for `predict`'s
/// JSON with or without `--method`.
pub(super) fn input_json(values: &[f32], channels: usize, width: usize) -> serde_json::Value {
    if channels <= 1 {
        return json!(rows(values, width));
    }
    let plane = values.len() / channels;
    json!(
        values
            .chunks(plane.max(1))
            .map(|p| rows(p, width))
            .collect::<Vec<_>>()
    )
}

fn overlay_path(dir: &Path, file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    dir.join(format!("{stem}-gradcam.png"))
}
