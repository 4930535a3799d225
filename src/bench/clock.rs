//! Timing one compute pass of the microkernels: with timestamp queries around the pass where
//! the device has `TIMESTAMP_QUERY`, else wall time around submit + wait.

use std::time::Instant;

use serde::Serialize;

use super::BenchError;

/// How a GPU time was measured; reported beside every figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingMethod {
    /// Timestamps written between the dispatches of one pass
    /// (`TIMESTAMP_QUERY_INSIDE_PASSES`).
    TimestampsInsidePasses,
    /// Timestamps at the beginning and end of a pass per kernel (`TIMESTAMP_QUERY`).
    TimestampsPerPass,
    /// CPU wall time around submit + wait: includes submission and driver overhead.
    WallClock,
}

impl TimingMethod {
    /// Words for the text report.
    pub fn describe(self) -> &'static str {
        match self {
            TimingMethod::TimestampsInsidePasses => "GPU timestamps between dispatches",
            TimingMethod::TimestampsPerPass => "GPU timestamps around one pass per kernel",
            TimingMethod::WallClock => "wall time around submit + wait (no timestamp queries)",
        }
    }
}

struct Timestamps {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

/// Times compute passes, one at a time.
pub struct PassClock {
    timestamps: Option<Timestamps>,
}

impl PassClock {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> PassClock {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return PassClock { timestamps: None };
        }
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        PassClock {
            timestamps: Some(Timestamps {
                query_set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("bench pass timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: buffer(
                    "bench pass timestamps (resolved)",
                    wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                ),
                staging: buffer(
                    "bench pass timestamps (readback)",
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                ),
                period: f64::from(queue.get_timestamp_period()),
            }),
        }
    }

    pub fn method(&self) -> TimingMethod {
        match self.timestamps {
            Some(_) => TimingMethod::TimestampsPerPass,
            None => TimingMethod::WallClock,
        }
    }

    /// Records one pass with `record`, submits it, waits, and returns its duration in
    /// nanoseconds.
    pub fn time(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) -> Result<f64, BenchError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("bench microkernel"),
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bench microkernel"),
                timestamp_writes: self.timestamps.as_ref().map(|t| {
                    wgpu::ComputePassTimestampWrites {
                        query_set: &t.query_set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }
                }),
            });
            record(&mut pass);
        }
        let Some(t) = &self.timestamps else {
            let started = Instant::now();
            queue.submit([encoder.finish()]);
            crate::gpu::wait::wait_for_gpu(device)?;
            return Ok(started.elapsed().as_secs_f64() * 1e9);
        };
        encoder.resolve_query_set(&t.query_set, 0..2, &t.resolve, 0);
        encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.staging, 0, 16);
        queue.submit([encoder.finish()]);
        let raw = crate::gpu::wait::map_read(device, &t.staging, 0..t.staging.size())?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * t.period)
    }
}
