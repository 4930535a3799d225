//! Feature visualisation on the GPU: [`FeatureVis`] optimises a batch of inputs by
//! gradient ascent, image n exciting objective n (channel n of a conv block, or class n),
//! as [`crate::feature_vis`] defines the step.
//!
//! **Design.** One [`GpuNetwork`] with a kernel per layer (`max_batch` = the number of
//! objectives, at least 2 so it takes the per-layer path) runs the forward pass of the whole
//! batch, stopping at the objective's activation (measured: half of conv1's time went to
//! the layers after it); its per-layer backward steps (`layer_plan::backward_layers`),
//! sliced from the objective's activation down to the input as `gpu::explain` slices
//! them, are bound again
//! here, and so are the four kernels of `shaders/feature_vis.wgsl` (jitter in, seed the
//! objective's gradient and record its value, ascend, advance the step counter), all on a
//! buffer of this module's own at the explanation binding. The step index lives in that
//! buffer, so every step records the same launches: a run of 256 steps is 256 copies of
//! one sequence in a few submissions ([`STEPS_PER_SUBMISSION`]), with no readback until
//! [`FeatureVis::read`]. The starting images and the jitter come from the seed on the
//! CPU (`model::rng::Rng`, uploaded once), so a seed reproduces a run exactly, and the
//! CPU twin ([`crate::feature_vis::reference`]) starts from the same numbers.
//!
//! `ascend` keeps one image in workgroup memory (for its mean |g| and the blur), so the
//! input may hold at most [`MAX_INPUT_FLOATS`] floats; a larger one is an error at
//! creation, not a panic.

use super::dispatch::{Dispatch, build_dispatches};
use super::layer_plan::{PlanInputs, backward_layers, layer_uniforms};
use super::network::{GpuNetwork, in_error_scopes};
use super::params::FeatureVisParams;
use super::pipelines::{Kernel, Pipelines};
use super::plan::{Step, groups_for, to_u32};
use super::{GpuError, wait};
use crate::feature_vis::{
    FeatureVisError, FeatureVisOptions, Objective, ObjectiveShape, check_options, input_range,
    jitter_offsets, start_image,
};
use crate::model::Model;

const F32: u64 = 4;

/// Floats of one input image `ascend` holds in workgroup memory (twin of `MAX_INPUT` in
/// `shaders/feature_vis.wgsl`).
pub const MAX_INPUT_FLOATS: usize = 3072;

/// Steps recorded per submission: few submissions, yet progress to report and a driver
/// that never sees one enormous command buffer.
pub const STEPS_PER_SUBMISSION: usize = 16;

/// Where everything lives in the feature-visualisation buffer (float offsets).
#[derive(Clone, Copy, Debug)]
struct BufferLayout {
    counter: usize,
    consts: usize,
    images: usize,
    jitter: usize,
    history: usize,
    total: usize,
}

impl BufferLayout {
    fn new(images: usize, in_len: usize, steps: usize) -> BufferLayout {
        let counter = 0;
        let consts = 1;
        let images_at = 5;
        let jitter = images_at + images * in_len;
        let history = jitter + 2 * steps;
        BufferLayout {
            counter,
            consts,
            images: images_at,
            jitter,
            history,
            total: history + steps * images,
        }
    }
}

/// The four kernels of `shaders/feature_vis.wgsl`, bound.
struct StepKernels {
    jitter_in: Dispatch,
    seed: Dispatch,
    ascend: Dispatch,
    advance: Dispatch,
}

/// What [`FeatureVis::read`] brings back.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureVisSnapshot {
    /// Steps run so far.
    pub steps: usize,
    /// Image n (normalised, C·H·W) at `n * input_len`.
    pub images: Vec<f32>,
    /// `history[s][n]`: objective n before step s, for every step run.
    pub history: Vec<Vec<f32>>,
}

/// A feature-visualisation run on one device: every buffer and launch made in
/// [`FeatureVis::new`]; [`FeatureVis::run`] only records and submits.
pub struct FeatureVis {
    device: wgpu::Device,
    queue: wgpu::Queue,
    network: GpuNetwork,
    pipelines: Pipelines,
    backward: Vec<Dispatch>,
    kernels: StepKernels,
    /// Forward launches up to the objective's activation (the rest is not needed).
    forward_launches: usize,
    buffer: wgpu::Buffer,
    staging: wgpu::Buffer,
    layout: BufferLayout,
    shape: ObjectiveShape,
    options: FeatureVisOptions,
    input_len: usize,
    done: usize,
}

impl FeatureVis {
    /// Builds the network, the buffer and every launch for `objective` on `model`, and
    /// uploads the seeded starting images and jitter. Bad options, a block that does not
    /// exist, an input too large for workgroup memory and a batch past the device's limits
    /// are errors that say so.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        model: &Model,
        objective: Objective,
        options: FeatureVisOptions,
    ) -> Result<FeatureVis, GpuError> {
        check_options(&options)?;
        let shape = objective.shape(model)?;
        let input_len = model.input_len();
        if input_len > MAX_INPUT_FLOATS {
            return Err(FeatureVisError::InputTooLarge {
                floats: input_len,
                max: MAX_INPUT_FLOATS,
            }
            .into());
        }
        let limits = device.limits();
        let count = to_u32(shape.count)?;
        let batch = count.max(2);
        let (fits, stopper) = GpuNetwork::max_batch_for(model, &limits);
        if batch > fits {
            return Err(GpuError::BatchTooLarge {
                requested: batch,
                fits,
                reason: format!(
                    "the feature visualisation runs one image per objective ({count}) and \
                     {stopper} would exceed the device's limits"
                ),
            });
        }
        let layout = BufferLayout::new(shape.count, input_len, options.steps);
        let bytes = layout.total as u64 * F32;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(GpuError::ModelTooLarge(format!(
                "the feature-visualisation buffer needs {bytes} bytes; a storage binding \
                 holds {} (fewer steps make it smaller)",
                limits.max_storage_buffer_binding_size
            )));
        }
        let network = GpuNetwork::new(device, model, batch)?;
        let forward_launches = forward_launches(model, &network, shape.activation);
        let params = feature_vis_params(model, &network, &shape, &layout, &options)?;
        let (pipelines, backward, kernels, buffer, staging) =
            in_error_scopes(device, "creating the feature visualisation", || {
                let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("feature visualisation"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let staging = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("feature visualisation readback"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let backward = backward_steps(model, &network, shape.activation)?;
                let name = "feature-vis";
                let per_image = |k: Kernel, groups: u32| Step::new(k, name, &params, groups);
                let own = [
                    per_image(Kernel::FeatureVisJitterIn, groups_for(input_len)?),
                    per_image(Kernel::FeatureVisSeed, 1),
                    per_image(Kernel::FeatureVisAscend, 1),
                    per_image(Kernel::FeatureVisAdvance, 1),
                ];
                let pipelines =
                    Pipelines::new(device, backward.iter().chain(&own).map(|s| s.kernel));
                let bind = |steps: &[Step]| {
                    let refs: Vec<&Step> = steps.iter().collect();
                    build_dispatches(device, &refs, &pipelines, &network.buffers, Some(&buffer))
                };
                let backward = bind(&backward)?;
                let [jitter_in, seed, ascend, advance]: [Dispatch; 4] = bind(&own)?
                    .try_into()
                    .map_err(|_| GpuError::ModelTooLarge("binding the kernels".into()))?;
                let kernels = StepKernels {
                    jitter_in,
                    seed,
                    ascend,
                    advance,
                };
                Ok((pipelines, backward, kernels, buffer, staging))
            })?;

        // Everything a run reads, uploaded once.
        let write = |offset: usize, values: &[f32]| {
            queue.write_buffer(&buffer, offset as u64 * F32, bytemuck::cast_slice(values));
        };
        let (low, high) = input_range(model);
        write(
            layout.counter,
            &[0.0, options.learning_rate, low, high, options.decay],
        );
        let images: Vec<f32> = (0..shape.count)
            .flat_map(|n| start_image(model, options.seed, n))
            .collect();
        write(layout.images, &images);
        let jitter: Vec<f32> = jitter_offsets(&options)
            .into_iter()
            .flat_map(|(dy, dx)| [dy as f32, dx as f32])
            .collect();
        write(layout.jitter, &jitter);
        write(layout.history, &vec![0.0; options.steps * shape.count]);
        Ok(FeatureVis {
            device: device.clone(),
            queue: queue.clone(),
            network,
            pipelines,
            backward,
            kernels,
            forward_launches,
            buffer,
            staging,
            layout,
            shape,
            options,
            input_len,
            done: 0,
        })
    }

    /// Runs up to `steps` more steps (never past `options.steps`), calling `progress` with
    /// the steps done after each submission; returns the steps done in all.
    pub fn run(
        &mut self,
        steps: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<usize, GpuError> {
        let end = (self.done + steps).min(self.options.steps);
        while self.done < end {
            let chunk = (end - self.done).min(STEPS_PER_SUBMISSION);
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("feature visualisation"),
                });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("feature visualisation steps"),
                    timestamp_writes: None,
                });
                for _ in 0..chunk {
                    self.record_step(&mut pass);
                }
            }
            self.queue.submit([encoder.finish()]);
            wait::wait_for_gpu(&self.device)?;
            self.done += chunk;
            progress(self.done);
        }
        Ok(self.done)
    }

    /// One step for every image: jitter in, forward, seed, backward, ascend, advance.
    fn record_step(&self, pass: &mut wgpu::ComputePass<'_>) {
        let count = self.shape.count as u32;
        let k = &self.kernels;
        let p = &self.pipelines;
        k.jitter_in.record(pass, p, count);
        self.network
            .record_forward_prefix(pass, count, self.forward_launches);
        k.seed.record(pass, p, count);
        for d in &self.backward {
            d.record(pass, p, count);
        }
        k.ascend.record(pass, p, count);
        k.advance.record(pass, p, 1);
    }

    /// The images and the objective history so far (one copy, one readback).
    pub fn read(&self) -> Result<FeatureVisSnapshot, GpuError> {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("feature visualisation readback"),
            });
        encoder.copy_buffer_to_buffer(&self.buffer, 0, &self.staging, 0, self.staging.size());
        self.queue.submit([encoder.finish()]);
        let bytes = wait::map_read(&self.device, &self.staging, 0..self.staging.size())?;
        let data: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        let l = self.layout;
        let count = self.shape.count;
        Ok(FeatureVisSnapshot {
            steps: self.done,
            images: data[l.images..l.images + count * self.input_len].to_vec(),
            history: (0..self.done)
                .map(|s| data[l.history + s * count..l.history + (s + 1) * count].to_vec())
                .collect(),
        })
    }

    /// Objectives (images) of this run.
    pub fn objectives(&self) -> usize {
        self.shape.count
    }

    /// Steps run so far.
    pub fn steps_done(&self) -> usize {
        self.done
    }

    pub fn options(&self) -> &FeatureVisOptions {
        &self.options
    }
}

/// How many of the network's forward launches write the activations up to `activation`:
/// those of the layers before it (a launch is named after its layer; a ReLU fused into the
/// layer before it has no launch of its own, and softmax is named after no layer).
fn forward_launches(model: &Model, network: &GpuNetwork, activation: usize) -> usize {
    let layer_of = |label: &str| {
        let name = label.split(' ').next().unwrap_or_default();
        model
            .layers
            .iter()
            .position(|l| l.plan.name == name)
            .unwrap_or(model.layers.len())
    };
    network
        .forward_kernels()
        .iter()
        .take_while(|label| layer_of(label) < activation)
        .count()
}

/// The network's per-layer backward launches from activation `from` down to the input.
fn backward_steps(model: &Model, network: &GpuNetwork, from: usize) -> Result<Vec<Step>, GpuError> {
    let (uniforms, _) = layer_uniforms(model, &network.layout)?;
    let inputs = PlanInputs {
        model,
        arena: &network.layout,
        cam: &network.cam_layout,
        variant: network.kernel_variant(),
        choices: &[],
        uniforms,
    };
    Ok(backward_layers(&inputs)?[..from]
        .iter()
        .rev()
        .flatten()
        .cloned()
        .collect())
}

/// The kernels' uniform.
fn feature_vis_params(
    model: &Model,
    network: &GpuNetwork,
    shape: &ObjectiveShape,
    layout: &BufferLayout,
    options: &FeatureVisOptions,
) -> Result<FeatureVisParams, GpuError> {
    let input = model.architecture.input;
    let u = |v: usize| to_u32(v);
    Ok(FeatureVisParams {
        input_offset: to_u32(network.layout.slots[0].offset)?,
        in_len: u(model.input_len())?,
        in_channels: u(input.channels)?,
        in_height: u(input.height)?,
        in_width: u(input.width)?,
        act_offset: to_u32(network.layout.slots[shape.activation].offset)?,
        act_len: u(shape.len)?,
        plane: u(shape.plane)?,
        images: u(shape.count)?,
        steps: u(options.steps)?,
        blur_every: u(options.blur_every)?,
        counter_off: u(layout.counter)?,
        consts_off: u(layout.consts)?,
        image_off: u(layout.images)?,
        jitter_off: u(layout.jitter)?,
        history_off: u(layout.history)?,
    })
}

// The window may run a visualisation on a worker thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<FeatureVis>();
};
