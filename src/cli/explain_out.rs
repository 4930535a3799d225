//! `cnnviz predict --method M`: explanation maps, their faithfulness scores, JSON and
//! overlay PNGs, from the GPU explainer or (`--reference`) the CPU twin.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cnnviz::colormap::ColorMap;
use cnnviz::explain::reference::ReferenceExplainer;
use cnnviz::explain::{
    ExplainError, ExplainOptions, ExplainRequest, Explained, Explainer, Family, Method,
};
use cnnviz::heatmap;
use cnnviz::model::Model;
use cnnviz::model::reference::{argmax, softmax};
use serde_json::{Value, json};

/// The explanation options of `predict`; defaults are [`ExplainOptions::default`]'s.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Explanation method: gradcam, gradcam++, hirescam, xgradcam, layercam,
    /// gradcam-elementwise, eigencam, scorecam, saliency, input-x-gradient, guided-backprop,
    /// guided-gradcam, integrated-gradients, smoothgrad, occlusion; or `all` (see
    /// docs/explain.md). Uses --target as the class and --layer as the conv block.
    #[arg(long)]
    pub method: Option<String>,
    /// Compute the explanation with the CPU reference twin (f64) instead of the GPU.
    #[arg(long, requires = "method")]
    pub reference: bool,
    /// Explain the negated logit: what speaks against the class.
    #[arg(long, requires = "method")]
    pub counterfactual: bool,
    /// Leave the per-pixel arrays (map, attribution, raw, noise) out of --json.
    #[arg(long, requires = "method")]
    pub no_maps: bool,
    /// Integrated Gradients: Gauss–Legendre steps.
    #[arg(long, requires = "method")]
    pub ig_steps: Option<usize>,
    /// SmoothGrad: noisy copies of the input.
    #[arg(long, requires = "method")]
    pub smoothgrad_samples: Option<usize>,
    /// SmoothGrad: standard deviation of the noise, in normalised input units.
    #[arg(long, requires = "method")]
    pub smoothgrad_stdev: Option<f32>,
    /// SmoothGrad: seed of the noise.
    #[arg(long, requires = "method")]
    pub seed: Option<u64>,
    /// Occlusion: side of the square patch in pixels.
    #[arg(long, requires = "method")]
    pub occlusion_window: Option<usize>,
    /// Occlusion: step between patches in pixels.
    #[arg(long, requires = "method")]
    pub occlusion_stride: Option<usize>,
    /// Deletion/insertion: number of steps (the curves have one more point).
    #[arg(long, requires = "method")]
    pub faithfulness_steps: Option<usize>,
}

impl ExplainArgs {
    pub fn options(&self) -> ExplainOptions {
        let d = ExplainOptions::default();
        ExplainOptions {
            ig_steps: self.ig_steps.unwrap_or(d.ig_steps),
            smoothgrad_samples: self.smoothgrad_samples.unwrap_or(d.smoothgrad_samples),
            smoothgrad_stdev: self.smoothgrad_stdev.unwrap_or(d.smoothgrad_stdev),
            seed: self.seed.unwrap_or(d.seed),
            occlusion_window: self.occlusion_window.unwrap_or(d.occlusion_window),
            occlusion_stride: self.occlusion_stride.unwrap_or(d.occlusion_stride),
            faithfulness_steps: self.faithfulness_steps.unwrap_or(d.faithfulness_steps),
        }
    }
}

/// `all` or one method name.
pub fn parse_methods(name: &str) -> Result<Vec<Method>, ExplainError> {
    if name.trim().eq_ignore_ascii_case("all") {
        Ok(Method::ALL.to_vec())
    } else {
        Method::parse(name).map(|m| vec![m])
    }
}

/// The engine `predict --method` runs: the GPU explainer (every method in WGSL), or with
/// `--reference` the CPU twin. The GPU explainer keeps its own handles on the device, so
/// the context that made it may go.
pub fn engine(
    reference: bool,
    model: &Model,
    options: ExplainOptions,
) -> anyhow::Result<Box<dyn Explainer>> {
    if reference {
        return Ok(Box::new(ReferenceExplainer::new(model.clone(), options)));
    }
    let gpu = super::gpu()?;
    let explainer =
        cnnviz::gpu::explain::GpuExplainer::new(&gpu.device, &gpu.queue, model, options)?;
    Ok(Box::new(explainer))
}

/// One image to explain: its file, its pixels (0..1) and its normalised model input.
pub struct ExplainInput<'a> {
    pub file: &'a Path,
    pub pixels: &'a [f32],
    pub input: Vec<f32>,
}

/// What `predict --method` was asked for, resolved against the model.
pub struct ExplainJob<'a> {
    pub args: &'a ExplainArgs,
    pub methods: Vec<Method>,
    pub class: Option<usize>,
    pub block: Option<usize>,
    pub json: bool,
    pub heatmap_out: Option<&'a Path>,
    pub colormap: ColorMap,
}

pub fn run(job: &ExplainJob, model: &Model, images: &[ExplainInput]) -> anyhow::Result<ExitCode> {
    let mut engine = engine(job.args.reference, model, job.args.options())?;
    // A model without conv blocks: `all` keeps the methods that need none.
    let methods: Vec<Method> = if job.block.is_none() && job.methods.len() > 1 {
        job.methods
            .iter()
            .copied()
            .filter(|m| !m.uses_block())
            .collect()
    } else {
        job.methods.clone()
    };
    if methods.len() < job.methods.len() {
        eprintln!(
            "note: this model has no conv layer, so the CAM methods and guided Grad-CAM are off"
        );
    }
    let shape = model.architecture.input;
    for image in images {
        let mut entries = Vec::new();
        let mut logits = Vec::new();
        for &method in &methods {
            let request = ExplainRequest {
                method,
                class: job.class,
                counterfactual: job.args.counterfactual,
                block: job.block,
                faithfulness: true,
            };
            let start = Instant::now();
            let explained = engine
                .explain(&image.input, &request)
                .with_context(|| format!("{}: {}", image.file.display(), method.name()))?;
            let seconds = start.elapsed().as_secs_f64();
            if let Some(dir) = job.heatmap_out {
                let picture = heatmap::overlay(
                    image.pixels,
                    &explained.map,
                    shape.width,
                    shape.height,
                    10,
                    job.colormap,
                );
                let out = overlay_path(dir, image.file, method);
                picture
                    .save(&out)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            logits.clone_from(&explained.logits);
            entries.push((explained, seconds));
        }
        let logits64: Vec<f64> = logits.iter().map(|&l| l as f64).collect();
        let probabilities: Vec<f32> = softmax(&logits64).into_iter().map(|p| p as f32).collect();
        let predicted = argmax(&logits64);
        if job.json {
            let line = json!({
                "file": image.file.display().to_string(),
                "engine": if job.args.reference { "reference" } else { "gpu" },
                "predicted": predicted,
                "label": model.architecture.classes[predicted],
                "probabilities": probabilities,
                "logits": logits,
                "input": super::predict::input_json(image.pixels, shape.channels, shape.width),
                "explanations": entries
                    .iter()
                    .map(|(e, s)| entry_json(model, e, *s, job.args.no_maps, engine.options()))
                    .collect::<Vec<Value>>(),
            });
            println!("{line}");
        } else {
            super::predict::print_text(model, image.file, predicted, &probabilities);
            for (e, _) in &entries {
                let f = e.faithfulness.as_ref();
                println!(
                    "  {}: class {}{}, deletion AUC {:.4}, insertion AUC {:.4}",
                    e.method.name(),
                    e.class,
                    if e.counterfactual {
                        " (counterfactual)"
                    } else {
                        ""
                    },
                    f.map_or(f32::NAN, |f| f.deletion_auc),
                    f.map_or(f32::NAN, |f| f.insertion_auc),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One method's JSON object (see docs/explain.md, "Command line").
fn entry_json(
    model: &Model,
    e: &Explained,
    seconds: f64,
    no_maps: bool,
    options: &ExplainOptions,
) -> Value {
    let shape = model.architecture.input;
    let blocks = model.conv_blocks();
    let mut v = json!({
        "method": e.method.name(),
        "label": e.method.label(),
        "family": match e.method.family() { Family::Cam => "cam", Family::Attribution => "attribution" },
        "class": e.class,
        "counterfactual": e.counterfactual,
        "block": e.block,
        "layer": e.block.and_then(|b| blocks.get(b)).map(|b| b.name.as_str()),
        "seconds": seconds,
    });
    if let Some(f) = &e.faithfulness {
        v["deletion"] = json!(f.deletion);
        v["insertion"] = json!(f.insertion);
        v["deletion_auc"] = json!(f.deletion_auc);
        v["insertion_auc"] = json!(f.insertion_auc);
    }
    if no_maps {
        return v;
    }
    let rows = |values: &[f32], width: usize| -> Value {
        json!(values.chunks(width.max(1)).collect::<Vec<_>>())
    };
    v["map"] = rows(&e.map, shape.width);
    v["attribution"] = match e.method.family() {
        Family::Cam => rows(&e.attribution, shape.width),
        Family::Attribution => json!(
            e.attribution
                .chunks(shape.height * shape.width)
                .map(|plane| rows(plane, shape.width))
                .collect::<Vec<_>>()
        ),
    };
    if e.method.family() == Family::Cam {
        v["raw"] = rows(&e.raw, e.raw_width);
    }
    if e.method == Method::SmoothGrad {
        let noise = cnnviz::explain::reference::attribution::smoothgrad_noise(
            options.seed,
            options.smoothgrad_samples,
            model.input_len(),
            options.smoothgrad_stdev as f64,
        );
        v["noise"] = json!(noise.iter().map(|&n| n as f32).collect::<Vec<_>>());
    }
    v
}

fn overlay_path(dir: &Path, file: &Path, method: Method) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    dir.join(format!("{stem}-{}.png", method.name()))
}
