//! `cnnviz eval`: test-set accuracy through the WGSL path, with a confusion matrix.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use cnnviz::data::model_input::{replicate, resize_plane};
use cnnviz::data::preprocess::InkImage;
use cnnviz::data::{Split, default_data_dir, load_mnist};
use cnnviz::gpu::tune::tuned_network;
use cnnviz::gpu::{InferenceRequest, NetworkOptions};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Model file (.safetensors, or .onnx imported); default: weights/mnist-cnn.safetensors.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder with the MNIST IDX files; default: data/mnist.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Images per GPU submission.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Print the accuracy and throughput as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (path, model) = super::load(&args.model)?;
    let dir = args.data.clone().unwrap_or_else(default_data_dir);
    let test = load_mnist(&dir, Split::Test)
        .with_context(|| format!("loading MNIST test set from {}", dir.display()))?;
    let input = model.architecture.input;
    // A digit model of another size sees the test digits plainly resized to its input, as
    // a model trained on resized MNIST was (docs/byom/train_rgb32.py).
    let resized = ((test.rows, test.cols) != (input.height, input.width)).then(|| {
        format!(
            "MNIST's {}×{} test images plainly resized to the model's {}×{}",
            test.rows, test.cols, input.height, input.width
        )
    });
    // A 3-channel model sees each grey digit in R, G and B, as the window feeds it drawings.
    let channels = input.channels;
    let classes = model.num_classes();
    let gpu = super::gpu()?;
    // A model with large activations gets the largest batch the device holds.
    let (fits, _) = cnnviz::gpu::max_batch_for(&model, &gpu.device.limits());
    let batch = (args.batch.min(test.len()) as u32).min(fits.max(1));
    // The kernels the tuner measured fastest for this batch on this adapter (timed once,
    // then read from the cache), or those `CNNVIZ_KERNELS` forces.
    let (network, choice) = tuned_network(
        &gpu.device,
        &gpu.queue,
        &model,
        batch,
        &NetworkOptions::default(),
    )?;
    for decision in &choice.decisions {
        log::info!("kernel choice: {}", decision.describe());
    }
    let request = InferenceRequest {
        grad_cam: false,
        value_ranges: false,
        ..InferenceRequest::default()
    };

    let progress = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(test.len() as u64)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut confusion = vec![vec![0usize; classes]; classes];
    let started = Instant::now();
    let indices: Vec<usize> = (0..test.len()).collect();
    for chunk in indices.chunks(batch as usize) {
        let pixels: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| {
                let grey: Vec<f32> = test.image(i).iter().map(|&p| p as f32 / 255.0).collect();
                let grey = InkImage::new(test.cols, test.rows, grey);
                replicate(&resize_plane(&grey, input.width, input.height), channels)
            })
            .collect();
        let output = network.run_blocking(
            &gpu.device,
            &gpu.queue,
            &model.normalize(&pixels),
            &InferenceRequest {
                batch: chunk.len() as u32,
                ..request
            },
        )?;
        for (&i, image) in chunk.iter().zip(&output.images) {
            let truth = test.labels[i] as usize;
            if truth >= classes {
                bail!("label {truth} of test image {i} is not a class of the model");
            }
            confusion[truth][image.predicted] += 1;
        }
        progress.inc(chunk.len() as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();

    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / test.len() as f64;
    let per_second = test.len() as f64 / seconds;
    if args.json {
        let line = serde_json::json!({
            "model": path.display().to_string(),
            "adapter": gpu.describe(),
            "images": test.len(),
            "correct": correct,
            "accuracy": accuracy,
            "images_per_second": per_second,
            "batch": batch,
            "resized": resized,
            "confusion": confusion,
        });
        println!("{line}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("adapter: {}", gpu.describe());
    println!("model: {} ({})", model.architecture.name, path.display());
    println!(
        "accuracy: {:.2} % ({correct}/{} correct) on the MNIST test set",
        100.0 * accuracy,
        test.len()
    );
    if let Some(resized) = &resized {
        println!("inputs: {resized}");
    }
    println!(
        "throughput: {per_second:.0} images/s (batch {batch}, forward only, upload and readback included)"
    );
    println!();
    println!("confusion matrix (rows: true digit, columns: predicted):");
    let labels = &model.architecture.classes;
    print!("      ");
    for l in labels {
        print!("{l:>6}");
    }
    println!();
    for (t, row) in confusion.iter().enumerate() {
        print!("{:>6}", labels[t]);
        for n in row {
            print!("{n:>6}");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
