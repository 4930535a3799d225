//! `cnnviz channels`: what each channel of a conv layer looks for — its top examples in the
//! MNIST test set (with the region that excited it), its weights and its feature
//! visualisation (an input optimised on the GPU to excite it) — as a contact sheet PNG per
//! layer and/or JSON. The survey behind it is computed on the GPU once per model and
//! cached. `--classes` writes what the network thinks each class looks like instead.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cnnviz::data::{Split, default_data_dir, load_mnist};
use cnnviz::feature_vis::{FeatureVisOptions, Objective, to_ink};
use cnnviz::gpu::tune::cache::cache_dir;
use cnnviz::gpu::{FeatureVis, FeatureVisSnapshot, GpuContext};
use cnnviz::model::Model;
use cnnviz::survey::sheet::InkImage;
use cnnviz::survey::{Origin, Statistic, Survey, sheet};
use indicatif::ProgressBar;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ChannelsArgs {
    /// Conv block: its index (0 = first) or its conv layer's name; default: every block.
    #[arg(long)]
    layer: Option<String>,
    /// Write `channels-<layer>.png` (a contact sheet) per layer into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object per layer instead of text.
    #[arg(long)]
    json: bool,
    /// Rank examples by the channel's strongest response (max) or its mean over the map.
    #[arg(long, value_enum, default_value_t)]
    statistic: Statistic,
    /// Top examples per channel.
    #[arg(long, default_value_t = 9)]
    top: usize,
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder with the MNIST IDX files; default: data/mnist.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Gradient-ascent steps of each feature visualisation (0: none in the sheets).
    #[arg(long, default_value_t = 256)]
    vis_steps: usize,
    /// Seed of the feature visualisations (starting images and jitter).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Instead of the channels: what the network thinks each class looks like, one image
    /// per class optimised to excite its logit (`classes.png` in --out).
    #[arg(long)]
    classes: bool,
}

/// The feature visualisation of every objective of `objective`, with a progress bar.
fn visualise(
    gpu: &GpuContext,
    model: &Model,
    objective: Objective,
    args: &ChannelsArgs,
) -> anyhow::Result<FeatureVisSnapshot> {
    let options = FeatureVisOptions {
        steps: args.vis_steps,
        seed: args.seed,
        ..FeatureVisOptions::default()
    };
    let mut vis = FeatureVis::new(&gpu.device, &gpu.queue, model, objective, options)?;
    let progress = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.vis_steps as u64)
    };
    vis.run(args.vis_steps, |done| progress.set_position(done as u64))?;
    progress.finish_and_clear();
    Ok(vis.read()?)
}

/// Image n of a snapshot as ink.
fn ink_images(model: &Model, snapshot: &FeatureVisSnapshot) -> Vec<InkImage> {
    let input = model.architecture.input;
    snapshot
        .images
        .chunks(model.input_len())
        .map(|image| InkImage {
            width: input.width,
            height: input.height,
            ink: to_ink(model, image),
        })
        .collect()
}

/// `--classes`: one optimised image per class, as a strip and/or JSON.
fn classes(args: &ChannelsArgs, model: &Model) -> anyhow::Result<ExitCode> {
    if args.vis_steps == 0 {
        bail!("--classes needs --vis-steps of at least 1");
    }
    let gpu = super::gpu()?;
    let started = std::time::Instant::now();
    let snapshot = visualise(&gpu, model, Objective::Classes, args)?;
    let seconds = started.elapsed().as_secs_f64();
    let path = args.out.as_ref().map(|out| out.join("classes.png"));
    if let Some(path) = &path {
        sheet::ink_strip(&ink_images(model, &snapshot), 4)
            .save(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let last = snapshot.history.last().cloned().unwrap_or_default();
    if args.json {
        let line = json!({
            "objective": "classes",
            "steps": snapshot.steps,
            "seed": args.seed,
            "logits": last,
            "sheet": path.as_ref().map(|p| p.display().to_string()),
        });
        println!("{line}");
    } else {
        println!(
            "what the network thinks each class looks like: {} steps in {seconds:.2} s on {}",
            snapshot.steps,
            gpu.describe()
        );
        for (class, logit) in last.iter().enumerate() {
            let label = model
                .architecture
                .classes
                .get(class)
                .cloned()
                .unwrap_or_default();
            println!("  {label:>8}: logit {logit:.2}");
        }
        if let Some(path) = &path {
            println!("  sheet: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: &ChannelsArgs) -> anyhow::Result<ExitCode> {
    if args.top == 0 || args.top > 100 {
        bail!("--top must be between 1 and 100");
    }
    let (_, model) = super::load(&args.model)?;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    if args.classes {
        return classes(args, &model);
    }
    let blocks = model.conv_blocks();
    if blocks.is_empty() {
        bail!("this model has no conv layer, so it has no channels to show");
    }
    let chosen: Vec<usize> = match args.layer.as_deref() {
        None => (0..blocks.len()).collect(),
        Some(layer) => vec![
            super::predict::resolve_block(&model, Some(layer))?
                .context("the model has no conv block")?,
        ],
    };
    let dir = args.data.clone().unwrap_or_else(default_data_dir);
    let test = load_mnist(&dir, Split::Test)
        .with_context(|| format!("loading MNIST test set from {}", dir.display()))?;
    let gpu = super::gpu()?;
    let progress = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(test.len() as u64)
    };
    let (survey, origin) = Survey::load_or_compute(
        &gpu.device,
        &gpu.queue,
        &model,
        &test,
        cache_dir().as_deref(),
        |done| {
            progress.set_position(done as u64);
            true
        },
    )?;
    progress.finish_and_clear();
    if !args.json {
        match &origin {
            Origin::Cached(path) => println!("survey: cached ({})", path.display()),
            Origin::Computed(_) => println!(
                "survey: {} test images on {} (cached for next time)",
                survey.images(),
                gpu.describe()
            ),
        }
    }
    for &b in &chosen {
        let block = &blocks[b];
        let activation = block.output_layer + 1;
        let examples: Vec<_> = (0..block.channels)
            .map(|c| survey.top_examples(b, c, args.statistic, args.top))
            .collect();
        let sheet_path = args
            .out
            .as_ref()
            .map(|out| out.join(format!("channels-{}.png", block.name)));
        // The feature visualisations go into the sheets, so they run where one is written.
        let visualised = match (&sheet_path, args.vis_steps) {
            (Some(_), 1..) => {
                let started = std::time::Instant::now();
                let snapshot = visualise(&gpu, &model, Objective::Channels { block: b }, args)?;
                if !args.json {
                    println!(
                        "{}: feature visualisation, {} steps in {:.2} s",
                        block.name,
                        snapshot.steps,
                        started.elapsed().as_secs_f64()
                    );
                }
                Some(snapshot)
            }
            _ => None,
        };
        if let Some(path) = &sheet_path {
            let inks = visualised
                .as_ref()
                .map(|s| ink_images(&model, s))
                .unwrap_or_default();
            let image = sheet::contact_sheet(
                &model,
                block.conv_layer,
                activation,
                &examples,
                &inks,
                &test,
            )
            .context("the block's conv layer has no weights")?;
            image
                .save(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if args.json {
            let channels: Vec<_> = examples
                .iter()
                .enumerate()
                .map(|(c, top)| {
                    let top: Vec<_> = top
                        .iter()
                        .map(|e| {
                            let region = sheet::input_region(&model, activation, c, e.at);
                            json!({
                                "image": e.image,
                                "label": test.labels[e.image],
                                "predicted": survey.predicted[e.image],
                                "value": e.value,
                                "at": [e.at.0, e.at.1],
                                "input_rows": region.as_ref().map(|r| [r.0.start, r.0.end]),
                                "input_cols": region.as_ref().map(|r| [r.1.start, r.1.end]),
                            })
                        })
                        .collect();
                    let objective = visualised
                        .as_ref()
                        .and_then(|s| s.history.last())
                        .map(|h| h[c]);
                    json!({"channel": c, "top": top, "feature_vis_objective": objective})
                })
                .collect();
            let line = json!({
                "layer": block.name,
                "block": b,
                "statistic": format!("{:?}", args.statistic).to_lowercase(),
                "channels": channels,
                "sheet": sheet_path.as_ref().map(|p| p.display().to_string()),
            });
            println!("{line}");
        } else {
            println!(
                "{} ({} channels, {}×{}): top {} test images by {:?}",
                block.name, block.channels, block.height, block.width, args.top, args.statistic
            );
            for (c, top) in examples.iter().enumerate() {
                let list: Vec<String> = top
                    .iter()
                    .map(|e| format!("#{} ({}) {:.2}", e.image, test.labels[e.image], e.value))
                    .collect();
                println!("  channel {c:>2}: {}", list.join("  "));
            }
            if let Some(path) = &sheet_path {
                println!("  sheet: {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
