//! [`GpuNetwork`]: a model's buffers, pipelines and bind groups, made once, and the encoder
//! that records one whole inference (forward, softmax, Grad-CAM, value ranges) into the
//! caller's command encoder.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
use super::buffers::Buffers;
use super::dispatch::{Dispatch, Dispatches};
use super::kernel_choice::{KernelVariant, LayerChoices, NetworkOptions};
use super::limits;
use super::pipelines::Pipelines;
use super::plan::KernelPlan;
use super::request::{InferenceRequest, Resolved};
use super::timer::KernelTimer;
use crate::model::{ConvBlock, Model};

/// The network resident on one device. Every buffer, pipeline, uniform and bind group is
/// created in [`GpuNetwork::new`]; an inference only records dispatches, so the window can
/// run one per frame and the CLI thousands in a row without allocating.
pub struct GpuNetwork {
    pub(super) layout: ArenaLayout,
    pub(super) cam_layout: CamLayout,
    pub(super) blocks: Vec<ConvBlock>,
    pub(super) classes: usize,
    pub(super) input_len: usize,
    /// Input height and width: the heatmap's size.
    pub(super) input_size: (usize, usize),
    pub(super) buffers: Buffers,
    pipelines: Pipelines,
    dispatches: Dispatches,
    max_steps: usize,
    interactive_dispatches: usize,
    kernels: KernelVariant,
}

impl GpuNetwork {
    /// Uploads `model` and builds everything an inference of up to `max_batch` images needs.
    /// Too large a batch is an error naming the biggest that fits. wgpu validation and
    /// out-of-memory errors during creation come back as [`GpuError`] (through error
    /// scopes) instead of wgpu's default panic. The conv and dense kernels are the default
    /// choice ([`NetworkOptions::default`]: `CNNVIZ_KERNELS` if set, else the rule of
    /// `kernel_choice`; `tune::tuned_network` builds the measured choice).
    pub fn new(device: &wgpu::Device, model: &Model, max_batch: u32) -> Result<Self, GpuError> {
        Self::with_options(device, model, max_batch, &NetworkOptions::default())
    }

    /// [`GpuNetwork::new`] with explicit options, e.g. a forced kernel variant for tests
    /// and benchmarks that compare them.
    pub fn with_options(
        device: &wgpu::Device,
        model: &Model,
        max_batch: u32,
        options: &NetworkOptions,
    ) -> Result<Self, GpuError> {
        let kernels = options.resolve()?;
        Self::with_choices(device, model, max_batch, kernels, &LayerChoices::new())
    }

    /// A network whose conv and dense layers run the kernels in `choices` (per layer, as
    /// `tune` decides them); layers without a choice follow `kernels` (`auto` without a
    /// choice: the rule in `kernel_choice`). [`super::tune::tuned_network`] builds the
    /// measured one.
    pub fn with_choices(
        device: &wgpu::Device,
        model: &Model,
        max_batch: u32,
        kernels: KernelVariant,
        choices: &LayerChoices,
    ) -> Result<Self, GpuError> {
        in_error_scopes(device, "creating the GPU network", || {
            Self::build(device, model, max_batch, kernels, choices)
        })
    }

    /// The largest `max_batch` whose buffers fit `limits`, and what stops a larger one.
    pub fn max_batch_for(model: &Model, limits: &wgpu::Limits) -> (u32, &'static str) {
        limits::max_batch_for(model, limits)
    }

    fn build(
        device: &wgpu::Device,
        model: &Model,
        max_batch: u32,
        kernels: KernelVariant,
        choices: &LayerChoices,
    ) -> Result<Self, GpuError> {
        let device_limits = device.limits();
        limits::check_batch(model, &device_limits, max_batch)?;
        let layout = ArenaLayout::new(model, max_batch);
        let cam_layout = CamLayout::new(model, max_batch);
        let plan = KernelPlan::with_choices(model, &layout, &cam_layout, kernels, choices)?;
        limits::check_weights(&plan, &device_limits)?;
        limits::check_loop_limit(&device.adapter_info(), &plan)?;

        let classes = model.num_classes();
        let buffers = Buffers::new(device, &plan, &layout, &cam_layout, classes);
        let pipelines = Pipelines::new(device, plan.steps().iter().map(|s| s.kernel));
        let dispatches = Dispatches::new(device, &plan, &pipelines, &buffers)?;
        let input = model.architecture.input;
        Ok(GpuNetwork {
            layout,
            cam_layout,
            blocks: model.conv_blocks(),
            classes,
            input_len: model.input_len(),
            input_size: (input.height, input.width),
            buffers,
            pipelines,
            dispatches,
            max_steps: plan.max_steps(),
            interactive_dispatches: plan.interactive_dispatches(),
            kernels,
        })
    }

    /// Copies normalised images (`Model::normalize` output, C·H·W each, back to back) into
    /// activation 0; returns how many images that is. wgpu orders the write before the
    /// next submission.
    pub fn write_inputs(&self, queue: &wgpu::Queue, normalised: &[f32]) -> Result<u32, GpuError> {
        if normalised.is_empty() || !normalised.len().is_multiple_of(self.input_len) {
            return Err(GpuError::InputLength {
                len: normalised.len(),
                image_len: self.input_len,
            });
        }
        let images = normalised.len() / self.input_len;
        let batch = u32::try_from(images).unwrap_or(u32::MAX);
        if batch > self.layout.max_batch {
            return Err(GpuError::BadBatch {
                batch,
                max_batch: self.layout.max_batch,
            });
        }
        queue.write_buffer(
            &self.buffers.activations,
            0,
            bytemuck::cast_slice(normalised),
        );
        Ok(batch)
    }

    /// Records one inference into `encoder`: forward, softmax, and (as requested) Grad-CAM
    /// and value ranges, in one compute pass with no readback in between. The target class
    /// reaches the shaders through a buffer copy recorded in the same encoder, so it is
    /// ordered with the dispatches; the block and the batch only choose what is recorded
    /// and how many workgroups run, so no uniform is ever rewritten.
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        request: &InferenceRequest,
    ) -> Result<(), GpuError> {
        self.record(encoder, request, None)
    }

    /// [`GpuNetwork::encode`] with every kernel timestamped by `timer`: inside one pass
    /// where the device can (`TIMESTAMP_QUERY_INSIDE_PASSES`), else a pass per kernel.
    /// Read the durations after submitting ([`KernelTimer::read_blocking`], or
    /// `start_map` / `try_take`).
    pub fn encode_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        request: &InferenceRequest,
        timer: &mut KernelTimer,
    ) -> Result<(), GpuError> {
        self.record(encoder, request, Some(timer))
    }

    /// The launches of one inference, in order.
    fn steps(&self, r: &Resolved) -> Vec<&Dispatch> {
        let d = &self.dispatches;
        let mut steps: Vec<&Dispatch> = d.forward.iter().collect();
        if let Some(block) = r.block {
            // Backward from the logits down to the block's output, then its Grad-CAM.
            steps.extend(d.backward[block].iter());
        }
        // A fused plan reduces the ranges in its forward walks (whether asked or not:
        // they cost less than a launch); others have a pass of their own.
        if r.value_ranges {
            steps.extend(d.value_range.as_ref());
        }
        steps
    }

    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        request: &InferenceRequest,
        timer: Option<&mut KernelTimer>,
    ) -> Result<(), GpuError> {
        let r = self.resolve(request)?;
        let steps = self.steps(&r);
        if let Some(timer) = &timer {
            timer.check_capacity(steps.len())?;
        }
        let b = &self.buffers;
        encoder.copy_buffer_to_buffer(&b.class_table, r.class_slot as u64 * 4, &b.request, 0, 4);
        match timer {
            None => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("cnnviz inference"),
                    timestamp_writes: None,
                });
                for step in steps {
                    step.record(&mut pass, &self.pipelines, r.batch);
                }
            }
            // One pass with a timestamp before and after every dispatch where the device
            // allows it: closest to the untimed recording.
            Some(timer) if timer.supports_inside_passes() => {
                timer.clear();
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("cnnviz timed inference"),
                    timestamp_writes: None,
                });
                for step in steps {
                    timer.begin_inside(&mut pass, step.label.clone(), step.kernel.name())?;
                    step.record(&mut pass, &self.pipelines, r.batch);
                    timer.end_inside(&mut pass);
                }
                drop(pass);
                timer.resolve(encoder);
            }
            // Else a pass per kernel, timestamped at its beginning and end.
            Some(timer) => {
                timer.clear();
                for step in steps {
                    let writes = timer.push(step.label.clone(), step.kernel.name())?;
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(&step.label),
                        timestamp_writes: Some(writes),
                    });
                    step.record(&mut pass, &self.pipelines, r.batch);
                }
                timer.resolve(encoder);
            }
        }
        Ok(())
    }

    /// Records the forward launches (softmax, argmax and gradient seed included) for
    /// `batch` images into `pass`, without the target-class copy that
    /// [`GpuNetwork::encode`] records first: the explanation methods' batched passes, whose
    /// target the first pass already resolved.
    pub(super) fn record_forward(&self, pass: &mut wgpu::ComputePass<'_>, batch: u32) {
        self.record_forward_prefix(pass, batch, self.dispatches.forward.len());
    }

    /// The first `launches` forward launches (in layer order, see
    /// [`GpuNetwork::forward_kernels`]): a forward pass that stops once the activation a
    /// caller needs is written (the feature visualisation of a conv channel).
    pub(super) fn record_forward_prefix(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        batch: u32,
        launches: usize,
    ) {
        for step in self.dispatches.forward.iter().take(launches) {
            step.record(pass, &self.pipelines, batch);
        }
    }

    /// Where every activation (and gradient) lives in the arenas.
    pub fn layout(&self) -> &ArenaLayout {
        &self.layout
    }

    /// Where Grad-CAM's outputs live in [`GpuNetwork::cam_buffer`].
    pub fn cam_layout(&self) -> &CamLayout {
        &self.cam_layout
    }

    /// The kernel variant this network was built with (the resolved option, never read
    /// again from the environment).
    pub fn kernel_variant(&self) -> KernelVariant {
        self.kernels
    }

    /// The label (`layer kernel`) of every forward launch, in order: which kernel each
    /// layer runs.
    pub fn forward_kernels(&self) -> Vec<&str> {
        self.dispatches
            .forward
            .iter()
            .map(|d| d.label.as_str())
            .collect()
    }

    pub fn max_batch(&self) -> u32 {
        self.layout.max_batch
    }

    pub fn conv_blocks(&self) -> &[ConvBlock] {
        &self.blocks
    }

    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// Dispatches of the default inference (Grad-CAM at the last block, value ranges): what
    /// the window records for each input.
    pub fn interactive_dispatches(&self) -> usize {
        self.interactive_dispatches
    }

    /// The most kernels one inference records; a [`KernelTimer`] this big always suffices.
    pub fn max_kernels_per_inference(&self) -> usize {
        self.max_steps
    }

    /// Every activation of the batch (STORAGE | COPY_SRC | COPY_DST), laid out by
    /// [`GpuNetwork::layout`]; a render pipeline on the same device may bind it read-only.
    pub fn activation_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.activations
    }

    /// d logit_target / d activation, same layout as the activations; valid from the
    /// logits down to the target block's output after a Grad-CAM inference.
    pub fn gradient_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.gradients
    }

    /// Channel weights, raw, normalised and upsampled maps, laid out by
    /// [`GpuNetwork::cam_layout`].
    pub fn cam_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.cam
    }

    /// `(min, max)` per image and activation, see [`ArenaLayout::range_offset`].
    pub fn value_range_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.ranges
    }

    /// `classes` floats per image.
    pub fn probabilities_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.probabilities
    }

    /// One `u32` class index per image.
    pub fn predicted_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.predicted
    }

    /// One `u32` per image: the class Grad-CAM explained.
    pub fn target_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.targets
    }

    /// The packed weights and biases (read-only storage).
    pub fn weight_buffer(&self) -> &wgpu::Buffer {
        &self.buffers.weights
    }
}

/// Runs `create` inside out-of-memory and validation error scopes, so wgpu's errors while
/// creating buffers, pipelines and bind groups come back as [`GpuError`] (naming `during`)
/// instead of wgpu's default panic.
pub(super) fn in_error_scopes<T>(
    device: &wgpu::Device,
    during: &str,
    create: impl FnOnce() -> Result<T, GpuError>,
) -> Result<T, GpuError> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let created = create();
    let validation = pollster::block_on(validation.pop());
    let oom = pollster::block_on(oom.pop());
    let created = created?;
    let during = during.to_string();
    if let Some(e) = oom {
        return Err(GpuError::OutOfMemory {
            during,
            message: e.to_string(),
        });
    }
    if let Some(e) = validation {
        return Err(GpuError::Validation {
            during,
            message: e.to_string(),
        });
    }
    Ok(created)
}

// The window shares one network between threads (render, UI); keep it Send + Sync.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GpuNetwork>();
    send_sync::<super::ProbabilityReadback>();
};
