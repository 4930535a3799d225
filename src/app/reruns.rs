//! Re-runs of stored inputs, on a network of their own. The scene binds the activation
//! arena of the session's network, so a stored input run through that network would show
//! a second digit in every layer after the input; here each batch runs through its own
//! [`GpuNetwork`] (own arena, own Grad-CAM buffers) and comes back through an
//! [`AsyncReadback`] a frame or two later, so neither the scene nor the frame ever notices.
//! Showing a record in the scene is a separate, explicit action: it puts the record's
//! drawing on the canvas.

use std::collections::VecDeque;

use crate::gpu::{
    AsyncReadback, CamTarget, GpuError, GpuNetwork, ImageOutput, InferenceRequest, OutputPlan,
};
use crate::model::Model;
use crate::store::{PredictionId, RerunInput};

/// Stored inputs per batch (and so per frame during "Re-run all"), when the device holds
/// that many of the model's images at once.
pub const RERUN_BATCH: u32 = 8;

pub struct Reruns {
    network: GpuNetwork,
    /// [`RERUN_BATCH`], or fewer for a model whose activations for 8 images do not fit.
    batch: u32,
    readback: AsyncReadback<(Vec<PredictionId>, OutputPlan)>,
    /// Inputs asked for and not yet recorded.
    waiting: VecDeque<RerunInput>,
}

impl Reruns {
    pub fn new(device: &wgpu::Device, model: &Model) -> Result<Reruns, GpuError> {
        // A 3×224×224 model's activations for 8 images can pass a device's binding limit.
        let (fits, _) = GpuNetwork::max_batch_for(model, &device.limits());
        let batch = RERUN_BATCH.min(fits).max(1);
        let network = GpuNetwork::new(device, model, batch)?;
        let capacity = network.output_capacity(batch);
        Ok(Reruns {
            batch,
            readback: AsyncReadback::new(device, "re-run outputs", capacity),
            network,
            waiting: VecDeque::new(),
        })
    }

    /// Queues `input` for the next batch.
    pub fn push(&mut self, input: RerunInput) {
        self.waiting.push_back(input);
    }

    /// How many more inputs the next batch can take.
    pub fn room(&self) -> usize {
        (self.batch as usize).saturating_sub(self.waiting.len())
    }

    /// Whether a batch is queued or on its way.
    pub fn busy(&self) -> bool {
        !self.waiting.is_empty() || self.readback.in_flight()
    }

    /// Records one batch of waiting inputs (with Grad-CAM at `block` for `target`, as the
    /// person chose) and the copy of its results, unless the last batch is still out.
    pub fn encode(
        &mut self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        model: &Model,
        target: CamTarget,
        block: Option<usize>,
    ) -> Result<(), GpuError> {
        if self.waiting.is_empty() || self.readback.in_flight() {
            return Ok(());
        }
        let take = self.waiting.len().min(self.batch as usize);
        let batch: Vec<RerunInput> = self.waiting.drain(..take).collect();
        let mut inputs = Vec::with_capacity(batch.len() * model.input_len());
        for input in &batch {
            inputs.extend(model.normalize(&input.input.values));
        }
        let images = self.network.write_inputs(queue, &inputs)?;
        let request = InferenceRequest {
            batch: images,
            target,
            block,
            grad_cam: block.is_some(),
            value_ranges: false,
        };
        self.network.encode(encoder, &request)?;
        let ids = batch.iter().map(|input| input.id).collect();
        self.network
            .encode_outputs(encoder, &request, &self.readback, ids)
    }

    /// After the submit: starts mapping the batch recorded this frame.
    pub fn start_map(&self) {
        self.readback.start_map();
    }

    /// The results of a batch once back, one per record; never waits.
    pub fn try_take(&self) -> Result<Vec<(PredictionId, ImageOutput)>, GpuError> {
        let Some(((ids, plan), bytes)) = self.readback.try_take()? else {
            return Ok(Vec::new());
        };
        let outputs = self.network.outputs_from_bytes(&plan, &bytes);
        Ok(ids.into_iter().zip(outputs.images).collect())
    }
}
