//! Getting results back to the CPU, blocking: helpers for the CLI and the tests
//! ([`GpuNetwork::run_blocking`], [`GpuNetwork::read_activations`],
//! [`GpuNetwork::read_gradients`]) that submit, wait and map. The window uses the
//! non-blocking [`super::ProbabilityReadback`] instead.

use super::GpuError;
use super::network::GpuNetwork;
use super::request::InferenceRequest;

const F32: u64 = 4;

/// Grad-CAM of one image at one conv block.
#[derive(Clone, Debug, PartialEq)]
pub struct CamOutput {
    /// Index into `Model::conv_blocks`.
    pub block: usize,
    /// `α_k`, one per channel of the block.
    pub channel_weights: Vec<f32>,
    /// `max(0, Σ α_k A_k)`, `height × width`.
    pub raw: Vec<f32>,
    /// `raw` min-max normalised.
    pub low_res: Vec<f32>,
    /// Upsampled to the input size and normalised again: the heatmap to draw.
    pub heatmap: Vec<f32>,
    /// The block's resolution (of `raw` and `low_res`).
    pub height: usize,
    pub width: usize,
}

/// Everything one inference computed for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageOutput {
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
    pub predicted: usize,
    /// The class Grad-CAM explained (the prediction unless a class was requested).
    pub target: usize,
    pub grad_cam: Option<CamOutput>,
    /// `(min, max)` per activation index, when requested.
    pub value_ranges: Option<Vec<(f32, f32)>>,
}

/// The result of [`GpuNetwork::run_blocking`], one entry per input image.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchOutput {
    pub images: Vec<ImageOutput>,
}

use super::async_readback::AsyncReadback;
use super::wait::map_read;

/// Collects buffer-to-staging copies so one submission and one map read everything.
struct Gather<'a> {
    copies: Vec<(&'a wgpu::Buffer, u64, u64)>,
    floats: u64,
}

impl<'a> Gather<'a> {
    fn new() -> Self {
        Gather {
            copies: Vec::new(),
            floats: 0,
        }
    }

    /// Queues `floats` floats from `offset` (in floats) of `buffer`; returns where they
    /// land in the staging buffer, in floats.
    fn add(&mut self, buffer: &'a wgpu::Buffer, offset: u64, floats: u64) -> u64 {
        let at = self.floats;
        if floats > 0 {
            self.copies.push((buffer, offset, floats));
            self.floats += floats;
        }
        at
    }

    fn encode(&self, encoder: &mut wgpu::CommandEncoder, staging: &wgpu::Buffer) {
        let mut at = 0;
        for &(buffer, offset, floats) in &self.copies {
            encoder.copy_buffer_to_buffer(buffer, offset * F32, staging, at * F32, floats * F32);
            at += floats;
        }
    }
}

fn slice_f32(words: &[f32], at: u64, len: usize) -> Vec<f32> {
    words[at as usize..at as usize + len].to_vec()
}

/// Where one inference's per-image results land in a staging buffer, in floats: what
/// [`GpuNetwork::encode_outputs`] recorded and [`GpuNetwork::outputs_from_bytes`] reads.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputPlan {
    images: u32,
    logits: u64,
    probabilities: u64,
    predicted: u64,
    targets: u64,
    /// The Grad-CAM block and where its four regions land.
    cam: Option<(usize, [u64; 4])>,
    ranges: Option<u64>,
    floats: u64,
}

impl OutputPlan {
    /// Bytes the copies fill.
    pub fn bytes(&self) -> u64 {
        self.floats.max(1) * F32
    }
}

impl GpuNetwork {
    /// Bytes [`GpuNetwork::encode_outputs`] needs at most for `images` images (Grad-CAM and
    /// value ranges included): the size of a staging buffer that fits every request.
    pub fn output_capacity(&self, images: u32) -> u64 {
        let cam = self.cam_layout;
        let per_image = 2 * self.classes as u64
            + 2
            + cam.channel_weights.stride
            + cam.raw.stride
            + cam.low_res.stride
            + cam.heatmap.stride
            + 2 * self.layout.activations() as u64;
        u64::from(images.max(1)) * per_image * F32
    }

    fn output_gather(
        &self,
        request: &InferenceRequest,
    ) -> Result<(Gather<'_>, OutputPlan), GpuError> {
        let resolved = self.resolve(request)?;
        let n = u64::from(resolved.batch);
        let classes = self.classes as u64;
        let acts = self.layout.activations();
        let logits_slot = &self.layout.slots[acts - 1];
        let mut gather = Gather::new();
        let logits = gather.add(&self.buffers.activations, logits_slot.offset, n * classes);
        let probabilities = gather.add(&self.buffers.probabilities, 0, n * classes);
        let predicted = gather.add(&self.buffers.predicted, 0, n);
        let targets = gather.add(&self.buffers.targets, 0, n);
        let cam = self.cam_layout;
        let cam = resolved.block.map(|block| {
            let at = [cam.channel_weights, cam.raw, cam.low_res, cam.heatmap]
                .map(|region| gather.add(&self.buffers.cam, region.offset, n * region.stride));
            (block, at)
        });
        let ranges = resolved
            .value_ranges
            .then(|| gather.add(&self.buffers.ranges, 0, n * 2 * acts as u64));
        let plan = OutputPlan {
            images: resolved.batch,
            logits,
            probabilities,
            predicted,
            targets,
            cam,
            ranges,
            floats: gather.floats,
        };
        Ok((gather, plan))
    }

    /// Records copies of every per-image result of the inference `request` just recorded
    /// (after [`GpuNetwork::encode`] in the same encoder) into an [`AsyncReadback`] tagged
    /// `tag`. [`GpuError::ReadbackBusy`] while its last copy is still out.
    pub fn encode_outputs<T>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        request: &InferenceRequest,
        readback: &AsyncReadback<(T, OutputPlan)>,
        tag: T,
    ) -> Result<(), GpuError> {
        let (gather, plan) = self.output_gather(request)?;
        let bytes = plan.bytes();
        let staging = readback.begin((tag, plan), bytes)?;
        gather.encode(encoder, staging);
        Ok(())
    }

    /// Reads the results a copy planned by `plan` brought back.
    pub fn outputs_from_bytes(&self, plan: &OutputPlan, bytes: &[u8]) -> BatchOutput {
        let words: Vec<f32> = bytemuck::pod_collect_to_vec(bytes);
        let classes = self.classes;
        let acts = self.layout.activations();
        let cam = self.cam_layout;
        let images = (0..plan.images)
            .map(|image| {
                let i = u64::from(image);
                let class_at = |base: u64| slice_f32(&words, base + i * classes as u64, classes);
                let index_at = |base: u64| words[(base + i) as usize].to_bits() as usize;
                let grad_cam = plan.cam.map(|(block, [w, r, l, h])| {
                    let b = &self.blocks[block];
                    let plane = b.height * b.width;
                    let (in_h, in_w) = self.input_size;
                    CamOutput {
                        block,
                        channel_weights: slice_f32(
                            &words,
                            w + i * cam.channel_weights.stride,
                            b.channels,
                        ),
                        raw: slice_f32(&words, r + i * cam.raw.stride, plane),
                        low_res: slice_f32(&words, l + i * cam.low_res.stride, plane),
                        heatmap: slice_f32(&words, h + i * cam.heatmap.stride, in_h * in_w),
                        height: b.height,
                        width: b.width,
                    }
                });
                let value_ranges = plan.ranges.map(|at| {
                    (0..acts)
                        .map(|j| {
                            let k = (at + 2 * (i * acts as u64 + j as u64)) as usize;
                            (words[k], words[k + 1])
                        })
                        .collect()
                });
                ImageOutput {
                    logits: class_at(plan.logits),
                    probabilities: class_at(plan.probabilities),
                    predicted: index_at(plan.predicted),
                    target: index_at(plan.targets),
                    grad_cam,
                    value_ranges,
                }
            })
            .collect();
        BatchOutput { images }
    }

    /// Writes the inputs, records and submits one inference, waits, and reads back every
    /// per-image result. The batch is the number of images in `normalised_inputs`
    /// (`request.batch` is ignored). Blocks (refused inside a frame); the window records
    /// [`GpuNetwork::encode_outputs`] into an [`AsyncReadback`] instead.
    pub fn run_blocking(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        normalised_inputs: &[f32],
        request: &InferenceRequest,
    ) -> Result<BatchOutput, GpuError> {
        // Refused before anything is written or recorded.
        super::wait::refuse_in_frame("a blocking inference")?;
        let batch = self.write_inputs(queue, normalised_inputs)?;
        let request = InferenceRequest { batch, ..*request };
        let (gather, plan) = self.output_gather(&request)?;
        let mut encoder = device.create_command_encoder(&Default::default());
        self.encode(&mut encoder, &request)?;
        gather.encode(&mut encoder, &self.buffers.output_staging);
        queue.submit([encoder.finish()]);
        let raw = map_read(device, &self.buffers.output_staging, 0..plan.bytes())?;
        Ok(self.outputs_from_bytes(&plan, &raw))
    }

    /// Every activation of the first `batch` images of the last inference, as
    /// `[image][activation index][element]`. Makes a staging buffer per call: a test and
    /// debugging aid, not for the frame loop.
    pub fn read_activations(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        batch: u32,
    ) -> Result<Vec<Vec<Vec<f32>>>, GpuError> {
        let down_to = vec![true; self.layout.activations()];
        let read = self.read_arena(device, queue, &self.buffers.activations, batch, &down_to)?;
        Ok(read
            .into_iter()
            .map(|image| image.into_iter().map(|a| a.unwrap_or_default()).collect())
            .collect())
    }

    /// The gradients of the last Grad-CAM inference at `block` (`None`: the last block), as
    /// `[image][activation index]`: `Some` from the block's output up to the logits (the
    /// entries the backward pass wrote), `None` below — the shape of
    /// `model::reference::activation_gradients`.
    pub fn read_gradients(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        batch: u32,
        block: Option<usize>,
    ) -> Result<Vec<Vec<Option<Vec<f32>>>>, GpuError> {
        let request = InferenceRequest {
            batch,
            block,
            ..Default::default()
        };
        let resolved = self.resolve(&request)?;
        let block = resolved.block.ok_or(GpuError::NoConvBlock)?;
        let target = self.blocks[block].output_layer + 1;
        let wanted: Vec<bool> = (0..self.layout.activations())
            .map(|j| j >= target)
            .collect();
        self.read_arena(device, queue, &self.buffers.gradients, batch, &wanted)
    }

    fn read_arena(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        arena: &wgpu::Buffer,
        batch: u32,
        wanted: &[bool],
    ) -> Result<Vec<Vec<Option<Vec<f32>>>>, GpuError> {
        if batch == 0 || batch > self.layout.max_batch {
            return Err(GpuError::BadBatch {
                batch,
                max_batch: self.layout.max_batch,
            });
        }
        let n = u64::from(batch);
        let mut gather = Gather::new();
        // Images of one activation are contiguous, so one copy per activation.
        let at: Vec<u64> = self
            .layout
            .slots
            .iter()
            .zip(wanted)
            .map(|(slot, &want)| {
                if want {
                    gather.add(arena, slot.offset, n * slot.len as u64)
                } else {
                    0
                }
            })
            .collect();
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("arena readback"),
            size: gather.floats.max(1) * F32,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        gather.encode(&mut encoder, &staging);
        queue.submit([encoder.finish()]);
        let raw = map_read(device, &staging, 0..gather.floats.max(1) * F32)?;
        let words: Vec<f32> = bytemuck::pod_collect_to_vec(&raw);
        Ok((0..n)
            .map(|i| {
                self.layout
                    .slots
                    .iter()
                    .enumerate()
                    .map(|(j, slot)| {
                        wanted[j].then(|| slice_f32(&words, at[j] + i * slot.len as u64, slot.len))
                    })
                    .collect()
            })
            .collect())
    }
}
