//! Per-kernel GPU timing with timestamp queries, for `cnnviz bench` and the criterion
//! benchmarks. Each kernel runs in its own compute pass whose beginning and end write a
//! timestamp (`timestamp_writes`, which needs only `TIMESTAMP_QUERY`), so the figures are
//! GPU time, not CPU submission time.

use super::GpuError;

/// One kernel's GPU time in the last timed inference.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTiming {
    /// `layer kernel`, e.g. `conv2 conv2d.forward`.
    pub label: String,
    /// The kernel alone, e.g. `conv2d.forward`, for grouping.
    pub kernel: &'static str,
    pub nanoseconds: f64,
}

/// Query set and readback buffers for up to `capacity` kernels per inference.
pub struct KernelTimer {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    capacity: u32,
    recorded: Vec<(String, &'static str)>,
    /// Nanoseconds per timestamp tick.
    period: f64,
}

impl KernelTimer {
    /// Fails with [`GpuError::TimestampsUnsupported`] when the device was created without
    /// `TIMESTAMP_QUERY` ([`super::GpuContext`] asks for it whenever the adapter has it).
    /// `capacity` kernels: [`super::GpuNetwork::max_kernels_per_inference`] always suffices.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        capacity: usize,
    ) -> Result<Self, GpuError> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(GpuError::TimestampsUnsupported);
        }
        // A query set holds at most QUERY_SET_MAX_QUERIES (4096) queries, two per kernel.
        let most = wgpu::QUERY_SET_MAX_QUERIES / 2;
        let capacity = u32::try_from(capacity.max(1)).unwrap_or(most).min(most);
        let bytes = u64::from(2 * capacity) * 8;
        let query_set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * capacity,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel timestamps (resolved)"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel timestamps (readback)"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(KernelTimer {
            query_set,
            resolve,
            staging,
            capacity,
            recorded: Vec::new(),
            period: f64::from(queue.get_timestamp_period()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub(super) fn check_capacity(&self, needed: usize) -> Result<(), GpuError> {
        if needed > self.capacity as usize {
            return Err(GpuError::TimerTooSmall {
                capacity: self.capacity,
                needed,
            });
        }
        Ok(())
    }

    pub(super) fn clear(&mut self) {
        self.recorded.clear();
    }

    /// Reserves the next pair of queries for a kernel and returns the pass's writes.
    pub(super) fn push(
        &mut self,
        label: String,
        kernel: &'static str,
    ) -> Result<wgpu::ComputePassTimestampWrites<'_>, GpuError> {
        let index = self.recorded.len();
        self.check_capacity(index + 1)?;
        self.recorded.push((label, kernel));
        let begin = 2 * index as u32;
        Ok(wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(begin),
            end_of_pass_write_index: Some(begin + 1),
        })
    }

    /// Resolves the recorded queries and copies them to the readback buffer, in the same
    /// encoder as the kernels.
    pub(super) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let count = 2 * self.recorded.len() as u32;
        if count == 0 {
            return;
        }
        encoder.resolve_query_set(&self.query_set, 0..count, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, u64::from(count) * 8);
    }

    /// Waits for the submitted inference and returns each kernel's duration, in recording
    /// order. Blocks: for benchmarks and tests, not for the frame loop.
    pub fn read_blocking(&self, device: &wgpu::Device) -> Result<Vec<KernelTiming>, GpuError> {
        if self.recorded.is_empty() {
            return Err(GpuError::TimerEmpty);
        }
        let bytes = self.recorded.len() as u64 * 16;
        let raw = super::readback::map_read(device, &self.staging, bytes)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        Ok(self
            .recorded
            .iter()
            .enumerate()
            .map(|(i, (label, kernel))| {
                let (begin, end) = (ticks[2 * i], ticks[2 * i + 1]);
                KernelTiming {
                    label: label.clone(),
                    kernel,
                    nanoseconds: end.saturating_sub(begin) as f64 * self.period,
                }
            })
            .collect())
    }
}
