//! End-to-end figures as a user meets them: the interactive latency of one drawing (write
//! the input, forward, Grad-CAM, value ranges, probabilities readable on the CPU) and the
//! eval throughput of batches (write, forward, softmax, read every result back).

use std::time::Instant;

use serde::Serialize;

use super::stats::{Schedule, median, quantile};
use super::{BenchError, Gpu};
use crate::gpu::{GpuError, GpuNetwork, InferenceRequest};

/// Interactive latency of one image, over many runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyReport {
    pub runs: usize,
    pub warmup: usize,
    pub median_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub min_us: f64,
    pub max_us: f64,
}

/// Times `runs` interactive inferences on a batch-1 `network`, each from `write_buffer` of
/// the input to the probabilities mapped on the CPU, exactly as the window's frame does it
/// (one submission; the 44-byte [`crate::gpu::ProbabilityReadback`]), but waiting.
pub fn measure_latency(
    gpu: &Gpu<'_>,
    network: &GpuNetwork,
    input: &[f32],
    schedule: &Schedule,
) -> Result<LatencyReport, BenchError> {
    let (device, queue) = (gpu.device, gpu.queue);
    let readback = network.probability_readback(device);
    let request = InferenceRequest::default();
    let samples = schedule.sample(|| {
        let started = Instant::now();
        network.write_inputs(queue, input)?;
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("bench interactive inference"),
        });
        network.encode(&mut encoder, &request)?;
        network.encode_probability_readback(&mut encoder, &readback)?;
        queue.submit([encoder.finish()]);
        readback.start_map();
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(GpuError::from)?;
        let result = readback.try_take()?.ok_or(GpuError::MapCallbackLost)?;
        let elapsed = started.elapsed().as_secs_f64() * 1e6;
        std::hint::black_box(result);
        Ok(elapsed)
    })?;
    let (min, max) = samples
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    Ok(LatencyReport {
        runs: samples.len(),
        warmup: schedule.warmup,
        median_us: median(&samples),
        p99_us: quantile(&samples, 0.99),
        mean_us: samples.iter().sum::<f64>() / samples.len().max(1) as f64,
        min_us: min,
        max_us: max,
    })
}

/// Throughput at one batch size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalBatch {
    pub batch: u32,
    pub runs: usize,
    /// Median time of one batch: write, forward, softmax, read back, 10⁻³ s.
    pub median_ms: f64,
    pub images_per_second: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    pub best_batch: u32,
    pub images_per_second: f64,
    pub batches: Vec<EvalBatch>,
}

/// Eval throughput (forward + softmax, every image's logits, probabilities and class read
/// back, as `cnnviz eval` does) at each batch size; the best is the headline.
pub fn measure_eval(
    gpu: &Gpu<'_>,
    network: &GpuNetwork,
    image: &[f32],
    batches: &[u32],
    schedule: &Schedule,
) -> Result<EvalReport, BenchError> {
    let request = InferenceRequest {
        grad_cam: false,
        value_ranges: false,
        ..InferenceRequest::default()
    };
    let mut rows = Vec::new();
    for &batch in batches {
        let inputs = repeat(image, batch);
        let samples = schedule.sample(|| {
            let started = Instant::now();
            let output = network.run_blocking(gpu.device, gpu.queue, &inputs, &request)?;
            let elapsed = started.elapsed().as_secs_f64();
            std::hint::black_box(output);
            Ok(elapsed)
        })?;
        let seconds = median(&samples);
        rows.push(EvalBatch {
            batch,
            runs: samples.len(),
            median_ms: seconds * 1e3,
            images_per_second: f64::from(batch) / seconds,
        });
    }
    let best = rows
        .iter()
        .max_by(|a, b| a.images_per_second.total_cmp(&b.images_per_second))
        .ok_or_else(|| BenchError::BadOption("no eval batch size to measure".to_string()))?;
    Ok(EvalReport {
        best_batch: best.batch,
        images_per_second: best.images_per_second,
        batches: rows,
    })
}

/// `batch` copies of one image, back to back.
pub fn repeat(image: &[f32], batch: u32) -> Vec<f32> {
    image
        .iter()
        .cycle()
        .take(image.len() * batch as usize)
        .copied()
        .collect()
}
