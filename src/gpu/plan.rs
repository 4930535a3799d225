//! Derives every kernel launch of a model from its layer table: which kernel, its uniform
//! values and its workgroup count per image. Pure data (no device), so the table can be
//! unit-tested and a new layer type touches one `match`, not a list of hand-registered
//! shaders.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
use super::kernel_choice::{
    CONV_OC_BLOCK, CONV_TILE, DENSE_IMAGES, DENSE_K_CHUNK, DENSE_OUTPUTS, KernelVariant,
    conv_chunk_channels,
};
use super::limits::LLVMPIPE_LOOP_LIMIT;
use super::params::{
    CamParams, ConvBlockParams, ConvParams, DenseParams, EltwiseParams, FusedParams,
    NormaliseParams, PoolParams, RangeEntry, SoftmaxParams,
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
    pub(super) fn new<P: bytemuck::Pod>(
        kernel: Kernel,
        layer: &str,
        params: &P,
        groups: u32,
    ) -> Step {
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
        // The struct at the start of the uniform (the tiled conv's ConvBlockParams starts
        // with its ConvParams).
        fn read<P: bytemuck::Pod>(bytes: &[u8]) -> P {
            bytemuck::pod_read_unaligned(&bytes[..size_of::<P>()])
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
            Kernel::ConvForwardBlockTiled => {
                // The tiled conv, then the pool of 8 channels × 4 pixels and the reduction.
                let p: ConvParams = read(&self.params);
                conv_tiled_loops(&p).map_or(u64::MAX, |l| l + 8 * 5 + 6)
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
            Kernel::FusedForward | Kernel::FusedBackward => {
                super::fused_plan::walk_loops(self.kernel, &read::<FusedParams>(&self.params))
            }
        }
    }
}

/// Loop iterations of one invocation of `conv2d_tiled.wgsl` (`None`: the layer does not
/// fit it): per round of `chunk` input channels, the outer loop, staging the input patches
/// and the weights (64 invocations share each), and the taps of every staged channel.
pub(super) fn conv_tiled_loops(p: &ConvParams) -> Option<u64> {
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
pub(super) fn dense_tiled_loops(in_features: u32, images: u32) -> u64 {
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
    /// Forward launches in order, softmax (argmax, Grad-CAM target and gradient seed)
    /// last. Flatten layers have none (their output aliases), nor does a ReLU that the
    /// kernel before it writes; a fused walk covers many layers at once.
    pub forward: Vec<Step>,
    /// Per conv block: every launch from the logits down to the block's output, then the
    /// block's Grad-CAM.
    pub backward: Vec<Vec<Step>>,
    /// The separate value-range pass; `None` when the forward launches reduce every
    /// activation's range where they write it (the fused walks).
    pub value_ranges: Option<Step>,
    /// Every weight and bias in layer order, each tensor starting on a multiple of 4
    /// floats (zeros in between).
    pub weights: Vec<f32>,
    /// Per activation: its region and floats per image, for the value-range kernel.
    pub range_table: Vec<RangeEntry>,
    /// Floats past the ranges in the value-range buffer where conv block kernels leave
    /// their per-workgroup partials for the forward walk to reduce.
    pub range_partials: u64,
}

pub(super) fn to_u32(value: impl TryInto<u32> + Copy + std::fmt::Display) -> Result<u32, GpuError> {
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

/// A layer's uniform, the same for every kernel that implements it (unfused, tiled or
/// fused): offsets of its input and output regions, its shapes and its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum LayerUniform {
    Conv(ConvParams),
    Relu(EltwiseParams),
    Pool(PoolParams),
    Flatten,
    Dense(DenseParams),
}

/// Packs every layer's parameters and derives its uniform; returns both.
fn layer_uniforms(
    model: &Model,
    arena: &ArenaLayout,
) -> Result<(Vec<LayerUniform>, Vec<f32>), GpuError> {
    let mut weights: Vec<f32> = Vec::with_capacity(model.parameter_count());
    let mut uniforms = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let (input, output) = (&arena.slots[i], &arena.slots[i + 1]);
        let name = layer.plan.name.as_str();
        let (in_offset, out_offset) = (to_u32(input.offset)?, to_u32(output.offset)?);
        let (in_len, out_len) = (to_u32(input.len)?, to_u32(output.len)?);
        let mut pack = || -> Result<(u32, u32), GpuError> {
            let p = layer.params.as_ref().ok_or_else(|| {
                GpuError::ModelTooLarge(format!("layer `{name}` has no parameters"))
            })?;
            // Every weight and bias tensor starts on a multiple of 4 floats, so the fused
            // walks can read aligned rows as vec4s.
            let mut aligned = |values: &[f32]| {
                weights.resize(weights.len().next_multiple_of(4), 0.0);
                let at = to_u32(weights.len());
                weights.extend_from_slice(values);
                at
            };
            let w = aligned(&p.weight)?;
            let b = aligned(&p.bias)?;
            Ok((w, b))
        };
        let (c, ih, iw) = map_dims(layer.plan.input);
        let (_, oh, ow) = map_dims(layer.plan.output);
        uniforms.push(match layer.plan.op {
            LayerOp::Conv2d(g) => {
                let (weight_offset, bias_offset) = pack()?;
                LayerUniform::Conv(ConvParams {
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
                })
            }
            LayerOp::Relu => LayerUniform::Relu(EltwiseParams {
                in_offset,
                out_offset,
                len: out_len,
                _pad: 0,
            }),
            LayerOp::MaxPool2d { kernel, stride } => LayerUniform::Pool(PoolParams {
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
            }),
            LayerOp::Flatten => LayerUniform::Flatten,
            LayerOp::Dense {
                in_features,
                out_features,
            } => {
                let (weight_offset, bias_offset) = pack()?;
                LayerUniform::Dense(DenseParams {
                    in_offset,
                    out_offset,
                    in_features: to_u32(in_features)?,
                    out_features: to_u32(out_features)?,
                    weight_offset,
                    bias_offset,
                    max_batch: arena.max_batch,
                    relu_offset: 0,
                })
            }
        });
    }
    Ok((uniforms, weights))
}

/// What the plan's named stages read: the model, its layouts and every layer's uniform.
pub(super) struct PlanInputs<'a> {
    pub model: &'a Model,
    pub arena: &'a ArenaLayout,
    pub cam: &'a CamLayout,
    pub variant: KernelVariant,
    pub uniforms: Vec<LayerUniform>,
}

impl KernelPlan {
    /// The plan of `model` over `arena`, with the kernels `variant` asks for (see
    /// `kernel_choice`): the fused walks where the variant fuses, else a kernel per layer.
    /// Either way in named stages: forward, softmax head, backward per block, Grad-CAM,
    /// value ranges.
    pub fn new(
        model: &Model,
        arena: &ArenaLayout,
        cam: &CamLayout,
        variant: KernelVariant,
    ) -> Result<Self, GpuError> {
        let (uniforms, weights) = layer_uniforms(model, arena)?;
        let inputs = PlanInputs {
            model,
            arena,
            cam,
            variant,
            uniforms,
        };
        let range_table = range_table(arena)?;
        let blocks = model.conv_blocks();
        let mut range_partials = 0;
        let (forward, backward, value_ranges) = if variant.fuses(arena.max_batch) {
            let walks = super::fused_plan::forward_walks(&inputs)?;
            let (forward, ranges_reduced) = (walks.steps, walks.ranges_reduced);
            range_partials = walks.partial_floats;
            let backward = (0..blocks.len())
                .map(|b| super::fused_plan::backward_walks(&inputs, b))
                .collect::<Result<_, _>>()?;
            let ranges = (!ranges_reduced)
                .then(|| value_range_pass(&range_table))
                .transpose()?;
            (forward, backward, ranges)
        } else {
            let mut forward = forward_layers(&inputs)?;
            forward.push(softmax_head(&inputs)?);
            let per_layer = backward_layers(&inputs)?;
            let backward = blocks
                .iter()
                .enumerate()
                .map(|(b, block)| {
                    // Layers L-1 … output_layer + 1, from the logits down; flatten has none.
                    let mut steps: Vec<Step> = per_layer[block.output_layer + 1..]
                        .iter()
                        .rev()
                        .flatten()
                        .cloned()
                        .collect();
                    steps.extend(cam_steps(&inputs, b)?);
                    Ok(steps)
                })
                .collect::<Result<_, GpuError>>()?;
            (forward, backward, Some(value_range_pass(&range_table)?))
        };
        Ok(KernelPlan {
            variant,
            forward,
            backward,
            value_ranges,
            weights,
            range_table,
            range_partials,
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

    /// Every step once: forward, backward and Grad-CAM per block, value ranges.
    pub fn steps(&self) -> Vec<&Step> {
        self.forward
            .iter()
            .chain(self.backward.iter().flatten())
            .chain(self.value_ranges.iter())
            .collect()
    }

    /// The most launches one inference records (forward, the longest backward, ranges).
    pub fn max_steps(&self) -> usize {
        let backward = self.backward.iter().map(Vec::len).max().unwrap_or(0);
        self.forward.len() + backward + usize::from(self.value_ranges.is_some())
    }

    /// Launches of the default interactive inference (Grad-CAM at the last block, value
    /// ranges): what the window records per input.
    pub fn interactive_dispatches(&self) -> usize {
        let backward = self.backward.last().map_or(0, Vec::len);
        self.forward.len() + backward + usize::from(self.value_ranges.is_some())
    }
}

/// Activations Grad-CAM may stop at: a fused backward step must not cross them.
fn cam_targets(model: &Model) -> Vec<usize> {
    model
        .conv_blocks()
        .iter()
        .map(|b| b.output_layer + 1)
        .collect()
}

/// The conv forward launch of layer `name`: tiled where the layer fits the workgroup
/// arrays and stays inside llvmpipe's loop limit (writing the ReLU after it too when
/// `relu_offset` is given), else direct. Returns the step and whether it wrote the ReLU.
pub(super) fn conv_forward_step(
    name: &str,
    mut params: ConvParams,
    tiled: bool,
    relu_offset: Option<u32>,
) -> Result<(Step, bool), GpuError> {
    let fits = tiled && conv_tiled_loops(&params).is_some_and(|l| l <= LLVMPIPE_LOOP_LIMIT);
    if !fits {
        let groups = to_u32(params.out_len.div_ceil(WORKGROUP))?;
        return Ok((Step::new(Kernel::ConvForward, name, &params, groups), false));
    }
    let groups = conv_tiled_groups(name, &params)?;
    let kernel = match relu_offset {
        Some(relu) => {
            params.relu_offset = relu;
            Kernel::ConvForwardReluTiled
        }
        None => Kernel::ConvForwardTiled,
    };
    let block = ConvBlockParams {
        conv: params,
        ..Default::default()
    };
    Ok((
        Step::new(kernel, name, &block, groups),
        relu_offset.is_some(),
    ))
}

/// Workgroups per image of the tiled conv: 16×16-pixel tiles × blocks of 8 channels.
pub(super) fn conv_tiled_groups(name: &str, params: &ConvParams) -> Result<u32, GpuError> {
    let tiles = params.out_height.div_ceil(CONV_TILE) * params.out_width.div_ceil(CONV_TILE);
    tiles
        .checked_mul(params.out_channels.div_ceil(CONV_OC_BLOCK))
        .ok_or_else(|| GpuError::ModelTooLarge(format!("`{name}` has too many tiles")))
}

/// The dense forward launch: the batch-tiled GEMM where `tiled` and it fits the loop
/// limit (writing the ReLU after it when `relu_offset` is given), else one workgroup per
/// output. Returns the step and whether it wrote the ReLU.
pub(super) fn dense_forward_step(
    name: &str,
    params: DenseParams,
    tiled: bool,
    relu_offset: Option<u32>,
) -> Result<(Step, bool), GpuError> {
    // A network that only ever runs one image gets the one-image block: a block of 8
    // would load 8 inputs per weight to use one.
    let images = if params.max_batch == 1 {
        1
    } else {
        DENSE_IMAGES
    };
    if !(tiled && dense_tiled_loops(params.in_features, images) <= LLVMPIPE_LOOP_LIMIT) {
        // One workgroup per output feature (a reduction over the inputs).
        let groups = params.out_features;
        return Ok((
            Step::new(Kernel::DenseForward, name, &params, groups),
            false,
        ));
    }
    // DENSE_OUTPUTS outputs × `images` images per workgroup.
    let groups = params.out_features.div_ceil(DENSE_OUTPUTS);
    let mut fused = params;
    let kernel = match (relu_offset, images) {
        (Some(relu), _) => {
            fused.relu_offset = relu;
            if images == 1 {
                Kernel::DenseForwardReluSingleTiled
            } else {
                Kernel::DenseForwardReluTiled
            }
        }
        (None, 1) => Kernel::DenseForwardSingleTiled,
        (None, _) => Kernel::DenseForwardTiled,
    };
    Ok((
        Step::new(kernel, name, &fused, groups).per_images(images),
        relu_offset.is_some(),
    ))
}

/// The unfused forward launch of layer `i` (no ReLU fused): what a fused walk falls back
/// to for a layer too long for it. `None` for flatten.
pub(super) fn single_layer_forward(
    inputs: &PlanInputs<'_>,
    i: usize,
) -> Result<Option<Step>, GpuError> {
    let name = inputs.model.layers[i].plan.name.as_str();
    let tiled = inputs.variant.prefers_tiled();
    Ok(match inputs.uniforms[i] {
        LayerUniform::Conv(p) => Some(conv_forward_step(name, p, tiled, None)?.0),
        LayerUniform::Dense(p) => Some(dense_forward_step(name, p, false, None)?.0),
        LayerUniform::Relu(p) => Some(Step::new(
            Kernel::ReluForward,
            name,
            &p,
            groups_for(p.len as usize)?,
        )),
        LayerUniform::Pool(p) => Some(Step::new(
            Kernel::PoolForward,
            name,
            &p,
            groups_for(p.out_len as usize)?,
        )),
        LayerUniform::Flatten => None,
    })
}

/// Stage 1 of the per-layer plan: every forward launch in layer order, with the tiled
/// kernels writing the ReLU after them where the variant prefers tiles.
fn forward_layers(inputs: &PlanInputs<'_>) -> Result<Vec<Step>, GpuError> {
    let (model, arena) = (inputs.model, inputs.arena);
    let tiled = inputs.variant.prefers_tiled();
    // Auto keeps the direct dense kernel (a workgroup reduction per output) for one-image
    // networks: on lavapipe it beat the one-image tiled kernel for fc1, 596 + 31 µs (with
    // its separate ReLU) against 812 µs (`cnnviz bench --only kernels --batches 1`).
    let dense_tiled = match inputs.variant {
        KernelVariant::Auto => arena.max_batch > 1,
        other => other.prefers_tiled(),
    };
    let mut steps = Vec::new();
    // Set when the previous layer's kernel also wrote this ReLU's output.
    let mut relu_written = false;
    for (i, layer) in model.layers.iter().enumerate() {
        let name = layer.plan.name.as_str();
        // The ReLU right after this layer, if any: the tiled kernels write its output too.
        let next_relu = match model.layers.get(i + 1) {
            Some(next) if tiled && next.plan.op == LayerOp::Relu => {
                Some(to_u32(arena.slots[i + 2].offset)?)
            }
            _ => None,
        };
        let already_written = std::mem::take(&mut relu_written);
        let step = match inputs.uniforms[i] {
            LayerUniform::Conv(p) => {
                let (step, relu) = conv_forward_step(name, p, tiled, next_relu)?;
                relu_written = relu;
                Some(step)
            }
            LayerUniform::Dense(p) => {
                let (step, relu) = dense_forward_step(name, p, dense_tiled, next_relu)?;
                relu_written = relu;
                Some(step)
            }
            LayerUniform::Relu(_) if already_written => None,
            _ => single_layer_forward(inputs, i)?,
        };
        steps.extend(step);
    }
    Ok(steps)
}

/// Stage 2: softmax, argmax, the Grad-CAM target and the one-hot gradient seed.
fn softmax_head(inputs: &PlanInputs<'_>) -> Result<Step, GpuError> {
    Ok(Step::new(
        Kernel::Softmax,
        "logits",
        &softmax_params(inputs)?,
        1,
    ))
}

pub(super) fn softmax_params(inputs: &PlanInputs<'_>) -> Result<SoftmaxParams, GpuError> {
    let logits = inputs
        .arena
        .slots
        .last()
        .expect("the input slot always exists");
    Ok(SoftmaxParams {
        logits_offset: to_u32(logits.offset)?,
        classes: to_u32(inputs.model.num_classes())?,
        _pad0: 0,
        _pad1: 0,
    })
}

/// The unfused input-gradient launch of layer `i`; `None` for flatten (it aliases).
pub(super) fn single_layer_backward(
    inputs: &PlanInputs<'_>,
    i: usize,
) -> Result<Option<Step>, GpuError> {
    let name = inputs.model.layers[i].plan.name.as_str();
    Ok(match inputs.uniforms[i] {
        LayerUniform::Conv(p) => Some(Step::new(
            Kernel::ConvBackwardInput,
            name,
            &p,
            groups_for(p.in_len as usize)?,
        )),
        LayerUniform::Relu(p) => Some(Step::new(
            Kernel::ReluBackward,
            name,
            &p,
            groups_for(p.len as usize)?,
        )),
        LayerUniform::Pool(p) => Some(Step::new(
            Kernel::PoolBackward,
            name,
            &p,
            groups_for(p.in_len as usize)?,
        )),
        LayerUniform::Dense(p) => Some(Step::new(
            Kernel::DenseBackwardInput,
            name,
            &p,
            groups_for(p.in_features as usize)?,
        )),
        LayerUniform::Flatten => None,
    })
}

/// Stage 3 of the per-layer plan: `backward[i]` is the input gradient of layer `i`.
/// `None` for flatten, and for a ReLU whose input gradient the dense layer after it writes
/// (`dense.backward_input_relu`; never when the ReLU's output is a Grad-CAM target, so a
/// backward pass that stops there records exactly its own layers).
fn backward_layers(inputs: &PlanInputs<'_>) -> Result<Vec<Option<Step>>, GpuError> {
    let model = inputs.model;
    let targets = cam_targets(model);
    let tiled = inputs.variant.prefers_tiled();
    let mut backward: Vec<Option<Step>> = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let relu_before = i
            .checked_sub(1)
            .filter(|&r| model.layers[r].plan.op == LayerOp::Relu)
            .filter(|_| tiled && !targets.contains(&i));
        let step = match (inputs.uniforms[i], relu_before) {
            (LayerUniform::Dense(mut p), Some(r)) => {
                p.relu_offset = to_u32(inputs.arena.slots[r].offset)?;
                backward[r] = None;
                Some(Step::new(
                    Kernel::DenseBackwardInputRelu,
                    &layer.plan.name,
                    &p,
                    groups_for(p.in_features as usize)?,
                ))
            }
            _ => single_layer_backward(inputs, i)?,
        };
        backward.push(step);
    }
    Ok(backward)
}

/// The Grad-CAM uniform of block `block`.
pub(super) fn cam_params(inputs: &PlanInputs<'_>, block: usize) -> Result<CamParams, GpuError> {
    let b = &inputs.model.conv_blocks()[block];
    let target = &inputs.arena.slots[b.output_layer + 1];
    let input = inputs.model.architecture.input;
    let cam = inputs.cam;
    Ok(CamParams {
        act_offset: to_u32(target.offset)?,
        act_len: to_u32(target.len)?,
        channels: to_u32(b.channels)?,
        height: to_u32(b.height)?,
        width: to_u32(b.width)?,
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
    })
}

/// Stage 4 of the per-layer plan: the Grad-CAM launches of block `block` (channel
/// weights, weighted map, normalise it, upsample, normalise).
pub(super) fn cam_steps(inputs: &PlanInputs<'_>, block: usize) -> Result<Vec<Step>, GpuError> {
    let params = cam_params(inputs, block)?;
    let b = &inputs.model.conv_blocks()[block];
    let name = b.name.as_str();
    let plane = b.height * b.width;
    let input = inputs.model.architecture.input;
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
    Ok(vec![
        Step::new(
            Kernel::CamChannelWeights,
            name,
            &params,
            to_u32(b.channels)?,
        ),
        Step::new(Kernel::CamWeightedMap, name, &params, groups_for(plane)?),
        Step::new(Kernel::Normalise, name, &to_low_res, 1),
        Step::new(Kernel::CamUpsample, name, &params, groups_for(heat)?),
        Step::new(Kernel::Normalise, name, &heatmap_in_place, 1),
    ])
}

/// Region and floats per image of every activation.
fn range_table(arena: &ArenaLayout) -> Result<Vec<RangeEntry>, GpuError> {
    arena
        .slots
        .iter()
        .map(|s| {
            Ok(RangeEntry {
                offset: to_u32(s.offset)?,
                len: to_u32(s.len)?,
            })
        })
        .collect()
}

/// Stage 5 of the per-layer plan: one pass over the arena for every activation's range.
fn value_range_pass(table: &[RangeEntry]) -> Result<Step, GpuError> {
    Ok(Step {
        kernel: Kernel::ValueRange,
        label: format!("activations {}", Kernel::ValueRange.name()),
        params: Vec::new(),
        groups: to_u32(table.len())?,
        images_per_group: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::model::train::default_architecture;

    fn zero_model() -> Model {
        Model::filled(default_architecture(), || 0.0).expect("zero parameters fit")
    }

    fn plan(max_batch: u32, variant: KernelVariant) -> (Model, KernelPlan) {
        let model = zero_model();
        let arena = ArenaLayout::new(&model, max_batch);
        let cam = CamLayout::new(&model, max_batch);
        let plan = KernelPlan::new(&model, &arena, &cam, variant).expect("plan");
        (model, plan)
    }

    fn labels(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.label.as_str()).collect()
    }

    #[test]
    fn the_plan_follows_the_layer_table() {
        let (model, plan) = plan(4, KernelVariant::Direct);
        let layers = model.layers.len();
        let flattens = model
            .layers
            .iter()
            .filter(|l| l.plan.op == LayerOp::Flatten)
            .count();
        // A launch per layer but flatten, then softmax.
        assert_eq!(plan.forward.len(), layers - flattens + 1);
        assert_eq!(plan.forward.last().map(|s| s.kernel), Some(Kernel::Softmax));
        assert_eq!(plan.backward.len(), model.conv_blocks().len());
        // Block 0 (relu1's output): every layer after relu1 but flatten, then five CAM steps.
        let block0 = model.conv_blocks()[0].output_layer;
        let below = model.layers[block0 + 1..]
            .iter()
            .filter(|l| l.plan.op != LayerOp::Flatten)
            .count();
        assert_eq!(plan.backward[0].len(), below + 5);
        assert_eq!(plan.backward[0][0].label, "fc2 dense.backward_input");
        assert!(plan.value_ranges.is_some());
        // Every tensor, each padded to start on a multiple of 4 floats.
        assert!(plan.weights.len() >= model.parameter_count());
        assert!(plan.weights.len() < model.parameter_count() + 4 * 2 * layers);
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
        for step in plan.steps() {
            assert_eq!(step.params.len() % 16, 0, "{}", step.label);
        }
    }

    #[test]
    fn the_tiled_plan_fuses_relus_and_tiles_the_batch() {
        let (model, plan) = plan(20, KernelVariant::Tiled);
        assert_eq!(
            labels(&plan.forward),
            [
                "conv1 conv2d.forward_relu_tiled",
                "pool1 maxpool2d.forward",
                "conv2 conv2d.forward_relu_tiled",
                "pool2 maxpool2d.forward",
                "fc1 dense.forward_relu_tiled",
                "fc2 dense.forward_tiled",
                "logits softmax.main",
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
        // relu2's output is a Grad-CAM target: fc1 … pool2 stop there, relu2 keeps its own.
        let last = model.conv_blocks().len() - 1;
        assert_eq!(
            labels(&plan.backward[last])[..3],
            [
                "fc2 dense.backward_input_relu",
                "fc1 dense.backward_input",
                "pool2 maxpool2d.backward",
            ]
        );
        assert!(labels(&plan.backward[0]).contains(&"relu2 relu.backward"));
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
    fn a_one_image_network_runs_conv_blocks_and_walks() {
        let (model, plan) = plan(1, KernelVariant::Auto);
        // conv + ReLU + 2×2 pool per block kernel; one walk for the value ranges (from the
        // blocks' partials), the dense head and softmax.
        assert_eq!(
            labels(&plan.forward),
            [
                "conv1 conv2d.forward_block_tiled",
                "conv2 conv2d.forward_block_tiled",
                "input..logits fused.forward",
            ]
        );
        // Every activation's range is reduced: no separate pass.
        assert!(plan.value_ranges.is_none());
        // Partials: 8 workgroups for conv1, 4 for conv2, 6 floats each.
        assert_eq!(plan.range_partials, (8 + 4) * 6);
        for backward in &plan.backward {
            assert_eq!(backward.len(), 1);
            assert_eq!(backward[0].kernel, Kernel::FusedBackward);
        }
        assert_eq!(plan.interactive_dispatches(), 4);
        assert_eq!(plan.max_steps(), 4);
        // The fully fused variant: one forward walk, one backward walk.
        let (_, fused) = plan_of(&model, KernelVariant::Fused);
        assert_eq!(labels(&fused.forward), ["input..logits fused.forward"]);
        assert_eq!(fused.interactive_dispatches(), 2);
        for (label, loops) in fused.loop_iterations() {
            assert!(loops <= LLVMPIPE_LOOP_LIMIT, "{label}: {loops}");
        }
    }

    fn plan_of(model: &Model, variant: KernelVariant) -> (ArenaLayout, KernelPlan) {
        let arena = ArenaLayout::new(model, 1);
        let cam = CamLayout::new(model, 1);
        let plan = KernelPlan::new(model, &arena, &cam, variant).expect("plan");
        (arena, plan)
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
