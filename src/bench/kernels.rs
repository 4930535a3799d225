//! Per-kernel GPU time of one whole inference (forward, softmax, Grad-CAM, value ranges) at
//! a given batch, with the cost of each launch and what it achieved against the peak.

use std::time::Instant;

use serde::Serialize;

use super::clock::TimingMethod;
use super::cost::CostModel;
use super::peak::PeakReport;
use super::stats::{Schedule, median};
use super::{BenchError, Gpu};
use crate::gpu::{
    GpuError, GpuNetwork, InferenceRequest, KernelTimer, KernelTiming, TimestampPlacement,
};

/// One launch of the inference, summarised over the runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelRow {
    /// `layer kernel`, e.g. `conv2 conv2d.forward`.
    pub label: String,
    /// The kernel's name, e.g. `conv2d.forward`.
    pub kernel: String,
    /// Its family: the part of the name before the first `.`.
    pub family: String,
    pub median_ns: f64,
    /// `null` when the cost table does not know the kernel.
    pub flops: Option<u64>,
    pub bytes: Option<u64>,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    /// Achieved GFLOP/s over the FMA microkernel's (`null` without a peak section).
    pub fraction_of_fma_peak: Option<f64>,
    /// Achieved GB/s over the copy microkernel's.
    pub fraction_of_copy_peak: Option<f64>,
}

/// Every launch at one batch size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelBatch {
    pub batch: u32,
    pub runs: usize,
    pub method: TimingMethod,
    /// Sum of the launches' medians.
    pub kernels_total_ns: f64,
    /// Median wall time of one timed inference: submit, wait, read the timestamps.
    pub wall_median_ns: f64,
    pub kernels: Vec<KernelRow>,
}

/// Times every launch of one whole inference of `inputs` (written here; as many images as
/// they hold) with `timer`, or, with no timer, the whole inference by wall clock as one row.
pub fn measure_kernels(
    gpu: &Gpu<'_>,
    network: &GpuNetwork,
    timer: Option<&mut KernelTimer>,
    costs: &CostModel<'_>,
    inputs: &[f32],
    schedule: &Schedule,
    peak: Option<&PeakReport>,
) -> Result<KernelBatch, BenchError> {
    let (device, queue) = (gpu.device, gpu.queue);
    let batch = network.write_inputs(queue, inputs)?;
    let request = InferenceRequest {
        batch,
        ..InferenceRequest::default()
    };
    let Some(timer) = timer else {
        return wall_clock(device, queue, network, &request, schedule);
    };
    let mut walls = Vec::new();
    let mut runs: Vec<Vec<KernelTiming>> = Vec::new();
    let samples = schedule.sample(|| {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("bench timed inference"),
        });
        network.encode_timed(&mut encoder, &request, timer)?;
        let started = Instant::now();
        queue.submit([encoder.finish()]);
        let timings = timer.read_blocking(device)?;
        Ok((started.elapsed().as_secs_f64() * 1e9, timings))
    })?;
    for (wall, timings) in samples {
        walls.push(wall);
        runs.push(timings);
    }
    let method = match timer.placement() {
        TimestampPlacement::PerPass => TimingMethod::TimestampsPerPass,
        TimestampPlacement::InsidePasses => TimingMethod::TimestampsInsidePasses,
    };
    let first = runs.first().ok_or(GpuError::TimerEmpty)?;
    let mut rows = Vec::with_capacity(first.len());
    let mut previous: Option<&str> = None;
    for (i, launch) in first.iter().enumerate() {
        let times: Vec<f64> = runs
            .iter()
            .filter_map(|run| run.get(i))
            .filter(|t| t.label == launch.label)
            .map(|t| t.nanoseconds)
            .collect();
        let cost = costs.cost(&launch.label, previous, batch);
        previous = Some(launch.kernel);
        rows.push(row(
            &launch.label,
            launch.kernel,
            median(&times),
            cost.map(|c| (c.flops, c.bytes)),
            peak,
        ));
    }
    Ok(KernelBatch {
        batch,
        runs: runs.len(),
        method,
        kernels_total_ns: rows.iter().map(|r| r.median_ns).sum(),
        wall_median_ns: median(&walls),
        kernels: rows,
    })
}

fn row(
    label: &str,
    kernel: &str,
    ns: f64,
    cost: Option<(u64, u64)>,
    peak: Option<&PeakReport>,
) -> KernelRow {
    // Rates only for measurable times: a 0 ns launch (below the timer's resolution) has no
    // meaningful rate.
    let rate = |amount: u64| (ns > 0.0).then(|| amount as f64 / ns);
    let gflops = cost.and_then(|(f, _)| rate(f));
    let gbps = cost.and_then(|(_, b)| rate(b));
    KernelRow {
        label: label.to_string(),
        kernel: kernel.to_string(),
        family: kernel.split('.').next().unwrap_or(kernel).to_string(),
        median_ns: ns,
        flops: cost.map(|(f, _)| f),
        bytes: cost.map(|(_, b)| b),
        gflops,
        gbps,
        fraction_of_fma_peak: gflops.zip(peak).map(|(g, p)| g / p.fma_gflops),
        fraction_of_copy_peak: gbps.zip(peak).map(|(g, p)| g / p.copy_gbps),
    }
}

/// No timestamp queries: the whole inference, submit to done, as one row.
fn wall_clock(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    network: &GpuNetwork,
    request: &InferenceRequest,
    schedule: &Schedule,
) -> Result<KernelBatch, BenchError> {
    let samples = schedule.sample(|| {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("bench inference"),
        });
        network.encode(&mut encoder, request)?;
        let started = Instant::now();
        queue.submit([encoder.finish()]);
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(GpuError::from)?;
        Ok(started.elapsed().as_secs_f64() * 1e9)
    })?;
    let ns = median(&samples);
    Ok(KernelBatch {
        batch: request.batch,
        runs: samples.len(),
        method: TimingMethod::WallClock,
        kernels_total_ns: ns,
        wall_median_ns: ns,
        kernels: vec![row("inference (all kernels)", "all", ns, None, None)],
    })
}
