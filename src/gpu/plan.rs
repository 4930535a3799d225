//! Derives every kernel launch of a model from its layer table: which kernel, its uniform
//! values and its workgroup count per image. Pure data (no device), so the table can be
//! unit-tested and a new layer type touches one `match`, not a list of hand-registered
//! shaders.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
use super::conv_gemm;
use super::kernel_choice::{
    CONV_OC_BLOCK, CONV_TILE, DENSE_IMAGES, DENSE_K_CHUNK, KernelVariant, LayerKernel,
    conv_chunk_channels,
};
use super::layer_plan::{
    PlanInputs, backward_layers, cam_steps, forward_layers, layer_uniforms, range_table,
    softmax_head, value_range_pass,
};
use super::params::{
    CamParams, ConvParams, DenseParams, FusedParams, NormaliseParams, PoolMode, PoolParams,
    RangeEntry, SoftmaxParams,
};
use super::pipelines::Kernel;
use crate::model::Model;

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

    pub(super) fn per_images(mut self, images: u32) -> Step {
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
            Kernel::AvgPoolForward => avg_pool_loops(&read(&self.params), false),
            Kernel::AvgPoolBackward => avg_pool_loops(&read(&self.params), true),
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
            Kernel::ReluForward
            | Kernel::PointwiseForward
            | Kernel::PointwiseBackward
            | Kernel::ReluBackward
            | Kernel::ReluBackwardGuided
            | Kernel::CamUpsample => 0,
            Kernel::ValueRange => 0, // needs the range table: see KernelPlan
            Kernel::FusedForward | Kernel::FusedBackward => {
                super::fused_plan::walk_loops(self.kernel, &read::<FusedParams>(&self.params))
            }
            // The explanation kernels never join a network's plan; `gpu::explain` sizes
            // their loops (and checks its own) instead.
            _ => 0,
        }
    }
}

/// Loop iterations of one element of an average pool (`avgpool2d.wgsl`, and the fused
/// walk's per element): forward, its window's rows and columns; backward, the windows
/// covering an input (one for a global pool).
pub(super) fn avg_pool_loops(p: &PoolParams, backward: bool) -> u64 {
    let global = p.mode == PoolMode::GlobalAverage as u32;
    match (backward, global) {
        (false, true) => u64::from(p.in_height) * (1 + u64::from(p.in_width)),
        (false, false) => u64::from(p.kernel) * (1 + u64::from(p.kernel)),
        (true, true) => 1,
        (true, false) => {
            let windows = u64::from(p.kernel.div_ceil(p.stride.max(1))) + 1;
            windows * (1 + windows)
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

pub(super) fn groups_for(elements: usize) -> Result<u32, GpuError> {
    to_u32(elements.div_ceil(WORKGROUP as usize))
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
    /// tuner's measured choice; layers without one follow `variant`). The fused walks where
    /// the variant fuses at this batch (there only a conv's `Gemm` applies: the gemm conv
    /// instead of its conv block kernel), else a kernel per
    /// layer; either way in named stages: forward, softmax head, backward per block,
    /// Grad-CAM, value ranges.
    pub fn with_choices(
        model: &Model,
        arena: &ArenaLayout,
        cam: &CamLayout,
        variant: KernelVariant,
        choices: &[Option<LayerKernel>],
    ) -> Result<Self, GpuError> {
        let (uniforms, weights) = layer_uniforms(model, arena)?;
        let inputs = PlanInputs {
            model,
            arena,
            cam,
            variant,
            choices,
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

#[cfg(test)]
mod tests {
    use super::super::limits::LLVMPIPE_LOOP_LIMIT;
    use super::*;
    use crate::model::LayerOp;
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
        // Partials: 8 workgroups for conv1, 4 for conv2, 8 floats each.
        assert_eq!(plan.range_partials, (8 + 4) * 8);
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
