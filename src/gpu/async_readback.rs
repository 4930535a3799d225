//! The one asynchronous readback: a small MAP_READ buffer that a frame copies GPU results
//! into, maps after its submit, and picks up a frame or two later, never waiting. Every
//! non-blocking readback (the window's inference outputs, the probabilities, the hovered
//! value, the kernel timestamps, the dashboard's re-runs) is this type with its own tag:
//! the tag says what the copy was recorded for (an input generation, a cell, a batch of
//! records), so a result can never be mistaken for another input's.
//!
//! The pattern, once per frame:
//!
//! ```text
//! if let Ok(buffer) = readback.begin(tag, bytes) {   // Err: the last copy is still out
//!     encoder.copy_buffer_to_buffer(source, 0, buffer, 0, bytes);
//! }
//! queue.submit([encoder.finish()]);
//! readback.start_map();                  // after the submit that holds the copy
//! device.poll(wgpu::PollType::Poll)?;    // (or let the event loop poll)
//! if let Some((tag, bytes)) = readback.try_take()? { use(tag, bytes) }
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use super::GpuError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MapState {
    /// Free for the next copy.
    Idle,
    /// A copy is recorded (maybe submitted); the map has not started.
    Encoded,
    /// `map_async` was called; its callback has not run yet.
    Mapping,
    Mapped,
    Failed,
}

/// A MAP_READ buffer with the state of its one copy in flight and that copy's tag.
pub struct AsyncReadback<T> {
    buffer: wgpu::Buffer,
    /// Shared with the map callback, which runs inside some later `device.poll`.
    state: Arc<Mutex<MapState>>,
    /// The recorded copy's tag and length in bytes.
    pending: Mutex<Option<(T, u64)>>,
}

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // Plain data: a panic elsewhere cannot leave it half-written.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T> AsyncReadback<T> {
    /// A readback of at most `capacity` bytes (rounded up to a multiple of 4).
    pub fn new(device: &wgpu::Device, label: &str, capacity: u64) -> AsyncReadback<T> {
        AsyncReadback {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: capacity.max(4).next_multiple_of(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            state: Arc::new(Mutex::new(MapState::Idle)),
            pending: Mutex::new(None),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.buffer.size()
    }

    /// Claims the buffer for one copy of `bytes` bytes tagged `tag`, and returns it to copy
    /// into. [`GpuError::ReadbackBusy`] while the previous copy has not been taken.
    pub fn begin(&self, tag: T, bytes: u64) -> Result<&wgpu::Buffer, GpuError> {
        let mut state = lock(&self.state);
        if *state != MapState::Idle {
            return Err(GpuError::ReadbackBusy);
        }
        if bytes == 0 || bytes > self.buffer.size() {
            return Err(GpuError::ReadbackTooSmall {
                capacity: self.buffer.size(),
                needed: bytes,
            });
        }
        *state = MapState::Encoded;
        *lock(&self.pending) = Some((tag, bytes));
        Ok(&self.buffer)
    }

    /// Like [`AsyncReadback::begin`], but a copy recorded and not yet mapping is replaced
    /// (the kernel timer re-records until someone reads it).
    pub fn begin_or_replace(&self, tag: T, bytes: u64) -> Result<&wgpu::Buffer, GpuError> {
        {
            let mut state = lock(&self.state);
            if *state == MapState::Encoded {
                *state = MapState::Idle;
            }
        }
        self.begin(tag, bytes)
    }

    /// Starts mapping after the submission that holds the copy; returns at once. Does
    /// nothing unless a copy was recorded.
    pub fn start_map(&self) {
        let mut state = lock(&self.state);
        if *state != MapState::Encoded {
            return;
        }
        let Some(bytes) = lock(&self.pending).as_ref().map(|(_, bytes)| *bytes) else {
            *state = MapState::Idle;
            return;
        };
        *state = MapState::Mapping;
        drop(state);
        let shared = Arc::clone(&self.state);
        self.buffer
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |result| {
                *lock(&shared) = if result.is_ok() {
                    MapState::Mapped
                } else {
                    MapState::Failed
                };
            });
    }

    /// True from [`AsyncReadback::begin`] until [`AsyncReadback::try_take`] delivers.
    pub fn in_flight(&self) -> bool {
        *lock(&self.state) != MapState::Idle
    }

    /// True while a map was asked for and its callback has not run yet.
    fn awaiting_callback(&self) -> bool {
        *lock(&self.state) == MapState::Mapping
    }

    /// True once the map has started (the copy was submitted) and until it is taken.
    pub fn mapping(&self) -> bool {
        matches!(
            *lock(&self.state),
            MapState::Mapping | MapState::Mapped | MapState::Failed
        )
    }

    /// The tag and bytes of the copy if its map finished (someone polled the device since
    /// [`AsyncReadback::start_map`]), else `None`; never waits. Frees the buffer.
    pub fn try_take(&self) -> Result<Option<(T, Vec<u8>)>, GpuError> {
        let mut state = lock(&self.state);
        match *state {
            MapState::Mapped => {
                let pending = lock(&self.pending).take();
                let result = pending
                    .map(|(tag, bytes)| {
                        let data = self.buffer.slice(..bytes).get_mapped_range()?.to_vec();
                        Ok::<_, GpuError>((tag, data))
                    })
                    .transpose();
                self.buffer.unmap();
                *state = MapState::Idle;
                result
            }
            MapState::Failed => {
                *state = MapState::Idle;
                lock(&self.pending).take();
                Err(GpuError::Map(wgpu::BufferAsyncError))
            }
            _ => Ok(None),
        }
    }

    /// Waits for a copy already mapping and takes it: for benchmarks and tests, refused
    /// inside a frame (see [`super::wait`]).
    pub fn take_blocking(&self, device: &wgpu::Device) -> Result<Option<(T, Vec<u8>)>, GpuError> {
        self.start_map();
        // Another thread polling the same device (tests share one) may have collected this
        // map and not yet run its callback when our wait returns: wait for the callback too,
        // for a bounded time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.awaiting_callback() {
            super::wait::wait_for_gpu(device)?;
            if !self.awaiting_callback() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.try_take()
    }
}
