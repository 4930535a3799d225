//! Image 0's probabilities and predicted class (a few dozen bytes) through an
//! [`AsyncReadback`]: for benchmarks of the window's latency and for callers that want
//! only the class. The window itself reads whole outputs ([`super::OutputReadback`]).

use super::GpuError;
use super::async_readback::AsyncReadback;
use super::network::GpuNetwork;

const F32: u64 = 4;

impl GpuNetwork {
    /// A small readback for [`GpuNetwork::encode_probability_readback`]. Make one at
    /// start-up and reuse it.
    pub fn probability_readback(&self, device: &wgpu::Device) -> ProbabilityReadback {
        let bytes = (self.classes as u64 + 1) * F32;
        ProbabilityReadback {
            readback: AsyncReadback::new(device, "probability readback", bytes),
            classes: self.classes,
        }
    }

    /// Records a copy of image 0's probabilities and predicted class into `readback`, after
    /// [`GpuNetwork::encode`] in the same encoder. Fails with [`GpuError::ReadbackBusy`]
    /// while an earlier copy into it has not been taken.
    pub fn encode_probability_readback(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        readback: &ProbabilityReadback,
    ) -> Result<(), GpuError> {
        let classes = self.classes as u64;
        let buffer = readback.readback.begin((), (classes + 1) * F32)?;
        encoder.copy_buffer_to_buffer(&self.buffers.probabilities, 0, buffer, 0, classes * F32);
        encoder.copy_buffer_to_buffer(&self.buffers.predicted, 0, buffer, classes * F32, F32);
        Ok(())
    }
}

/// Image 0's probabilities and predicted class, fetched without stalling the frame (the
/// pattern of [`AsyncReadback`]).
pub struct ProbabilityReadback {
    readback: AsyncReadback<()>,
    classes: usize,
}

/// What a [`ProbabilityReadback`] delivers.
#[derive(Clone, Debug, PartialEq)]
pub struct Probabilities {
    pub probabilities: Vec<f32>,
    pub predicted: usize,
}

impl ProbabilityReadback {
    /// Starts mapping after the submission that holds the copy; returns at once.
    pub fn start_map(&self) {
        self.readback.start_map();
    }

    /// True while a copy is encoded or being mapped.
    pub fn in_flight(&self) -> bool {
        self.readback.in_flight()
    }

    /// The result if the map finished (someone polled the device since), else `None`.
    pub fn try_take(&self) -> Result<Option<Probabilities>, GpuError> {
        Ok(self.readback.try_take()?.map(|((), bytes)| {
            let words: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
            Probabilities {
                probabilities: words[..self.classes].to_vec(),
                predicted: words[self.classes].to_bits() as usize,
            }
        }))
    }
}
