//! Per-kernel GPU timing with timestamp queries, for `cnnviz bench`, the criterion
//! benchmarks and the window's timing panel. Each kernel's beginning and end write a
//! timestamp: around its own compute pass (`timestamp_writes`, which needs only
//! `TIMESTAMP_QUERY`), or, where the encoder records several kernels in one pass and the
//! device has `TIMESTAMP_QUERY_INSIDE_PASSES`, between the dispatches
//! ([`KernelTimer::begin_inside`] / [`KernelTimer::end_inside`]). Either way the figures are
//! GPU time, not CPU submission time.
//!
//! Two ways to read the durations back:
//!
//! - [`KernelTimer::read_blocking`] waits for the GPU: for benchmarks and tests.
//! - [`KernelTimer::start_map`] + [`KernelTimer::try_take`] never wait: for the frame loop,
//!   through an [`AsyncReadback`].

use super::GpuError;
use super::async_readback::AsyncReadback;

/// One kernel's GPU time in the last timed inference.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTiming {
    /// `layer kernel`, e.g. `conv2 conv2d.forward`.
    pub label: String,
    /// The kernel alone, e.g. `conv2d.forward`, for grouping.
    pub kernel: &'static str,
    pub nanoseconds: f64,
}

/// Where the timestamps of the last recorded inference were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampPlacement {
    /// Each kernel in its own compute pass, timestamps at the pass's beginning and end.
    PerPass,
    /// Kernels share a pass; timestamps are written between the dispatches.
    InsidePasses,
}

/// Query set and readback buffers for up to `capacity` kernels per inference.
///
/// The frame loop's pattern (never waits; a timed frame is skipped while the previous
/// timestamps are still in flight):
///
/// ```text
/// if !timer.in_flight() {
///     network.encode_timed(&mut encoder, &request, &mut timer)?;   // else network.encode
/// }
/// queue.submit([encoder.finish()]);
/// timer.start_map();                       // after the submit; no-op if nothing was timed
/// device.poll(wgpu::PollType::Poll)?;      // (or let the event loop poll)
/// if let Some(timings) = timer.try_take()? { show(timings) }
/// ```
pub struct KernelTimer {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: AsyncReadback<()>,
    capacity: u32,
    recorded: Vec<(String, &'static str)>,
    placement: TimestampPlacement,
    inside_passes: bool,
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
        let features = device.features();
        if !features.contains(wgpu::Features::TIMESTAMP_QUERY) {
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
        let readback = AsyncReadback::new(device, "kernel timestamps (readback)", bytes);
        Ok(KernelTimer {
            query_set,
            resolve,
            readback,
            capacity,
            recorded: Vec::new(),
            placement: TimestampPlacement::PerPass,
            inside_passes: features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            period: f64::from(queue.get_timestamp_period()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Whether the device can write timestamps between dispatches of one pass, so an
    /// encoder may use [`KernelTimer::begin_inside`] instead of a pass per kernel.
    pub fn supports_inside_passes(&self) -> bool {
        self.inside_passes
    }

    /// Where the last recorded inference's timestamps were written.
    pub fn placement(&self) -> TimestampPlacement {
        self.placement
    }

    /// Checks, before anything is recorded, that `needed` kernels fit and that no earlier
    /// readback still holds the staging buffer.
    pub(super) fn check_capacity(&self, needed: usize) -> Result<(), GpuError> {
        if needed > self.capacity as usize {
            return Err(GpuError::TimerTooSmall {
                capacity: self.capacity,
                needed,
            });
        }
        if self.readback.mapping() {
            return Err(GpuError::TimerBusy);
        }
        Ok(())
    }

    pub(super) fn clear(&mut self) {
        self.recorded.clear();
        self.placement = TimestampPlacement::PerPass;
    }

    /// Reserves the next pair of queries for a kernel; returns the index of the first.
    fn reserve(&mut self, label: String, kernel: &'static str) -> Result<u32, GpuError> {
        let index = self.recorded.len();
        self.check_capacity(index + 1)?;
        self.recorded.push((label, kernel));
        Ok(2 * index as u32)
    }

    /// Reserves the next pair of queries for a kernel and returns the pass's writes.
    pub(super) fn push(
        &mut self,
        label: String,
        kernel: &'static str,
    ) -> Result<wgpu::ComputePassTimestampWrites<'_>, GpuError> {
        let begin = self.reserve(label, kernel)?;
        self.placement = TimestampPlacement::PerPass;
        Ok(wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(begin),
            end_of_pass_write_index: Some(begin + 1),
        })
    }

    /// Writes a kernel's beginning timestamp inside `pass`, before its dispatch; follow
    /// the dispatch with [`KernelTimer::end_inside`]. Needs
    /// [`KernelTimer::supports_inside_passes`] (else [`GpuError::TimestampsUnsupported`]).
    pub fn begin_inside(
        &mut self,
        pass: &mut wgpu::ComputePass<'_>,
        label: String,
        kernel: &'static str,
    ) -> Result<(), GpuError> {
        if !self.inside_passes {
            return Err(GpuError::TimestampsUnsupported);
        }
        let begin = self.reserve(label, kernel)?;
        self.placement = TimestampPlacement::InsidePasses;
        pass.write_timestamp(&self.query_set, begin);
        Ok(())
    }

    /// Writes the ending timestamp of the kernel [`KernelTimer::begin_inside`] opened last.
    pub fn end_inside(&self, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(last) = self.recorded.len().checked_sub(1) {
            pass.write_timestamp(&self.query_set, 2 * last as u32 + 1);
        }
    }

    /// Resolves the recorded queries and copies them to the readback buffer, in the same
    /// encoder as the kernels.
    pub(super) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let count = 2 * self.recorded.len() as u32;
        if count == 0 {
            return;
        }
        let bytes = u64::from(count) * 8;
        // check_capacity refused to record while a read is mapping, so this only fails on
        // a bug; the timings are then missing, never wrong.
        if let Ok(staging) = self.readback.begin_or_replace((), bytes) {
            encoder.resolve_query_set(&self.query_set, 0..count, &self.resolve, 0);
            encoder.copy_buffer_to_buffer(&self.resolve, 0, staging, 0, bytes);
        }
    }

    fn timings(&self, raw: &[u8]) -> Vec<KernelTiming> {
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(raw);
        self.recorded
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
            .collect()
    }

    /// Waits for the submitted inference and returns each kernel's duration, in recording
    /// order. Blocks (refused inside a frame): for benchmarks and tests; the frame loop uses
    /// [`KernelTimer::start_map`] and [`KernelTimer::try_take`].
    pub fn read_blocking(&self, device: &wgpu::Device) -> Result<Vec<KernelTiming>, GpuError> {
        if self.recorded.is_empty() {
            return Err(GpuError::TimerEmpty);
        }
        let ((), raw) = self
            .readback
            .take_blocking(device)?
            .ok_or(GpuError::MapCallbackLost)?;
        Ok(self.timings(&raw))
    }

    /// Starts mapping the timestamps after the submission that holds the timed inference;
    /// returns at once. Does nothing unless a timed inference was recorded since the last
    /// read. Until [`KernelTimer::try_take`] delivers, recording another timed inference
    /// fails with [`GpuError::TimerBusy`].
    pub fn start_map(&self) {
        if !self.recorded.is_empty() {
            self.readback.start_map();
        }
    }

    /// True from [`KernelTimer::start_map`] until [`KernelTimer::try_take`] delivers.
    pub fn in_flight(&self) -> bool {
        self.readback.mapping()
    }

    /// Each kernel's duration if the map finished (someone polled the device since
    /// [`KernelTimer::start_map`]), else `None`; never waits. Frees the timer to record
    /// again.
    pub fn try_take(&self) -> Result<Option<Vec<KernelTiming>>, GpuError> {
        Ok(self
            .readback
            .try_take()?
            .map(|((), raw)| self.timings(&raw)))
    }
}

// The window may keep a timer beside the network on another thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<KernelTimer>();
};
