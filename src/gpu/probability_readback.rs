//! The non-blocking path for the interactive window: copy only image 0's probabilities
//! and predicted class (a few dozen bytes) into a small MAP_READ buffer, and let the frame
//! loop pick them up whenever the GPU is done. The frame never waits for a readback.

use std::sync::{Arc, Mutex, MutexGuard};

use super::GpuError;
use super::network::GpuNetwork;

const F32: u64 = 4;

impl GpuNetwork {
    /// A small MAP_READ buffer for [`GpuNetwork::encode_probability_readback`]. Make one
    /// (or a few, as a ring) at start-up and reuse it.
    pub fn probability_readback(&self, device: &wgpu::Device) -> ProbabilityReadback {
        let bytes = (self.classes as u64 + 1) * F32;
        ProbabilityReadback {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("probability readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            classes: self.classes,
            state: Arc::new(Mutex::new(MapState::Idle)),
        }
    }

    /// Records a copy of image 0's probabilities and predicted class into `readback`, after
    /// [`GpuNetwork::encode`] in the same encoder. Fails with [`GpuError::ReadbackBusy`]
    /// while an earlier copy into it has not been taken: skip the copy that frame, or use a
    /// ring of readbacks.
    pub fn encode_probability_readback(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        readback: &ProbabilityReadback,
    ) -> Result<(), GpuError> {
        let mut state = readback.lock();
        if *state != MapState::Idle {
            return Err(GpuError::ReadbackBusy);
        }
        let classes = self.classes as u64;
        encoder.copy_buffer_to_buffer(
            &self.buffers.probabilities,
            0,
            &readback.buffer,
            0,
            classes * F32,
        );
        encoder.copy_buffer_to_buffer(
            &self.buffers.predicted,
            0,
            &readback.buffer,
            classes * F32,
            F32,
        );
        *state = MapState::Encoded;
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
enum MapState {
    Idle,
    Encoded,
    Mapping,
    Mapped,
    Failed,
}

/// Image 0's probabilities and predicted class, fetched without stalling the frame.
///
/// The pattern, once per frame:
///
/// ```text
/// network.encode(&mut encoder, &request)?;
/// if network.encode_probability_readback(&mut encoder, &readback).is_ok() {
///     queue.submit([encoder.finish()]);
///     readback.start_map();               // after the submit that holds the copy
/// } else {
///     queue.submit([encoder.finish()]);   // previous readback still in flight
/// }
/// device.poll(wgpu::PollType::Poll)?;     // (or let the event loop poll)
/// if let Some(result) = readback.try_take()? { show(result.probabilities) }
/// ```
pub struct ProbabilityReadback {
    buffer: wgpu::Buffer,
    classes: usize,
    state: Arc<Mutex<MapState>>,
}

/// What a [`ProbabilityReadback`] delivers.
#[derive(Clone, Debug, PartialEq)]
pub struct Probabilities {
    pub probabilities: Vec<f32>,
    pub predicted: usize,
}

impl ProbabilityReadback {
    fn lock(&self) -> MutexGuard<'_, MapState> {
        // The state is a plain enum; a panic elsewhere cannot leave it half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts mapping after the submission that holds the copy; returns at once. Does
    /// nothing unless a copy was encoded.
    pub fn start_map(&self) {
        let mut state = self.lock();
        if *state != MapState::Encoded {
            return;
        }
        *state = MapState::Mapping;
        drop(state);
        let shared = Arc::clone(&self.state);
        self.buffer
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
                *state = if result.is_ok() {
                    MapState::Mapped
                } else {
                    MapState::Failed
                };
            });
    }

    /// True while a copy is encoded or being mapped.
    pub fn in_flight(&self) -> bool {
        matches!(*self.lock(), MapState::Encoded | MapState::Mapping)
    }

    /// The result if the map finished (someone polled the device since), else `None`.
    /// Unmaps, so the readback can be encoded again.
    pub fn try_take(&self) -> Result<Option<Probabilities>, GpuError> {
        let mut state = self.lock();
        match *state {
            MapState::Mapped => {
                let bytes = self.buffer.slice(..).get_mapped_range()?.to_vec();
                self.buffer.unmap();
                *state = MapState::Idle;
                let words: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
                Ok(Some(Probabilities {
                    probabilities: words[..self.classes].to_vec(),
                    predicted: words[self.classes].to_bits() as usize,
                }))
            }
            MapState::Failed => {
                *state = MapState::Idle;
                Err(GpuError::Map(wgpu::BufferAsyncError))
            }
            _ => Ok(None),
        }
    }
}
