//! Derives every kernel launch of a model from its layer table: which kernel, its uniform
//! values and its workgroup count per image. Pure data (no device), so the table can be
//! unit-tested and a new layer type touches one `match`, not a list of hand-registered
//! shaders.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
use super::conv_gemm;
use super::kernel_choice::{
    CONV_OC_BLOCK, CONV_TILE, DENSE_IMAGES, DENSE_K_CHUNK, DENSE_OUTPUTS, KernelVariant,
    LayerKernel, conv_chunk_channels,
};
use super::limits::LLVMPIPE_LOOP_LIMIT;
use super::params::{
    CamParams, ConvParams, DenseParams, EltwiseParams, NormaliseParams, PoolParams, RangeEntry,
    SoftmaxParams,
};
use super::pipelines::Kernel;
use crate::model::{LayerOp, Model, Shape};

/// Threads per workgroup in every shader.
pub const WORKGROUP: u32 = 64;

/// One kernel launch, before it has a bind group.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kernel: Kernel,
    /// `layer kernel`, e.g. `conv1 conv2d.forward`: what timings and debuggers show.
    pub label: String,
    /// The uniform's bytes (a `params` struct), empty for kernels without one.
    pub params: Vec<u8>,
    /// Workgroups per image (per block of images, see `images_per_group`).
    pub groups: u32,
    /// Images one workgroup covers: 1 for most kernels, whose dispatch y is the batch;
    /// the batch-tiled kernels dispatch ceil(batch / images_per_group) in y.
    pub images_per_group: u32,
}

impl Step {
    fn new<P: bytemuck::Pod>(kernel: Kernel, layer: &str, params: &P, groups: u32) -> Step {
        Step {
            kernel,
            label: format!("{layer} {}", kernel.name()),
            params: bytemuck::bytes_of(params).to_vec(),
            groups,
            images_per_group: 1,
        }
    }

    fn per_images(mut self, images: u32) -> Step {
        self.images_per_group = images;
        self
    }
}

impl Step {
    /// Upper bound of the loop iterations of one invocation, from the shader's loops
    /// (see [`KernelPlan::loop_iterations`]); reductions count their log2 steps.
    fn loop_iterations(&self) -> u64 {
        fn read<P: bytemuck::Pod>(bytes: &[u8]) -> P {
            bytemuck::pod_read_unaligned(bytes)
        }
        let square_plus = |k: u64| k * (1 + k);
        match self.kernel {
            Kernel::ConvForward => {
                let p: ConvParams = read(&self.params);
                u64::from(p.in_channels) * (1 + square_plus(p.kernel.into()))
            }
            Kernel::ConvForwardTiled | Kernel::ConvForwardReluTiled => {
                let p: ConvParams = read(&self.params);
                conv_tiled_loops(&p).unwrap_or(u64::MAX)
            }
            Kernel::ConvForwardGemm | Kernel::ConvForwardReluGemm => {
                conv_gemm::loop_iterations(&self.params)
            }
            Kernel::ConvBackwardInput => {
                let p: ConvParams = read(&self.params);
                let taps = u64::from(p.kernel.div_ceil(p.stride.max(1)));
                u64::from(p.out_channels) * (1 + square_plus(taps))
            }
            Kernel::PoolForward => {
                let p: PoolParams = read(&self.params);
                square_plus(p.kernel.into())
            }
            Kernel::PoolBackward => {
                let p: PoolParams = read(&self.params);
                let windows = u64::from(p.kernel.div_ceil(p.stride.max(1))) + 1;
                windows * (1 + windows * (1 + square_plus(p.kernel.into())))
            }
            Kernel::DenseForward => {
                let p: DenseParams = read(&self.params);
                u64::from(p.in_features.div_ceil(WORKGROUP)) + 6
            }
            Kernel::DenseForwardTiled | Kernel::DenseForwardReluTiled => {
                let p: DenseParams = read(&self.params);
                dense_tiled_loops(p.in_features, DENSE_IMAGES)
            }
            Kernel::DenseForwardSingleTiled | Kernel::DenseForwardReluSingleTiled => {
                let p: DenseParams = read(&self.params);
                dense_tiled_loops(p.in_features, 1)
            }
            Kernel::DenseBackwardInput | Kernel::DenseBackwardInputRelu => {
                let p: DenseParams = read(&self.params);
                p.out_features.into()
            }
            Kernel::Softmax => {
                let p: SoftmaxParams = read(&self.params);
                3 * u64::from(p.classes.div_ceil(WORKGROUP)) + 12
            }
            Kernel::CamChannelWeights => {
                let p: CamParams = read(&self.params);
                u64::from((p.height * p.width).div_ceil(256)) + 8
            }
            Kernel::CamWeightedMap => {
                let p: CamParams = read(&self.params);
                p.channels.into()
            }
            Kernel::Normalise => {
                let p: NormaliseParams = read(&self.params);
                2 * u64::from(p.len.div_ceil(256)) + 8
            }
            Kernel::ReluForward | Kernel::ReluBackward | Kernel::CamUpsample => 0,
            Kernel::ValueRange => 0, // needs the range table: see KernelPlan
        }
    }
}

/// Loop iterations of one invocation of `conv2d_tiled.wgsl` (`None`: the layer does not
/// fit it): per round of `chunk` input channels, the outer loop, staging the input patches
/// and the weights (64 invocations share each), and the taps of every staged channel.
fn conv_tiled_loops(p: &ConvParams) -> Option<u64> {
    let chunk = u64::from(conv_chunk_channels(p.in_channels, p.kernel, p.stride)?);
    let side = u64::from(CONV_TILE - 1) * u64::from(p.stride) + u64::from(p.kernel);
    let taps = u64::from(p.kernel) * u64::from(p.kernel);
    let in_channels = u64::from(p.in_channels);
    let per_tap_row = 1 + u64::from(p.kernel);
    let mut loops = 0;
    let mut c0 = 0;
    while c0 < in_channels {
        let count = chunk.min(in_channels - c0);
        loops += 1
            + (count * side * side).div_ceil(u64::from(WORKGROUP))
            + (count * taps * u64::from(CONV_OC_BLOCK / 4)).div_ceil(u64::from(WORKGROUP))
            + count * (1 + u64::from(p.kernel) * per_tap_row);
        c0 += chunk;
    }
    Some(loops)
}

/// Loop iterations of one invocation of `dense_tiled.wgsl`'s forward with blocks of
/// `images` images: per round of `K_CHUNK` inputs, the outer loop, staging (`images`
/// values per input, 64 invocations) and per input the loop over the images; then the
/// store loop.
fn dense_tiled_loops(in_features: u32, images: u32) -> u64 {
    let rounds = u64::from(in_features.div_ceil(DENSE_K_CHUNK));
    let staging = u64::from((DENSE_K_CHUNK * images).div_ceil(WORKGROUP));
    let per_round = 1 + staging + u64::from(DENSE_K_CHUNK) * (1 + u64::from(images));
    rounds * per_round + u64::from(images)
}

/// Every launch the network may record, and the data its fixed buffers start with.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelPlan {
    /// Which kernels the plan uses where there is a choice.
    pub variant: KernelVariant,
    /// Forward launches in layer order; flatten layers have none (their output aliases),
    /// nor does a ReLU that the tiled conv or dense kernel before it writes.
    pub forward: Vec<Step>,
    /// `backward[i]`: input gradient of layer `i`. `None` for flatten (which aliases), and
    /// for a ReLU whose input gradient the dense layer after it writes
    /// (`dense.backward_input_relu`; never when the ReLU's output is a Grad-CAM target, so
    /// a backward pass that stops there records exactly its own layers).
    pub backward: Vec<Option<Step>>,
    pub softmax: Step,
    /// Per conv block: channel weights, weighted map, normalise it, upsample, normalise.
    pub cam: Vec<Vec<Step>>,
    pub value_ranges: Step,
    /// Every weight and bias, packed in layer order.
    pub weights: Vec<f32>,
    /// Per activation: its region and floats per image, for the value-range kernel.
    pub range_table: Vec<RangeEntry>,
}

fn to_u32(value: impl TryInto<u32> + Copy + std::fmt::Display) -> Result<u32, GpuError> {
    value.try_into().map_err(|_| {
        GpuError::ModelTooLarge(format!("{value} does not fit the shaders' 32-bit indices"))
    })
}

fn groups_for(elements: usize) -> Result<u32, GpuError> {
    to_u32(elements.div_ceil(WORKGROUP as usize))
}

fn map_dims(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Map {
            channels,
            height,
            width,
        } => (channels, height, width),
        Shape::Vector { len } => (len, 1, 1),
    }
}

impl KernelPlan {
    /// The plan of `model` over `arena`, with the conv and dense kernels `variant` asks
    /// for (see `kernel_choice`). Only tests build a plan without per-layer choices.
    #[cfg(test)]
    pub fn new(
        model: &Model,
        arena: &ArenaLayout,
        cam: &CamLayout,
        variant: KernelVariant,
    ) -> Result<Self, GpuError> {
        Self::with_choices(model, arena, cam, variant, &[])
    }

    /// [`KernelPlan::new`] with a kernel chosen per layer (`choices[i]` for layer `i`, the
    /// tuner's measured choice); layers without one follow `variant`.
    pub fn with_choices(
        model: &Model,
        arena: &ArenaLayout,
        cam: &CamLayout,
        variant: KernelVariant,
        choices: &[Option<LayerKernel>],
    ) -> Result<Self, GpuError> {
        let mut weights: Vec<f32> = Vec::with_capacity(model.parameter_count());
        let mut forward = Vec::new();
        let mut backward: Vec<Option<Step>> = Vec::new();
        // Activations Grad-CAM may stop at: a fused backward step must not cross them.
        let targets: Vec<usize> = model
            .conv_blocks()
            .iter()
            .map(|b| b.output_layer + 1)
            .collect();
        let tiled = variant.prefers_tiled();
        // Set when the previous layer's kernel also wrote this ReLU's output.
        let mut relu_fused = false;
        for (i, layer) in model.layers.iter().enumerate() {
            let (input, output) = (&arena.slots[i], &arena.slots[i + 1]);
            let name = layer.plan.name.as_str();
            let (in_offset, out_offset) = (to_u32(input.offset)?, to_u32(output.offset)?);
            let (in_len, out_len) = (to_u32(input.len)?, to_u32(output.len)?);
            // This layer's kernel where there is a choice (`None`: the variant's rule).
            let choice = choices.get(i).copied().flatten().or(variant.layer_kernel());
            let fusing = choice.map_or(tiled, |c| c != LayerKernel::Direct);
            // The ReLU right after this layer, if any: the tiled kernels write its output too.
            let next_relu = match model.layers.get(i + 1) {
                Some(next) if fusing && next.plan.op == LayerOp::Relu => Some(&arena.slots[i + 2]),
                _ => None,
            };
            // Packs this layer's parameters; returns (weight offset, bias offset).
            let mut pack = || -> Result<(u32, u32), GpuError> {
                let p = layer.params.as_ref().ok_or_else(|| {
                    GpuError::ModelTooLarge(format!("layer `{name}` has no parameters"))
                })?;
                let w = to_u32(weights.len())?;
                weights.extend_from_slice(&p.weight);
                let b = to_u32(weights.len())?;
                weights.extend_from_slice(&p.bias);
                Ok((w, b))
            };
            let fuses_relu = std::mem::take(&mut relu_fused);
            let (f, b) = match layer.plan.op {
                LayerOp::Conv2d(g) => {
                    let (weight_offset, bias_offset) = pack()?;
                    let (_, ih, iw) = map_dims(layer.plan.input);
                    let (_, oh, ow) = map_dims(layer.plan.output);
                    let mut params = ConvParams {
                        in_offset,
                        out_offset,
                        in_len,
                        out_len,
                        in_channels: to_u32(g.in_channels)?,
                        in_height: to_u32(ih)?,
                        in_width: to_u32(iw)?,
                        out_channels: to_u32(g.out_channels)?,
                        out_height: to_u32(oh)?,
                        out_width: to_u32(ow)?,
                        kernel: to_u32(g.kernel)?,
                        stride: to_u32(g.stride)?,
                        padding: to_u32(g.padding)?,
                        weight_offset,
                        bias_offset,
                        relu_offset: 0,
                    };
                    let backward = Step::new(
                        Kernel::ConvBackwardInput,
                        name,
                        &params,
                        groups_for(input.len)?,
                    );
                    // Tiled where the layer fits the workgroup arrays and stays inside
                    // llvmpipe's loop limit (the direct kernel is refused past it anyway).
                    let fits = fusing
                        && conv_tiled_loops(&params).is_some_and(|l| l <= LLVMPIPE_LOOP_LIMIT);
                    let gemm = match (choice, &layer.params) {
                        (Some(LayerKernel::Gemm), Some(p)) => {
                            let mut with_relu = params;
                            if let Some(relu) = next_relu {
                                with_relu.relu_offset = to_u32(relu.offset)?;
                            }
                            conv_gemm::gemm_launch(&with_relu, &p.weight).filter(|l| {
                                conv_gemm::loop_iterations(&l.uniform) <= LLVMPIPE_LOOP_LIMIT
                            })
                        }
                        _ => None,
                    };
                    let forward = if let Some(gemm) = gemm {
                        let kernel = if next_relu.is_some() {
                            relu_fused = true;
                            Kernel::ConvForwardReluGemm
                        } else {
                            Kernel::ConvForwardGemm
                        };
                        Step {
                            kernel,
                            label: format!("{name} {}", kernel.name()),
                            params: gemm.uniform,
                            groups: gemm.groups,
                            images_per_group: 1,
                        }
                    } else if fits {
                        let tiles = params.out_height.div_ceil(CONV_TILE)
                            * params.out_width.div_ceil(CONV_TILE);
                        let groups = tiles
                            .checked_mul(params.out_channels.div_ceil(CONV_OC_BLOCK))
                            .ok_or_else(|| {
                                GpuError::ModelTooLarge(format!("`{name}` has too many tiles"))
                            })?;
                        let kernel = match next_relu {
                            Some(relu) => {
                                params.relu_offset = to_u32(relu.offset)?;
                                relu_fused = true;
                                Kernel::ConvForwardReluTiled
                            }
                            None => Kernel::ConvForwardTiled,
                        };
                        Step::new(kernel, name, &params, groups)
                    } else {
                        Step::new(Kernel::ConvForward, name, &params, groups_for(output.len)?)
                    };
                    (Some(forward), Some(backward))
                }
                LayerOp::Relu => {
                    let params = EltwiseParams {
                        in_offset,
                        out_offset,
                        len: out_len,
                        _pad: 0,
                    };
                    let groups = groups_for(output.len)?;
                    (
                        (!fuses_relu)
                            .then(|| Step::new(Kernel::ReluForward, name, &params, groups)),
                        Some(Step::new(Kernel::ReluBackward, name, &params, groups)),
                    )
                }
                LayerOp::MaxPool2d { kernel, stride } => {
                    let (c, ih, iw) = map_dims(layer.plan.input);
                    let (_, oh, ow) = map_dims(layer.plan.output);
                    let params = PoolParams {
                        in_offset,
                        out_offset,
                        in_len,
                        out_len,
                        channels: to_u32(c)?,
                        in_height: to_u32(ih)?,
                        in_width: to_u32(iw)?,
                        out_height: to_u32(oh)?,
                        out_width: to_u32(ow)?,
                        kernel: to_u32(kernel)?,
                        stride: to_u32(stride)?,
                        _pad: 0,
                    };
                    (
                        Some(Step::new(
                            Kernel::PoolForward,
                            name,
                            &params,
                            groups_for(output.len)?,
                        )),
                        Some(Step::new(
                            Kernel::PoolBackward,
                            name,
                            &params,
                            groups_for(input.len)?,
                        )),
                    )
                }
                LayerOp::Flatten => (None, None),
                LayerOp::Dense {
                    in_features,
                    out_features,
                } => {
                    let (weight_offset, bias_offset) = pack()?;
                    let mut params = DenseParams {
                        in_offset,
                        out_offset,
                        in_features: to_u32(in_features)?,
                        out_features: to_u32(out_features)?,
                        weight_offset,
                        bias_offset,
                        max_batch: arena.max_batch,
                        relu_offset: 0,
                    };
                    // A network that only ever runs one image gets the one-image block: a
                    // block of 8 would load 8 inputs per weight to use one.
                    let images = if arena.max_batch == 1 {
                        1
                    } else {
                        DENSE_IMAGES
                    };
                    // Auto keeps the direct kernel (a workgroup reduction per output) for
                    // one-image networks: on lavapipe it beat the one-image tiled kernel
                    // for fc1, 596 + 31 µs (with its separate ReLU) against 812 µs
                    // (`cnnviz bench --only kernels --batches 1`, both variants).
                    let dense_tiled = match (choice, variant) {
                        (Some(c), _) => c != LayerKernel::Direct,
                        (None, KernelVariant::Auto) => arena.max_batch > 1,
                        (None, other) => other.prefers_tiled(),
                    };
                    let fits = dense_tiled
                        && dense_tiled_loops(params.in_features, images) <= LLVMPIPE_LOOP_LIMIT;
                    let forward = if fits {
                        // DENSE_OUTPUTS outputs × `images` images per workgroup.
                        let groups = to_u32(out_features.div_ceil(DENSE_OUTPUTS as usize))?;
                        let mut fused = params;
                        let kernel = match (next_relu, images) {
                            (Some(relu), _) => {
                                fused.relu_offset = to_u32(relu.offset)?;
                                relu_fused = true;
                                if images == 1 {
                                    Kernel::DenseForwardReluSingleTiled
                                } else {
                                    Kernel::DenseForwardReluTiled
                                }
                            }
                            (None, 1) => Kernel::DenseForwardSingleTiled,
                            (None, _) => Kernel::DenseForwardTiled,
                        };
                        Step::new(kernel, name, &fused, groups).per_images(images)
                    } else {
                        // One workgroup per output feature (a reduction over the inputs).
                        Step::new(Kernel::DenseForward, name, &params, to_u32(out_features)?)
                    };
                    // The ReLU right before this layer: its backward rides along unless
                    // its output is where Grad-CAM may stop.
                    let relu_before = i
                        .checked_sub(1)
                        .filter(|&r| model.layers[r].plan.op == LayerOp::Relu)
                        .filter(|_| tiled && !targets.contains(&i));
                    let backward = match relu_before {
                        Some(r) => {
                            params.relu_offset = to_u32(arena.slots[r].offset)?;
                            backward[r] = None;
                            Step::new(
                                Kernel::DenseBackwardInputRelu,
                                name,
                                &params,
                                groups_for(in_features)?,
                            )
                        }
                        None => Step::new(
                            Kernel::DenseBackwardInput,
                            name,
                            &params,
                            groups_for(in_features)?,
                        ),
                    };
                    (Some(forward), Some(backward))
                }
            };
            forward.extend(f);
            backward.push(b);
        }

        let logits = arena.slots.last().expect("the input slot always exists");
        let softmax = Step::new(
            Kernel::Softmax,
            "logits",
            &SoftmaxParams {
                logits_offset: to_u32(logits.offset)?,
                classes: to_u32(model.num_classes())?,
                _pad0: 0,
                _pad1: 0,
            },
            1,
        );

        let input = model.architecture.input;
        let mut cam_steps = Vec::new();
        for block in model.conv_blocks() {
            let target = &arena.slots[block.output_layer + 1];
            let params = CamParams {
                act_offset: to_u32(target.offset)?,
                act_len: to_u32(target.len)?,
                channels: to_u32(block.channels)?,
                height: to_u32(block.height)?,
                width: to_u32(block.width)?,
                out_height: to_u32(input.height)?,
                out_width: to_u32(input.width)?,
                weights_offset: to_u32(cam.channel_weights.offset)?,
                weights_stride: to_u32(cam.channel_weights.stride)?,
                raw_offset: to_u32(cam.raw.offset)?,
                raw_stride: to_u32(cam.raw.stride)?,
                low_offset: to_u32(cam.low_res.offset)?,
                low_stride: to_u32(cam.low_res.stride)?,
                heat_offset: to_u32(cam.heatmap.offset)?,
                heat_stride: to_u32(cam.heatmap.stride)?,
                _pad: 0,
            };
            let name = block.name.as_str();
            let plane = block.height * block.width;
            let heat = input.height * input.width;
            let to_low_res = NormaliseParams {
                src_offset: params.raw_offset,
                src_stride: params.raw_stride,
                dst_offset: params.low_offset,
                dst_stride: params.low_stride,
                len: to_u32(plane)?,
                ..Default::default()
            };
            let heatmap_in_place = NormaliseParams {
                src_offset: params.heat_offset,
                src_stride: params.heat_stride,
                dst_offset: params.heat_offset,
                dst_stride: params.heat_stride,
                len: to_u32(heat)?,
                ..Default::default()
            };
            cam_steps.push(vec![
                Step::new(
                    Kernel::CamChannelWeights,
                    name,
                    &params,
                    to_u32(block.channels)?,
                ),
                Step::new(Kernel::CamWeightedMap, name, &params, groups_for(plane)?),
                Step::new(Kernel::Normalise, name, &to_low_res, 1),
                Step::new(Kernel::CamUpsample, name, &params, groups_for(heat)?),
                Step::new(Kernel::Normalise, name, &heatmap_in_place, 1),
            ]);
        }

        let range_table = arena
            .slots
            .iter()
            .map(|s| {
                Ok(RangeEntry {
                    offset: to_u32(s.offset)?,
                    len: to_u32(s.len)?,
                })
            })
            .collect::<Result<Vec<_>, GpuError>>()?;
        let value_ranges = Step {
            kernel: Kernel::ValueRange,
            label: format!("activations {}", Kernel::ValueRange.name()),
            params: Vec::new(),
            groups: to_u32(range_table.len())?,
            images_per_group: 1,
        };

        Ok(KernelPlan {
            variant,
            forward,
            backward,
            softmax,
            cam: cam_steps,
            value_ranges,
            weights,
            range_table,
        })
    }

    /// Every launch with (an upper bound of) the loop iterations one invocation runs,
    /// nested loops included. Mesa's llvmpipe silently ends a shader's loops after 65 535
    /// iterations, so [`super::GpuNetwork::new`] refuses plans that exceed that there.
    pub fn loop_iterations(&self) -> Vec<(&str, u64)> {
        let longest_activation = self.range_table.iter().map(|e| e.len).max().unwrap_or(0);
        self.steps()
            .into_iter()
            .map(|step| {
                let loops = match step.kernel {
                    Kernel::ValueRange => u64::from(longest_activation.div_ceil(256)) + 8,
                    _ => step.loop_iterations(),
                };
                (step.label.as_str(), loops)
            })
            .collect()
    }

    /// Every step once: forward, backward, softmax, Grad-CAM per block, value ranges.
    pub fn steps(&self) -> Vec<&Step> {
        self.forward
            .iter()
            .chain(self.backward.iter().flatten())
            .chain(std::iter::once(&self.softmax))
            .chain(self.cam.iter().flatten())
            .chain(std::iter::once(&self.value_ranges))
            .collect()
    }

    /// The most launches one inference records (all layers back to the first block).
    pub fn max_steps(&self) -> usize {
        let cam = self.cam.iter().map(Vec::len).max().unwrap_or(0);
        self.forward.len() + 1 + self.backward.iter().flatten().count() + cam + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::model::train::default_architecture;

    fn zero_model() -> Model {
        Model::filled(default_architecture(), || 0.0).expect("zero parameters fit")
    }

    #[test]
    fn the_plan_follows_the_layer_table() {
        let model = zero_model();
        let arena = ArenaLayout::new(&model, 4);
        let cam = CamLayout::new(&model, 4);
        let plan = KernelPlan::new(&model, &arena, &cam, KernelVariant::Direct).expect("plan");
        let layers = model.layers.len();
        let flattens = model
            .layers
            .iter()
            .filter(|l| l.plan.op == LayerOp::Flatten)
            .count();
        assert_eq!(plan.forward.len(), layers - flattens);
        assert_eq!(plan.backward.len(), layers);
        assert_eq!(
            plan.backward.iter().filter(|b| b.is_none()).count(),
            flattens
        );
        assert_eq!(plan.cam.len(), model.conv_blocks().len());
        assert_eq!(plan.weights.len(), model.parameter_count());
        assert_eq!(plan.range_table.len(), layers + 1);
        assert_eq!(plan.forward[0].label, "conv1 conv2d.forward");
        // conv1 writes 16×28×28 floats per image: 196 workgroups of 64.
        assert_eq!(
            plan.forward[0].groups,
            (16 * 28 * 28usize).div_ceil(64) as u32
        );
        // The shipped architecture stays well inside llvmpipe's loop limit.
        let (label, loops) = plan
            .loop_iterations()
            .into_iter()
            .max_by_key(|&(_, loops)| loops)
            .expect("steps");
        assert!(loops < 65_535 / 8, "{label}: {loops}");
        for step in plan.forward.iter().chain(plan.backward.iter().flatten()) {
            assert_eq!(step.params.len() % 16, 0, "{}", step.label);
        }
    }

    #[test]
    fn the_tiled_plan_fuses_relus_and_tiles_the_batch() {
        let model = zero_model();
        let arena = ArenaLayout::new(&model, 20);
        let cam = CamLayout::new(&model, 20);
        let plan = KernelPlan::new(&model, &arena, &cam, KernelVariant::Tiled).expect("plan");
        let labels: Vec<&str> = plan.forward.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "conv1 conv2d.forward_relu_tiled",
                "pool1 maxpool2d.forward",
                "conv2 conv2d.forward_relu_tiled",
                "pool2 maxpool2d.forward",
                "fc1 dense.forward_relu_tiled",
                "fc2 dense.forward_tiled",
            ]
        );
        // conv1: 28×28 outputs in 16×16 tiles (2 × 2), 16 channels in two blocks of 8.
        assert_eq!(plan.forward[0].groups, 8);
        // conv2: 14×14 in one tile, 32 channels in four blocks.
        assert_eq!(plan.forward[2].groups, 4);
        let fc1 = &plan.forward[4];
        assert_eq!((fc1.groups, fc1.images_per_group), (1, DENSE_IMAGES));
        assert_eq!(plan.forward[0].images_per_group, 1);
        // fc2's backward writes relu3's input gradient too; relu3 has no step of its own.
        let backward: Vec<Option<&str>> = plan
            .backward
            .iter()
            .map(|s| s.as_ref().map(|s| s.label.as_str()))
            .collect();
        let layers = model.layers.len();
        assert_eq!(backward[layers - 1], Some("fc2 dense.backward_input_relu"));
        assert_eq!(backward[layers - 2], None);
        // relu2's output is a Grad-CAM target: fc1 … pool2 stop there, relu2 keeps its own.
        assert!(backward.contains(&Some("relu2 relu.backward")));
        // Inside llvmpipe's loop limit with room to spare (the count is an upper bound: it
        // counts fc1's constant eight-image loop, which the driver unrolls).
        for (label, loops) in plan.loop_iterations() {
            assert!(loops <= LLVMPIPE_LOOP_LIMIT / 4, "{label}: {loops}");
        }
        for step in plan.steps() {
            assert_eq!(step.params.len() % 16, 0, "{}", step.label);
        }
    }

    #[test]
    fn loop_bounds_of_the_tiled_kernels_count_every_round() {
        // 16 channels of 3×3, stride 1: rounds of 6, 6 and 4 channels, patches of 18×18,
        // 18 vec4s of weights per channel.
        let p = ConvParams {
            in_channels: 16,
            kernel: 3,
            stride: 1,
            ..Default::default()
        };
        let round = |c: u64| 1 + (c * 324).div_ceil(64) + (c * 18).div_ceil(64) + c * 13;
        assert_eq!(conv_tiled_loops(&p), Some(round(6) + round(6) + round(4)));
        let too_big = ConvParams {
            kernel: 7,
            stride: 4,
            ..p
        };
        assert_eq!(conv_tiled_loops(&too_big), None);
        assert_eq!(dense_tiled_loops(1568, 8), 13 * (1 + 16 + 128 * 9) + 8);
        assert_eq!(dense_tiled_loops(1568, 1), 13 * (1 + 2 + 128 * 2) + 1);
    }
}
