//! burn (wgpu backend) running cnnviz's model, timed the way `cnnviz bench` times cnnviz:
//! batch-1 forward with the probabilities read back, batch-1 forward + Grad-CAM with the
//! probabilities and heatmap read back, and eval throughput over the MNIST test set. With
//! `--check FILE` (the JSON lines of `cnnviz predict --json`) it also prints burn's logits,
//! raw Grad-CAM map and heatmap for each image so compare.py can check both compute the same.
//!
//! Prints one JSON document on stdout; progress goes to stderr.

mod mnist;
mod network;
mod timing;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor};
use serde_json::{Value, json};

use crate::mnist::TestSet;
use crate::network::Network;
use crate::timing::{Schedule, Summary};

const USAGE: &str = "usage: cnnviz-burn-compare [--model FILE] [--mnist DIR] [--check FILE] \
[--runs N] [--warmup N] [--batches 16,64,256] [--seconds S]";

struct Options {
    model: PathBuf,
    mnist: PathBuf,
    check: Option<PathBuf>,
    runs: usize,
    warmup: usize,
    batches: Vec<usize>,
    seconds: f64,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        model: PathBuf::from("weights/mnist-cnn.safetensors"),
        mnist: PathBuf::from("data/mnist"),
        check: None,
        runs: 300,
        warmup: 30,
        batches: vec![16, 64, 256, 512],
        seconds: 10.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--model" => o.model = value()?.into(),
            "--mnist" => o.mnist = value()?.into(),
            "--check" => o.check = Some(value()?.into()),
            "--runs" => o.runs = number(value()?)?.max(1),
            "--warmup" => o.warmup = number(value()?)?,
            "--seconds" => {
                let v = value()?;
                o.seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?;
            }
            "--batches" => {
                o.batches = value()?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| number(s.trim().to_string()))
                    .collect::<Result<_, _>>()?;
                if o.batches.is_empty() || o.batches.contains(&0) {
                    return Err("--batches needs positive batch sizes".into());
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    match parse_options().and_then(|o| run(&o)) {
        Ok(report) => {
            println!("{report:#}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cnnviz-burn-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_back(t: Tensor<1>) -> Result<Vec<f32>, String> {
    t.try_into_data()
        .map_err(|e| format!("reading a result back: {e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading a result back: {e:?}"))
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

fn summary_us(s: &Summary) -> Value {
    json!({ "median_us": s.median_s * 1e6, "p99_us": s.p99_s * 1e6, "runs": s.runs })
}

fn run(o: &Options) -> Result<Value, String> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| format!("no wgpu adapter for burn: {e:?}"))?;
    let info = setup.adapter.get_info();
    eprintln!(
        "burn on {} ({:?}, {} {})",
        info.name, info.backend, info.driver, info.driver_info
    );
    let network = Network::load(&o.model, &device)?;
    let test_set = TestSet::load(&o.mnist)?;
    let image_len: usize = network.input.iter().product();
    if image_len != test_set.image_len {
        return Err(format!(
            "the model takes {image_len} pixels, MNIST images have {}",
            test_set.image_len
        ));
    }
    let schedule = Schedule {
        warmup: o.warmup,
        runs: o.runs,
        budget: Duration::from_secs_f64(o.seconds),
    };

    // Agreement rows: burn's own results for cnnviz's preprocessed inputs.
    let mut check = Vec::new();
    let mut digit = test_set.batch(0, 1).0;
    if let Some(path) = &o.check {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let ours: Value = serde_json::from_str(line)
                .map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1))?;
            let pixels: Vec<f32> = ours["input"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| row.as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_f64().map(|p| p as f32))
                .collect();
            if pixels.len() != image_len {
                return Err(format!(
                    "{}: line {}: `input` has {} pixels, expected {image_len}",
                    path.display(),
                    i + 1,
                    pixels.len()
                ));
            }
            if i == 0 {
                digit.clone_from(&pixels);
            }
            let cam = network.grad_cam(network.input_tensor(&pixels, &device))?;
            let logits = read_back(flat(cam.logits))?;
            let predicted = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            check.push(json!({
                "file": ours["file"],
                "predicted": predicted,
                "logits": logits,
                "cam_raw": read_back(flat(cam.raw))?,
                "cam": read_back(flat(cam.heatmap))?,
            }));
        }
    }

    // (a) Batch-1 forward, probabilities on the CPU: upload, forward, softmax, read back.
    eprintln!("timing batch-1 forward");
    let forward = schedule.sample(|| {
        let started = Instant::now();
        let p = network.probabilities(network.input_tensor(&digit, &device))?;
        std::hint::black_box(read_back(flat(p))?);
        Ok(started.elapsed().as_secs_f64())
    })?;

    // (b) Batch-1 forward + Grad-CAM: probabilities and heatmap back in one readback.
    eprintln!("timing batch-1 forward + Grad-CAM");
    let grad_cam = schedule.sample(|| {
        let started = Instant::now();
        let cam = network.grad_cam(network.input_tensor(&digit, &device))?;
        let both = Tensor::cat(vec![flat(cam.probabilities), flat(cam.heatmap)], 0);
        std::hint::black_box(read_back(both)?);
        Ok(started.elapsed().as_secs_f64())
    })?;

    // (c) Throughput over consecutive test images: upload, forward, softmax, read back.
    let mut rows = Vec::new();
    for &batch in &o.batches {
        eprintln!("timing eval at batch {batch}");
        let mut next = 0usize;
        let (mut seen, mut correct) = (0usize, 0usize);
        let eval = Schedule {
            warmup: 2,
            ..schedule
        }
        .sample(|| {
            let (pixels, labels) = test_set.batch(next, batch);
            next = (next + batch) % test_set.len();
            let started = Instant::now();
            let p = read_back(flat(
                network.probabilities(network.input_tensor(&pixels, &device))?,
            ))?;
            let elapsed = started.elapsed().as_secs_f64();
            for (probs, &label) in p.chunks_exact(network.classes).zip(&labels) {
                let predicted = probs
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                correct += usize::from(predicted == usize::from(label));
                seen += 1;
            }
            Ok(elapsed)
        })?;
        rows.push(json!({
            "batch": batch,
            "runs": eval.runs,
            "median_ms": eval.median_s * 1e3,
            "images_per_second": batch as f64 / eval.median_s,
            "accuracy": correct as f64 / seen.max(1) as f64,
            "images_seen": seen,
        }));
    }
    let best = rows
        .iter()
        .max_by(|a, b| {
            a["images_per_second"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["images_per_second"].as_f64().unwrap_or(0.0))
        })
        .cloned()
        .unwrap_or(Value::Null);

    Ok(json!({
        "framework": "burn",
        "burn_version": "0.22",
        "features": ["wgpu", "autodiff", "default (autotune, fusion)"],
        "adapter": {
            "name": info.name,
            "backend": format!("{:?}", info.backend),
            "device_type": format!("{:?}", info.device_type),
            "driver": info.driver,
            "driver_info": info.driver_info,
        },
        "check": check,
        "forward": summary_us(&forward),
        "forward_grad_cam": summary_us(&grad_cam),
        "throughput": {
            "best_batch": best["batch"],
            "images_per_second": best["images_per_second"],
            "batches": rows,
        },
    }))
}
