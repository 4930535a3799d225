//! The adapter's own peak, measured in the same run as the kernels by two microkernels
//! (`shaders/peak_fma.wgsl`, `shaders/peak_copy.wgsl`): FMA throughput and copy bandwidth.
//! The kernels' GFLOP/s and GB/s are reported as fractions of these.

use std::time::Duration;

use serde::Serialize;
use wgpu::util::DeviceExt;

use super::BenchError;
use super::clock::{PassClock, TimingMethod};
use super::stats::{Schedule, median};

/// Loop iterations per FMA invocation: well under llvmpipe's 65 535-iteration loop limit.
const FMA_ITERATIONS: u32 = 256;
/// FLOPs per invocation and iteration: 32 vec4 FMAs × 4 lanes × (multiply + add).
const FMA_FLOPS_PER_ITERATION: u64 = 32 * 4 * 2;
/// The FMA run is grown until one pass takes at least this long.
const MIN_PASS: Duration = Duration::from_millis(20);
/// Copy buffers: big enough to spill any cache, capped by the device's limits.
const COPY_BYTES: u64 = 256 << 20;
/// Workgroups of the copy kernel's grid-stride loop.
const COPY_WORKGROUPS: u64 = 4096;
const WORKGROUP: u64 = 64;
const MAX_DIMENSION: u32 = 65_535;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PeakParams {
    iterations: u32,
    _pad: [u32; 3],
}

/// What the microkernels achieved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeakReport {
    pub method: TimingMethod,
    /// Median FMA throughput, 10⁹ FLOP/s.
    pub fma_gflops: f64,
    pub fma_flops_per_run: u64,
    pub fma_median_ns: f64,
    pub fma_runs: usize,
    /// Median copy bandwidth (bytes read + bytes written), 10⁹ B/s.
    pub copy_gbps: f64,
    pub copy_bytes_per_run: u64,
    pub copy_median_ns: f64,
    pub copy_runs: usize,
}

/// `(x, y)` workgroups covering `groups` (a power of two or below the limit).
fn grid(groups: u64) -> (u32, u32) {
    let x = groups.min(u64::from(MAX_DIMENSION).min(32_768)).max(1);
    let y = groups.div_ceil(x);
    (x as u32, y as u32)
}

fn pipeline(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    label: &str,
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
        module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

pub fn measure_peak(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    schedule: &Schedule,
) -> Result<PeakReport, BenchError> {
    let clock = PassClock::new(device, queue);
    let (fma_ns, fma_flops, fma_runs) = fma(device, queue, &clock, schedule)?;
    let (copy_ns, copy_bytes, copy_runs) = copy(device, queue, &clock, schedule)?;
    Ok(PeakReport {
        method: clock.method(),
        fma_gflops: fma_flops as f64 / fma_ns,
        fma_flops_per_run: fma_flops,
        fma_median_ns: fma_ns,
        fma_runs,
        copy_gbps: copy_bytes as f64 / copy_ns,
        copy_bytes_per_run: copy_bytes,
        copy_median_ns: copy_ns,
        copy_runs,
    })
}

fn fma(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    clock: &PassClock,
    schedule: &Schedule,
) -> Result<(f64, u64, usize), BenchError> {
    let module = device.create_shader_module(wgpu::include_wgsl!("../../shaders/peak_fma.wgsl"));
    let pipeline = pipeline(device, &module, "peak fma");
    let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("peak fma params"),
        contents: bytemuck::bytes_of(&PeakParams {
            iterations: FMA_ITERATIONS,
            _pad: [0; 3],
        }),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    // Grow the grid until one pass is long enough to time well: 64 workgroups to start
    // (a few ms on llvmpipe), at most 2²² (enough for any GPU of today).
    let mut groups: u64 = 64;
    loop {
        let (x, y) = grid(groups);
        let invocations = u64::from(x) * u64::from(y) * WORKGROUP;
        let sink = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("peak fma sink"),
            size: invocations * 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("peak fma"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: sink.as_entire_binding(),
                },
            ],
        });
        let run = || {
            clock.time(device, queue, |pass| {
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(x, y, 1);
            })
        };
        let probe = run()?;
        if probe >= MIN_PASS.as_nanos() as f64 || groups >= 1 << 22 {
            let samples = schedule.sample(run)?;
            let flops = invocations * u64::from(FMA_ITERATIONS) * FMA_FLOPS_PER_ITERATION;
            return Ok((median(&samples), flops, samples.len()));
        }
        // Jump close to the wanted length at once, then by doubling.
        let factor = (MIN_PASS.as_nanos() as f64 / probe.max(1.0)).clamp(2.0, 64.0);
        groups = (groups as f64 * factor) as u64;
        groups = groups.next_power_of_two().min(1 << 22);
    }
}

fn copy(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    clock: &PassClock,
    schedule: &Schedule,
) -> Result<(f64, u64, usize), BenchError> {
    let limits = device.limits();
    let bytes = COPY_BYTES
        .min(limits.max_storage_buffer_binding_size)
        .min(limits.max_buffer_size);
    let bytes = bytes / (16 * WORKGROUP) * (16 * WORKGROUP);
    if bytes == 0 {
        return Err(BenchError::Unsupported(
            "the device's storage buffers are too small for the copy microkernel".to_string(),
        ));
    }
    let module = device.create_shader_module(wgpu::include_wgsl!("../../shaders/peak_copy.wgsl"));
    let pipeline = pipeline(device, &module, "peak copy");
    let buffer = |label| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (buffer("peak copy source"), buffer("peak copy destination"));
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("peak copy"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: src.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: dst.as_entire_binding(),
            },
        ],
    });
    // A grid-stride loop: enough workgroups to fill a GPU, few enough that llvmpipe's
    // per-workgroup cost stays small, and at most 256 MiB / (4096 · 64 · 16 B) = 64
    // iterations per invocation (far below llvmpipe's loop limit).
    let groups = (bytes / 16 / WORKGROUP).min(COPY_WORKGROUPS) as u32;
    let samples = schedule.sample(|| {
        clock.time(device, queue, |pass| {
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        })
    })?;
    Ok((median(&samples), 2 * bytes, samples.len()))
}
