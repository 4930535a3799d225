//! Every explanation method of [`crate::explain::Method`] on the GPU: [`GpuExplainer`].
//!
//! **Design (measured on llvmpipe, where a dispatch costs ~80 µs of hand-off).** One
//! [`GpuNetwork`] with a kernel per layer, sized for the largest batch any method needs
//! (IG steps, SmoothGrad samples, Score-CAM channels, occlusion patches, the
//! 2 · (faithfulness steps + 1) deletion/insertion inputs), serves every method: its
//! forward launches run every batch, and its per-layer backward steps
//! (`layer_plan::backward_layers`) are bound again here as three lists: down to each conv
//! block (the gradient G of the block's activations), down to the input, and down to the
//! input with guided ReLUs (`relu.backward_guided`). Grad-CAM's own steps (weights, map,
//! normalise, upsample, normalise) finish every CAM method. The rest is
//! `shaders/explain_*.wgsl`: the CAM weights and maps, EigenCAM, the batched input builders
//! (they write the batch straight into activation 0 from the input kept in the
//! explanation buffer), the reductions, the display map and the curves.
//!
//! One explanation is ONE submission with ONE readback: the input's forward pass resolves
//! the class on the GPU (the predicted one unless asked; copied into the network's
//! request word, so every later batch seeds the same class), then the method's passes,
//! then the faithfulness batch ranks the display map and runs its forward pass, and one
//! copy brings back logits, class, attribution, map and curves (plus the raw map of a CAM
//! method). The counterfactual negates the one-hot seed (`explain_attribution.negate_seed`)
//! and the scores of Score-CAM and occlusion.
//!
//! Why this shape: a separate small network per method (or a fused walk per method) would
//! compile its pipelines and hold its arena once per method; one network at the largest
//! batch costs 169 images of arenas (≈ 29 MB each for activations and gradients with the
//! shipped model) and every method shares its forward kernels, backward steps and Grad-CAM
//! kernels instead of near-copies. The one-image fused path is not used: the batched
//! methods need the per-layer kernels anyway, and the batch-1 methods cost 2–8 ms on them
//! (BENCHMARKS.md, "Explanation methods: time per method"), well inside the worker's
//! budget. No per-thread loop is long: maps and reductions are a thread per element or a
//! workgroup per channel, the ranking of the display map compares chunks of `RANK_CHUNK`
//! pixels, EigenCAM's K×K matrix is squared in one workgroup (K² / 256 entries per thread,
//! K terms each).
//!
//! Random numbers and quadrature nodes come from the CPU twin (SmoothGrad's noise from
//! `options.seed`, IG's Gauss–Legendre path) and are uploaded once, so both engines use the
//! same ones.

mod launches;
mod layout;

pub use launches::explain_kernels;
pub use layout::{ExplainLayout, RANK_CHUNK, Region, occlusion_positions};

use launches::{BlockLaunches, Launches};

use crate::explain::reference;
use crate::explain::{
    ExplainError, ExplainOptions, ExplainRequest, Explained, Explainer, Faithfulness, Family,
    Method,
};
use crate::gpu::dispatch::Dispatch;
use crate::gpu::limits::{self, LLVMPIPE_LOOP_LIMIT};
use crate::gpu::network::in_error_scopes;
use crate::gpu::pipelines::Kernel;
use crate::gpu::{GpuError, GpuNetwork, wait};
use crate::model::{ConvBlock, Model};

const F32: u64 = 4;

/// The GPU engine of the explanation methods. Holds clones of the device and queue, a
/// network of its own and every launch, made once in [`GpuExplainer::new`]; `explain`
/// only records, submits and reads back.
pub struct GpuExplainer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    network: GpuNetwork,
    launches: Launches,
    layout: ExplainLayout,
    options: ExplainOptions,
    blocks: Vec<ConvBlock>,
    /// The explanation buffer, laid out by `layout`.
    explain: wgpu::Buffer,
    /// MAP_READ: the `out` region, then the raw map of a CAM method.
    staging: wgpu::Buffer,
    input_len: usize,
    plane: usize,
    classes: usize,
    /// Why EigenCAM cannot run here, if it cannot: its mean and matrix kernels loop over a
    /// block's pixels in one invocation, past llvmpipe's loop limit for very large blocks.
    eigen_refusal: Option<String>,
}

/// Images the explanation methods run at once for `model` and `options`: what the
/// network is sized for (at least 2, so it takes the per-layer path).
pub fn batch_needed(model: &Model, options: &ExplainOptions, layout: &ExplainLayout) -> usize {
    let channels = model
        .conv_blocks()
        .iter()
        .map(|b| b.channels)
        .max()
        .unwrap_or(0);
    [
        2,
        options.ig_steps,
        options.smoothgrad_samples,
        channels,
        layout.occlusion_patches(),
        2 * (options.faithfulness_steps + 1),
    ]
    .into_iter()
    .max()
    .unwrap_or(2)
}

impl GpuExplainer {
    /// Builds the network, the buffers and every launch for `model` and `options`. Options
    /// that cannot be computed, and batches or buffers past the device's limits, are
    /// errors that say so (never a panic).
    ///
    /// The network's conv and dense layers run the default kernel choice
    /// ([`crate::gpu::NetworkOptions::default`]: `CNNVIZ_KERNELS`, else the rule). The
    /// tuner's measured choice was tried too: at the explainer's batch (169) it sped
    /// occlusion up 2× and slowed IG (batch 32) down 1.7×, so the rule stays.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        model: &Model,
        options: ExplainOptions,
    ) -> Result<GpuExplainer, GpuError> {
        Self::build(device, queue, model, options, |batch| {
            GpuNetwork::new(device, model, batch)
        })
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        model: &Model,
        options: ExplainOptions,
        network: impl FnOnce(u32) -> Result<GpuNetwork, GpuError>,
    ) -> Result<GpuExplainer, GpuError> {
        let layout = ExplainLayout::new(model, &options).map_err(GpuError::BadExplainOption)?;
        let limits = device.limits();
        let needed = batch_needed(model, &options, &layout);
        let (fits, stopper) = GpuNetwork::max_batch_for(model, &limits);
        let needed = u32::try_from(needed).unwrap_or(u32::MAX);
        if needed > fits {
            return Err(GpuError::BatchTooLarge {
                requested: needed,
                fits,
                reason: format!(
                    "the explanation methods run up to {needed} images at once (IG steps, \
                     SmoothGrad samples, Score-CAM channels, occlusion patches, faithfulness \
                     inputs) and {stopper} would exceed the device's limits; lower the options"
                ),
            });
        }
        let bytes = layout.total as u64 * F32;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(GpuError::ModelTooLarge(format!(
                "the explanation buffer needs {bytes} bytes; a storage binding holds {} \
                 (fewer SmoothGrad samples make it smaller)",
                limits.max_storage_buffer_binding_size
            )));
        }
        let network = network(needed)?;

        let max_plane = model
            .conv_blocks()
            .iter()
            .map(|b| b.height * b.width)
            .max()
            .unwrap_or(0);
        let (explain, staging, launches) =
            in_error_scopes(device, "creating the GPU explainer", || {
                let explain = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("explanation buffer"),
                    size: bytes.max(4),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let staging = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("explanation readback"),
                    size: (layout.out().len + max_plane) as u64 * F32,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let launches = Launches::new(device, model, &network, &layout, &options, &explain)?;
                Ok((explain, staging, launches))
            })?;

        // The constants every explanation reads: the blank canvas, IG's path, the noise.
        let write = |region: layout::Region, values: &[f64]| {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            queue.write_buffer(
                &explain,
                region.offset as u64 * F32,
                bytemuck::cast_slice(&values),
            );
        };
        write(layout.blank, &reference::blank_values(model));
        let (alphas, weights) = reference::quadrature::integrated_gradients_path(options.ig_steps);
        write(layout.ig, &[alphas, weights].concat());
        write(
            layout.noise,
            &reference::attribution::smoothgrad_noise(
                options.seed,
                options.smoothgrad_samples,
                model.input_len(),
                f64::from(options.smoothgrad_stdev),
            ),
        );
        let input = model.architecture.input;
        let eigen_refusal = limits::is_llvmpipe(&device.adapter_info())
            .then_some(max_plane as u64)
            .filter(|&plane| plane > LLVMPIPE_LOOP_LIMIT)
            .map(|plane| {
                format!(
                    "EigenCAM loops over a block's {plane} pixels per invocation, and Mesa's \
                     llvmpipe stops loops after {LLVMPIPE_LOOP_LIMIT} iterations; use a real \
                     GPU or a smaller block"
                )
            });
        Ok(GpuExplainer {
            device: device.clone(),
            queue: queue.clone(),
            network,
            launches,
            layout,
            options,
            blocks: model.conv_blocks(),
            explain,
            staging,
            input_len: model.input_len(),
            plane: input.height * input.width,
            classes: model.num_classes(),
            eigen_refusal,
        })
    }

    /// Images the network runs at once (see [`batch_needed`]).
    pub fn max_batch(&self) -> u32 {
        self.network.max_batch()
    }

    /// Activation `activation` (0: the input, `i + 1`: layer `i`'s output) of the first
    /// `images` images as the last explanation left it in the activation arena (`gradients`:
    /// the gradient arena): e.g. IG's scaled inputs and their gradients, Score-CAM's
    /// masked inputs' logits. Makes a staging buffer per call: a test and debugging aid.
    pub fn read_arena(
        &self,
        gradients: bool,
        activation: usize,
        images: u32,
    ) -> Result<Vec<Vec<f32>>, GpuError> {
        let slots = &self.network.layout.slots;
        let max_batch = self.network.max_batch();
        let Some(slot) = slots.get(activation) else {
            return Err(GpuError::ModelTooLarge(format!(
                "activation {activation} does not exist; the model has {}",
                slots.len()
            )));
        };
        if images == 0 || images > max_batch {
            return Err(GpuError::BadBatch {
                batch: images,
                max_batch,
            });
        }
        let b = &self.network.buffers;
        let arena = if gradients {
            &b.gradients
        } else {
            &b.activations
        };
        let floats = u64::from(images) * slot.len as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("explanation arena readback"),
            size: floats * F32,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(arena, slot.offset * F32, &staging, 0, floats * F32);
        self.queue.submit([encoder.finish()]);
        let bytes = wait::map_read(&self.device, &staging, 0..floats * F32)?;
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(values.chunks(slot.len).map(<[f32]>::to_vec).collect())
    }

    /// The request checked against the model: the block a method uses, if any.
    fn check(
        &self,
        input: &[f32],
        request: &ExplainRequest,
    ) -> Result<Option<usize>, ExplainError> {
        if input.len() != self.input_len {
            return Err(ExplainError::InputLength {
                len: input.len(),
                expected: self.input_len,
            });
        }
        if let Some(class) = request.class
            && class >= self.classes
        {
            return Err(ExplainError::BadClass {
                class,
                classes: self.classes,
            });
        }
        if request.method == Method::EigenCam
            && let Some(why) = &self.eigen_refusal
        {
            return Err(GpuError::ModelTooLarge(why.clone()).into());
        }
        let blocks = self.blocks.len();
        if !request.method.uses_block() {
            return Ok(None);
        }
        match request.block {
            _ if blocks == 0 => Err(ExplainError::NoConvBlock {
                method: request.method,
            }),
            Some(block) if block >= blocks => Err(ExplainError::BadBlock { block, blocks }),
            Some(block) => Ok(Some(block)),
            None => Ok(Some(blocks - 1)),
        }
    }

    /// Records one explanation into `encoder` (see the module doc for the passes).
    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        request: &ExplainRequest,
        block: Option<usize>,
    ) {
        let b = &self.network.buffers;
        let l = &self.layout;
        let launches = &self.launches.blocks[block.unwrap_or(0)];
        let class_slot = request.class.unwrap_or(self.classes);
        encoder.copy_buffer_to_buffer(&b.class_table, class_slot as u64 * 4, &b.request, 0, 4);
        self.pass(encoder, "explain: the input's forward pass", |pass| {
            self.network.record_forward(pass, 1)
        });
        // The class is resolved now: every later batch seeds it.
        encoder.copy_buffer_to_buffer(&b.targets, 0, &b.request, 0, 4);
        let ex = &self.explain;
        let at = |r: layout::Region| r.offset as u64;
        copy_floats(encoder, &b.targets, 0, ex, at(l.class), 1);
        let logits = self.network.layout.slots.last().expect("input slot").offset;
        copy_floats(
            encoder,
            &b.activations,
            logits,
            ex,
            at(l.logits),
            self.classes,
        );
        let block_slot = block.map(|i| &self.network.layout.slots[self.blocks[i].output_layer + 1]);
        if request.method == Method::ScoreCam
            && let Some(slot) = block_slot
        {
            copy_floats(
                encoder,
                &b.activations,
                slot.offset,
                ex,
                at(l.saved),
                slot.len,
            );
        }

        self.pass(encoder, request.method.name(), |pass| {
            self.record_method(pass, request, launches)
        });

        if request.method == Method::ScoreCam
            && let Some(slot) = block_slot
        {
            // Score-CAM's map weighs the input's own activations: put them back (the batch
            // overwrote image 0), then Grad-CAM's weighted map and the rest.
            copy_floats(
                encoder,
                ex,
                at(l.saved),
                &b.activations,
                slot.offset,
                slot.len,
            );
            self.pass(encoder, "score-cam map", |pass| {
                self.run(pass, &launches.grad_cam[1..2], 1);
                self.run(pass, launches.cam_tail(), 1);
            });
        }
        let cam = &self.network.cam_layout;
        if request.method.family() == Family::Cam {
            copy_floats(
                encoder,
                &b.cam,
                cam.heatmap.offset,
                ex,
                at(l.map),
                self.plane,
            );
        }
        if request.faithfulness {
            let points = self.options.faithfulness_steps + 1;
            self.pass(encoder, "deletion and insertion", |pass| {
                let rank = launches.kernel(Kernel::ExplainRankPartials);
                rank.record(pass, &self.launches.pipelines, l.rank_chunks as u32);
                let inputs = launches.kernel(Kernel::ExplainFaithfulnessInputs);
                inputs.record(pass, &self.launches.pipelines, 2 * points as u32);
                self.network.record_forward(pass, 2 * points as u32);
                self.one(pass, launches, Kernel::ExplainFaithfulnessCurves, 1);
            });
        }
        let out = l.out();
        copy_floats(encoder, ex, at(out), &self.staging, 0, out.len);
        if request.method.family() == Family::Cam
            && let Some(i) = block
        {
            let plane = self.blocks[i].height * self.blocks[i].width;
            let raw_at = out.len as u64;
            copy_floats(
                encoder,
                &b.cam,
                cam.raw.offset,
                &self.staging,
                raw_at,
                plane,
            );
        }
    }

    fn pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        body: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        body(&mut pass);
    }

    fn run(&self, pass: &mut wgpu::ComputePass<'_>, steps: &[Dispatch], batch: u32) {
        for step in steps {
            step.record(pass, &self.launches.pipelines, batch);
        }
    }

    fn one(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        launches: &BlockLaunches,
        kernel: Kernel,
        batch: u32,
    ) {
        launches
            .kernel(kernel)
            .record(pass, &self.launches.pipelines, batch);
    }

    /// Seeds the counterfactual (negated) logit where asked, then the backward steps.
    fn backward(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        launches: &BlockLaunches,
        request: &ExplainRequest,
        steps: &[Dispatch],
        batch: u32,
    ) {
        if request.counterfactual {
            self.one(pass, launches, Kernel::ExplainNegateSeed, batch);
        }
        self.run(pass, steps, batch);
    }

    /// The method's own launches, after the input's forward pass.
    fn record_method(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        request: &ExplainRequest,
        launches: &BlockLaunches,
    ) {
        use Kernel::*;
        let o = &self.options;
        let to_input = &self.launches.to_input;
        let guided = &self.launches.guided_to_input;
        let cam_tail = |pass: &mut wgpu::ComputePass<'_>| self.run(pass, launches.cam_tail(), 1);
        // A CAM method from A and G: G first, then `maps` (weights + map, or a map), then
        // normalise, upsample, normalise.
        let from_gradient = |pass: &mut wgpu::ComputePass<'_>, maps: &[&Dispatch]| {
            self.backward(pass, launches, request, &launches.to_block, 1);
            for d in maps {
                d.record(pass, &self.launches.pipelines, 1);
            }
            cam_tail(pass);
        };
        let k = |kernel| launches.kernel(kernel);
        let grad_cam = &launches.grad_cam;
        let display =
            |pass: &mut wgpu::ComputePass<'_>| self.one(pass, launches, ExplainDisplayMap, 1);
        match request.method {
            Method::GradCam => from_gradient(pass, &[&grad_cam[0], &grad_cam[1]]),
            Method::GradCamPlusPlus => {
                from_gradient(pass, &[k(ExplainPlusPlusWeights), &grad_cam[1]])
            }
            Method::XGradCam => from_gradient(pass, &[k(ExplainXGradWeights), &grad_cam[1]]),
            Method::HiResCam => from_gradient(pass, &[k(ExplainHiResMap)]),
            Method::LayerCam => from_gradient(pass, &[k(ExplainLayerMap)]),
            Method::GradCamElementWise => from_gradient(pass, &[k(ExplainElementwiseMap)]),
            Method::EigenCam => {
                for kernel in [
                    ExplainEigenMeans,
                    ExplainEigenMatrix,
                    ExplainEigenVector,
                    ExplainEigenProject,
                ] {
                    self.one(pass, launches, kernel, 1);
                }
                cam_tail(pass);
            }
            Method::ScoreCam => {
                let channels =
                    self.blocks[request.block.unwrap_or(self.blocks.len() - 1)].channels as u32;
                self.one(pass, launches, ExplainScoreMaskRange, 1);
                self.one(pass, launches, ExplainScoreInputs, channels);
                self.network.record_forward(pass, channels);
                self.one(pass, launches, ExplainScoreWeights, 1);
                // The map itself follows in a pass of its own (see `record`).
            }
            Method::Saliency | Method::InputXGradient | Method::GuidedBackprop => {
                let (steps, kernel) = match request.method {
                    Method::Saliency => (to_input, ExplainSaliency),
                    Method::InputXGradient => (to_input, ExplainInputXGradient),
                    _ => (guided, ExplainGuidedBackprop),
                };
                self.backward(pass, launches, request, steps, 1);
                self.one(pass, launches, kernel, 1);
                display(pass);
            }
            Method::GuidedGradCam => {
                // Grad-CAM's raw map (weights, then the weighted map after its relu), then
                // the guided pass from the same seed, then their product.
                self.backward(pass, launches, request, &launches.to_block, 1);
                self.run(pass, &grad_cam[..2], 1);
                self.run(pass, guided, 1);
                self.one(pass, launches, ExplainGuidedGradCam, 1);
                display(pass);
            }
            Method::IntegratedGradients | Method::SmoothGrad => {
                // A batch of inputs (IG's scaled copies, SmoothGrad's noisy ones), their
                // forward and backward passes, then the reduction over the batch.
                let (images, inputs, reduce) = match request.method {
                    Method::IntegratedGradients => (o.ig_steps, ExplainIgInputs, ExplainIgReduce),
                    _ => (
                        o.smoothgrad_samples,
                        ExplainNoiseInputs,
                        ExplainSmoothReduce,
                    ),
                };
                let images = images as u32;
                self.one(pass, launches, inputs, images);
                self.network.record_forward(pass, images);
                self.backward(pass, launches, request, to_input, images);
                self.one(pass, launches, reduce, 1);
                display(pass);
            }
            Method::Occlusion => {
                let patches = self.layout.occlusion_patches() as u32;
                self.one(pass, launches, ExplainOcclusionInputs, patches);
                self.network.record_forward(pass, patches);
                self.one(pass, launches, ExplainOcclusionReduce, 1);
                display(pass);
            }
        }
    }

    /// What came back, as an [`Explained`].
    fn unpack(&self, data: &[f32], request: &ExplainRequest, block: Option<usize>) -> Explained {
        let l = &self.layout;
        let slice = |r: layout::Region| data[r.offset..r.end()].to_vec();
        let class = data[l.class.offset].to_bits() as usize;
        let map = slice(l.map);
        let cam = request.method.family() == Family::Cam;
        let (raw, raw_height, raw_width) = match block.filter(|_| cam) {
            Some(i) => {
                let b = &self.blocks[i];
                let start = l.out().len;
                (
                    data[start..start + b.height * b.width].to_vec(),
                    b.height,
                    b.width,
                )
            }
            None => (Vec::new(), 0, 0),
        };
        let faithfulness = request.faithfulness.then(|| {
            let c = slice(l.curves);
            let points = self.options.faithfulness_steps + 1;
            Faithfulness {
                deletion: c[..points].to_vec(),
                insertion: c[points..2 * points].to_vec(),
                deletion_auc: c[2 * points],
                insertion_auc: c[2 * points + 1],
            }
        });
        Explained {
            method: request.method,
            class,
            counterfactual: request.counterfactual,
            block: block.filter(|_| request.method.uses_block()),
            logits: slice(l.logits),
            attribution: if cam {
                map.clone()
            } else {
                slice(l.attribution)
            },
            raw,
            raw_height,
            raw_width,
            map,
            faithfulness,
        }
    }
}

/// Copies `floats` f32s from float `from_at` of `from` to float `to_at` of `to`.
fn copy_floats(
    encoder: &mut wgpu::CommandEncoder,
    from: &wgpu::Buffer,
    from_at: u64,
    to: &wgpu::Buffer,
    to_at: u64,
    floats: usize,
) {
    encoder.copy_buffer_to_buffer(from, from_at * F32, to, to_at * F32, floats as u64 * F32);
}

impl Explainer for GpuExplainer {
    fn explain(
        &mut self,
        input: &[f32],
        request: &ExplainRequest,
    ) -> Result<Explained, ExplainError> {
        let block = self.check(input, request)?;
        self.network.write_inputs(&self.queue, input)?;
        let sign: f32 = if request.counterfactual { -1.0 } else { 1.0 };
        let at = |r: layout::Region| r.offset as u64 * F32;
        self.queue.write_buffer(
            &self.explain,
            at(self.layout.input),
            bytemuck::cast_slice(input),
        );
        self.queue.write_buffer(
            &self.explain,
            at(self.layout.sign),
            bytemuck::bytes_of(&sign),
        );
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(request.method.name()),
            });
        self.record(&mut encoder, request, block);
        self.queue.submit([encoder.finish()]);
        let bytes = wait::map_read(&self.device, &self.staging, 0..self.staging.size())?;
        let data: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(self.unpack(&data, request, block))
    }

    fn options(&self) -> &ExplainOptions {
        &self.options
    }
}

// The window runs an explainer on a worker thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<GpuExplainer>();
};
