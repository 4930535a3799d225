//! The per-layer plan's stages and what the fused plan shares with it: every layer's
//! uniform (its regions, shapes and packed weights), and one launch per layer and direction
//! (direct or tiled kernels, a ReLU fused where the tiled kernel writes it), the softmax
//! head, the Grad-CAM launches and the value-range pass. `plan` puts them together.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
use super::conv_gemm;
use super::kernel_choice::{
    CONV_OC_BLOCK, CONV_TILE, DENSE_IMAGES, DENSE_OUTPUTS, KernelVariant, LayerKernel,
};
use super::limits::LLVMPIPE_LOOP_LIMIT;
use super::params::{
    CamParams, ConvBlockParams, ConvParams, DenseParams, EltwiseParams, NormaliseParams,
    PointwiseOp, PointwiseParams, PoolMode, PoolParams, RangeEntry, SoftmaxParams,
};
use super::pipelines::Kernel;
use super::plan::{Step, WORKGROUP, conv_tiled_loops, dense_tiled_loops, groups_for, to_u32};
use crate::model::{LayerOp, Model};

/// A layer's uniform, the same for every kernel that implements it (unfused, tiled or
/// fused): offsets of its input and output regions, its shapes and its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum LayerUniform {
    Conv(ConvParams),
    Relu(EltwiseParams),
    /// Leaky ReLU, sigmoid, tanh and batch norm (its folded scale and shift packed with
    /// the weights).
    Pointwise(PointwiseParams),
    /// Max, average and global average pools.
    Pool(PoolParams),
    /// Flatten and dropout: the output aliases the input's region (see `arena`); no launch.
    Alias,
    Dense(DenseParams),
}

/// Packs every layer's parameters and derives its uniform; returns both.
pub(super) fn layer_uniforms(
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
        let params = || {
            layer
                .params
                .as_ref()
                .ok_or_else(|| GpuError::ModelTooLarge(format!("layer `{name}` has no parameters")))
        };
        // Every tensor starts on a multiple of 4 floats, so the fused walks can read
        // aligned rows as vec4s.
        let mut pack = |first: &[f32], second: &[f32]| -> Result<(u32, u32), GpuError> {
            let mut aligned = |values: &[f32]| {
                weights.resize(weights.len().next_multiple_of(4), 0.0);
                let at = to_u32(weights.len());
                weights.extend_from_slice(values);
                at
            };
            Ok((aligned(first)?, aligned(second)?))
        };
        let (c, ih, iw) = layer.plan.input.chw();
        let (_, oh, ow) = layer.plan.output.chw();
        let plane = to_u32(ih * iw)?;
        let pointwise = |op: PointwiseOp, slope: f32| PointwiseParams {
            in_offset,
            out_offset,
            len: out_len,
            op: op as u32,
            plane,
            slope: slope.to_bits(),
            ..Default::default()
        };
        let pool = PoolParams {
            in_offset,
            out_offset,
            in_len,
            out_len,
            channels: to_u32(c)?,
            in_height: to_u32(ih)?,
            in_width: to_u32(iw)?,
            out_height: to_u32(oh)?,
            out_width: to_u32(ow)?,
            ..Default::default()
        };
        uniforms.push(match layer.plan.op {
            LayerOp::Conv2d(g) => {
                let p = params()?;
                let (weight_offset, bias_offset) = pack(&p.weight, &p.bias)?;
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
            LayerOp::LeakyRelu { negative_slope } => {
                LayerUniform::Pointwise(pointwise(PointwiseOp::LeakyRelu, negative_slope))
            }
            LayerOp::Sigmoid => LayerUniform::Pointwise(pointwise(PointwiseOp::Sigmoid, 0.0)),
            LayerOp::Tanh => LayerUniform::Pointwise(pointwise(PointwiseOp::Tanh, 0.0)),
            LayerOp::BatchNorm { channels, eps } => {
                let p = params()?;
                let (scale, shift) = p.folded_batch_norm(eps);
                if scale.len() != channels || shift.len() != channels {
                    return Err(GpuError::ModelTooLarge(format!(
                        "batch norm `{name}` lacks its running statistics"
                    )));
                }
                let (scale_offset, shift_offset) = pack(&scale, &shift)?;
                LayerUniform::Pointwise(PointwiseParams {
                    scale_offset,
                    shift_offset,
                    ..pointwise(PointwiseOp::Affine, 0.0)
                })
            }
            LayerOp::MaxPool2d { kernel, stride } => LayerUniform::Pool(PoolParams {
                kernel: to_u32(kernel)?,
                stride: to_u32(stride)?,
                ..pool
            }),
            LayerOp::AvgPool2d(g) => LayerUniform::Pool(PoolParams {
                kernel: to_u32(g.kernel)?,
                stride: to_u32(g.stride)?,
                padding: to_u32(g.padding)?,
                mode: if g.count_include_pad {
                    PoolMode::AverageWithPadding
                } else {
                    PoolMode::Average
                } as u32,
                ..pool
            }),
            LayerOp::GlobalAvgPool => LayerUniform::Pool(PoolParams {
                mode: PoolMode::GlobalAverage as u32,
                ..pool
            }),
            LayerOp::Flatten | LayerOp::Dropout => LayerUniform::Alias,
            LayerOp::Dense {
                in_features,
                out_features,
            } => {
                let p = params()?;
                let (weight_offset, bias_offset) = pack(&p.weight, &p.bias)?;
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
    /// The tuner's kernel per layer (`choices[i]` for layer `i`); a layer without one
    /// follows `variant`. In the fused path only a conv's `Gemm` counts (the gemm conv
    /// instead of the conv block kernel).
    pub choices: &'a [Option<LayerKernel>],
    pub uniforms: Vec<LayerUniform>,
}

impl PlanInputs<'_> {
    /// Layer `i`'s kernel where there is a choice (`None`: the variant's rule).
    pub(super) fn layer_kernel(&self, i: usize) -> Option<LayerKernel> {
        self.choices
            .get(i)
            .copied()
            .flatten()
            .or(self.variant.layer_kernel())
    }
}

/// Activations Grad-CAM may stop at: a fused backward step must not cross them.
pub(super) fn cam_targets(model: &Model) -> Vec<usize> {
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
/// to for a layer too long for it. `None` for flatten and dropout (they alias).
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
        LayerUniform::Pointwise(p) => Some(Step::new(
            Kernel::PointwiseForward,
            name,
            &p,
            groups_for(p.len as usize)?,
        )),
        LayerUniform::Pool(p) => {
            let kernel = match p.mode {
                m if m == PoolMode::Max as u32 => Kernel::PoolForward,
                _ => Kernel::AvgPoolForward,
            };
            Some(Step::new(kernel, name, &p, groups_for(p.out_len as usize)?))
        }
        LayerUniform::Alias => None,
    })
}

/// Stage 1 of the per-layer plan: every forward launch in layer order, each conv and dense
/// layer with its chosen kernel (the tuner's, else the variant's rule), the tiled and gemm
/// kernels writing the ReLU after them.
pub(super) fn forward_layers(inputs: &PlanInputs<'_>) -> Result<Vec<Step>, GpuError> {
    let (model, arena) = (inputs.model, inputs.arena);
    let tiled = inputs.variant.prefers_tiled();
    let mut steps = Vec::new();
    // Set when the previous layer's kernel also wrote this ReLU's output.
    let mut relu_written = false;
    for (i, layer) in model.layers.iter().enumerate() {
        let name = layer.plan.name.as_str();
        let choice = inputs.layer_kernel(i);
        let fusing = choice.map_or(tiled, |c| c != LayerKernel::Direct);
        // The ReLU right after this layer, if any: the tiled kernels write its output too.
        let next_relu = match model.layers.get(i + 1) {
            Some(next) if fusing && next.plan.op == LayerOp::Relu => {
                Some(to_u32(arena.slots[i + 2].offset)?)
            }
            _ => None,
        };
        let already_written = std::mem::take(&mut relu_written);
        let step = match inputs.uniforms[i] {
            LayerUniform::Conv(p) => {
                let gemm = match (choice, &layer.params) {
                    (Some(LayerKernel::Gemm), Some(params)) => {
                        conv_gemm_step(name, p, &params.weight, next_relu)?
                    }
                    _ => None,
                };
                let (step, relu) = match gemm {
                    Some(gemm) => gemm,
                    None => conv_forward_step(name, p, fusing, next_relu)?,
                };
                relu_written = relu;
                Some(step)
            }
            LayerUniform::Dense(p) => {
                // Auto without a measured choice keeps the direct dense kernel (a workgroup
                // reduction per output) for one-image networks: on lavapipe it beat the
                // one-image tiled kernel for fc1 (`cnnviz bench --only kernels --batches 1`).
                let dense_tiled = match (choice, inputs.variant) {
                    (Some(c), _) => c != LayerKernel::Direct,
                    (None, KernelVariant::Auto) => arena.max_batch > 1,
                    (None, other) => other.prefers_tiled(),
                };
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

/// The batched implicit-GEMM launch of a conv layer (writing the ReLU after it when
/// `relu_offset` is given), or `None` when its repacked weights do not fit the uniform or
/// it would pass llvmpipe's loop limit (the layer then runs another kernel).
pub(super) fn conv_gemm_step(
    name: &str,
    mut params: ConvParams,
    weight: &[f32],
    relu_offset: Option<u32>,
) -> Result<Option<(Step, bool)>, GpuError> {
    if let Some(relu) = relu_offset {
        params.relu_offset = relu;
    }
    let Some(launch) = conv_gemm::gemm_launch(&params, weight)
        .filter(|l| conv_gemm::loop_iterations(&l.uniform) <= LLVMPIPE_LOOP_LIMIT)
    else {
        return Ok(None);
    };
    let kernel = if relu_offset.is_some() {
        Kernel::ConvForwardReluGemm
    } else {
        Kernel::ConvForwardGemm
    };
    let step = Step {
        kernel,
        label: format!("{name} {}", kernel.name()),
        params: launch.uniform,
        groups: launch.groups,
        images_per_group: 1,
    };
    Ok(Some((step, relu_offset.is_some())))
}

/// Stage 2: softmax, argmax, the Grad-CAM target and the one-hot gradient seed.
pub(super) fn softmax_head(inputs: &PlanInputs<'_>) -> Result<Step, GpuError> {
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

/// The unfused input-gradient launch of layer `i`; `None` for flatten and dropout (they
/// alias).
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
        LayerUniform::Pointwise(p) => Some(Step::new(
            Kernel::PointwiseBackward,
            name,
            &p,
            groups_for(p.len as usize)?,
        )),
        LayerUniform::Pool(p) => {
            let kernel = match p.mode {
                m if m == PoolMode::Max as u32 => Kernel::PoolBackward,
                _ => Kernel::AvgPoolBackward,
            };
            Some(Step::new(kernel, name, &p, groups_for(p.in_len as usize)?))
        }
        LayerUniform::Dense(p) => Some(Step::new(
            Kernel::DenseBackwardInput,
            name,
            &p,
            groups_for(p.in_features as usize)?,
        )),
        LayerUniform::Alias => None,
    })
}

/// Stage 3 of the per-layer plan: `backward[i]` is the input gradient of layer `i`.
/// `None` for flatten, and for a ReLU whose input gradient the dense layer after it writes
/// (`dense.backward_input_relu`; never when the ReLU's output is a Grad-CAM target, so a
/// backward pass that stops there records exactly its own layers).
pub(super) fn backward_layers(inputs: &PlanInputs<'_>) -> Result<Vec<Option<Step>>, GpuError> {
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
pub(super) fn range_table(arena: &ArenaLayout) -> Result<Vec<RangeEntry>, GpuError> {
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
pub(super) fn value_range_pass(table: &[RangeEntry]) -> Result<Step, GpuError> {
    Ok(Step {
        kernel: Kernel::ValueRange,
        label: format!("activations {}", Kernel::ValueRange.name()),
        params: Vec::new(),
        groups: to_u32(table.len())?,
        images_per_group: 1,
    })
}
