//! Derives every kernel launch of a model from its layer table: which kernel, its uniform
//! values and its workgroup count per image. Pure data (no device), so the table can be
//! unit-tested and a new layer type touches one `match`, not a list of hand-registered
//! shaders.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
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
    /// Workgroups per image; the dispatch's y is the batch.
    pub groups: u32,
}

impl Step {
    fn new<P: bytemuck::Pod>(kernel: Kernel, layer: &str, params: &P, groups: u32) -> Step {
        Step {
            kernel,
            label: format!("{layer} {}", kernel.name()),
            params: bytemuck::bytes_of(params).to_vec(),
            groups,
        }
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
            Kernel::DenseBackwardInput => {
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

/// Every launch the network may record, and the data its fixed buffers start with.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelPlan {
    /// Forward launches in layer order; flatten layers have none (their output aliases).
    pub forward: Vec<Step>,
    /// `backward[i]`: input gradient of layer `i` (None for flatten, which aliases).
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
    pub fn new(model: &Model, arena: &ArenaLayout, cam: &CamLayout) -> Result<Self, GpuError> {
        let mut weights: Vec<f32> = Vec::with_capacity(model.parameter_count());
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        for (i, layer) in model.layers.iter().enumerate() {
            let (input, output) = (&arena.slots[i], &arena.slots[i + 1]);
            let name = layer.plan.name.as_str();
            let (in_offset, out_offset) = (to_u32(input.offset)?, to_u32(output.offset)?);
            let (in_len, out_len) = (to_u32(input.len)?, to_u32(output.len)?);
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
            let (f, b) = match layer.plan.op {
                LayerOp::Conv2d(g) => {
                    let (weight_offset, bias_offset) = pack()?;
                    let (_, ih, iw) = map_dims(layer.plan.input);
                    let (_, oh, ow) = map_dims(layer.plan.output);
                    let params = ConvParams {
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
                        _pad: 0,
                    };
                    (
                        Some(Step::new(
                            Kernel::ConvForward,
                            name,
                            &params,
                            groups_for(output.len)?,
                        )),
                        Some(Step::new(
                            Kernel::ConvBackwardInput,
                            name,
                            &params,
                            groups_for(input.len)?,
                        )),
                    )
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
                        Some(Step::new(Kernel::ReluForward, name, &params, groups)),
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
                    let params = DenseParams {
                        in_offset,
                        out_offset,
                        in_features: to_u32(in_features)?,
                        out_features: to_u32(out_features)?,
                        weight_offset,
                        bias_offset,
                        _pad0: 0,
                        _pad1: 0,
                    };
                    (
                        // One workgroup per output feature (a reduction over the inputs).
                        Some(Step::new(
                            Kernel::DenseForward,
                            name,
                            &params,
                            to_u32(out_features)?,
                        )),
                        Some(Step::new(
                            Kernel::DenseBackwardInput,
                            name,
                            &params,
                            groups_for(in_features)?,
                        )),
                    )
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
        };

        Ok(KernelPlan {
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
    use crate::model::train::default_architecture;
    use crate::model::{LayerParams, Model};

    fn zero_model() -> Model {
        let architecture = default_architecture();
        let params = architecture
            .plan()
            .expect("the default architecture is valid")
            .iter()
            .filter_map(|plan| match plan.op {
                LayerOp::Conv2d(g) => Some((
                    g.out_channels * g.in_channels * g.kernel * g.kernel,
                    g.out_channels,
                )),
                LayerOp::Dense {
                    in_features,
                    out_features,
                } => Some((in_features * out_features, out_features)),
                _ => None,
            })
            .map(|(w, b)| LayerParams {
                weight: vec![0.0; w],
                bias: vec![0.0; b],
            })
            .collect();
        Model::from_parts(architecture, params).expect("zero parameters fit")
    }

    #[test]
    fn the_plan_follows_the_layer_table() {
        let model = zero_model();
        let arena = ArenaLayout::new(&model, 4);
        let cam = CamLayout::new(&model, 4);
        let plan = KernelPlan::new(&model, &arena, &cam).expect("plan");
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
}
