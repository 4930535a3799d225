//! The fused plan: the model's layers as op lists for `shaders/fused.wgsl`, whose single
//! persistent workgroup per image walks them with a barrier between ops. Under `Fused` two
//! walks cover an interactive inference of a model whose layers all fit: the forward walk
//! (every layer, each output's value range, softmax) and, per conv block, the backward walk
//! (input gradients from the logits down to the block's output, then its whole Grad-CAM).
//! Under `Auto` each conv that fits the tiled kernel runs instead as a conv block kernel
//! (`conv2d_tiled.wgsl`'s `forward_block`: conv, batch norm, ReLU, 2×2 pool and value-range
//! partials on
//! many workgroups, because one workgroup is one core on a CPU driver), and the forward
//! walk reduces the partials: 4 dispatches for the MNIST model. Where the tuner chose gemm
//! for a conv (`tune::fused`), the gemm conv with its ReLU runs instead and the next
//! forward walk walks the pool and reduces the three ranges.
//!
//! The plan is per-layer choices: a layer is walked, run by its block kernel, or (too long
//! for a walk) run by its unfused kernel between two walks.
//! A walk is cut where llvmpipe would stop its loops (65 535 iterations per invocation,
//! summed over every loop it runs: see `limits`) or where the uniform's op array is full,
//! and a layer too long for any walk runs its unfused kernel between two walks. So any
//! sequential model gets a plan; the op counts come from the same uniforms the unfused
//! kernels read, one `match` per op kind.

use super::GpuError;
use super::kernel_choice::{KernelVariant, LayerKernel};
use super::layer_plan::{
    LayerUniform, PlanInputs, cam_params, cam_steps, conv_gemm_step, conv_tiled_groups,
    single_layer_backward, single_layer_forward, softmax_params,
};
use super::limits::LLVMPIPE_LOOP_LIMIT;
use super::params::{
    BLOCK_PARTIAL_FLOATS, CamParams, ConvBlockParams, ConvParams, DenseParams, EltwiseParams,
    FUSED_MAX_OPS, FUSED_WORKGROUP, FusedOpKind, FusedParams, Op, PointwiseOp, PointwiseParams,
    PoolMode, PoolParams, SoftmaxParams,
};
use super::pipelines::Kernel;
use super::plan::{Step, avg_pool_loops, conv_tiled_loops, to_u32};
use crate::model::LayerOp;

/// Iterations of a strided loop over `len` elements in one invocation.
fn strided(len: u32) -> u64 {
    u64::from(len.div_ceil(FUSED_WORKGROUP))
}

/// Iterations of one `reduce_min_max` (its halving loop).
const REDUCTION: u64 = FUSED_WORKGROUP.ilog2() as u64;

/// Loop iterations of one invocation running `op` in `kernel`'s walk (an upper bound; the
/// shader's loops, nested ones multiplied out), its value range included.
fn op_loops(kernel: Kernel, op: &Op) -> u64 {
    let range = match op.head[1] {
        super::params::NO_RANGE => 0,
        _ => strided(op.head[3]) + REDUCTION,
    };
    let square_plus = |k: u64| k * (1 + k);
    let forward = kernel == Kernel::FusedForward;
    let own = match op.kind() {
        k if k == FusedOpKind::Conv as u32 => {
            let c: ConvParams = op.body();
            let k = u64::from(c.kernel);
            if forward {
                // Channel blocks × pixels × (channels × taps), plus the 2 × 4 stores.
                let blocks = u64::from(c.out_channels.div_ceil(8));
                let pixels = strided(c.out_height * c.out_width);
                blocks * (1 + pixels * (1 + u64::from(c.in_channels) * (1 + square_plus(k)) + 8))
            } else {
                let taps = u64::from(c.kernel.div_ceil(c.stride.max(1)));
                strided(c.in_len) * (1 + u64::from(c.out_channels) * (1 + square_plus(taps)))
            }
        }
        k if k == FusedOpKind::Relu as u32 => strided(op.body::<EltwiseParams>().len),
        k if k == FusedOpKind::Pointwise as u32 => strided(op.body::<PointwiseParams>().len),
        k if k == FusedOpKind::Pool as u32
            && op.body::<PoolParams>().mode != PoolMode::Max as u32 =>
        {
            let q: PoolParams = op.body();
            let elements = if forward { q.out_len } else { q.in_len };
            strided(elements) * (1 + avg_pool_loops(&q, !forward))
        }
        k if k == FusedOpKind::Pool as u32 => {
            let q: PoolParams = op.body();
            let k = u64::from(q.kernel);
            if forward {
                strided(q.out_len) * (1 + square_plus(k))
            } else {
                let windows = u64::from(q.kernel.div_ceil(q.stride.max(1))) + 1;
                strided(q.in_len) * (1 + windows * (1 + windows * (1 + square_plus(k))))
            }
        }
        k if k == FusedOpKind::Dense as u32 => {
            let d: DenseParams = op.body();
            if forward {
                // Blocks of 8 outputs: the 8 rows, the strided inputs (× 8 rows on the
                // vec4 path), 2 × 4 partials and their sum, the 4 + 4 vec4 sums.
                let blocks = u64::from(d.out_features.div_ceil(8));
                blocks * (1 + 8 + 9 * strided(d.in_features) + 8 + u64::from(FUSED_WORKGROUP))
            } else {
                strided(d.in_features) * (1 + u64::from(d.out_features))
            }
        }
        k if k == FusedOpKind::Softmax as u32 => {
            let s: SoftmaxParams = op.body();
            2 * u64::from(s.classes) + strided(s.classes)
        }
        k if k == FusedOpKind::Partials as u32 => strided(op.body::<[u32; 4]>()[2]) + REDUCTION,
        k if k == FusedOpKind::GradCam as u32 => {
            let g: CamParams = op.body();
            let plane = g.height * g.width;
            let heat = g.out_height * g.out_width;
            strided(g.channels) * (1 + u64::from(plane))
                + strided(plane) * (2 + u64::from(g.channels))
                + 2 * strided(heat)
                + 2 * REDUCTION
        }
        _ => 0,
    };
    own + range
}

/// Loop iterations of one invocation of a whole walk: every op, plus the walk's own loop.
pub(super) fn walk_loops(kernel: Kernel, params: &FusedParams) -> u64 {
    let count = (params.count as usize).min(FUSED_MAX_OPS);
    params.ops[..count]
        .iter()
        .map(|op| 1 + op_loops(kernel, op))
        .sum()
}

/// Collects ops into walks of one kernel, cutting a walk where the next op would pass the
/// loop limit or fill the op array, and putting unfused launches between walks.
struct Walks {
    kernel: Kernel,
    activations: u32,
    ops: Vec<Op>,
    /// Layer names the current walk covers, for its label.
    names: Vec<String>,
    loops: u64,
    steps: Vec<Step>,
}

impl Walks {
    fn new(kernel: Kernel, activations: u32) -> Walks {
        Walks {
            kernel,
            activations,
            ops: Vec::new(),
            names: Vec::new(),
            loops: 0,
            steps: Vec::new(),
        }
    }

    /// Appends `op` (of layer or block `name`) to the current walk, or to a new one when
    /// it does not fit; `false` when the op alone is too long for any walk.
    fn push(&mut self, name: &str, op: Op) -> bool {
        let loops = 1 + op_loops(self.kernel, &op);
        if loops > LLVMPIPE_LOOP_LIMIT {
            return false;
        }
        if self.loops + loops > LLVMPIPE_LOOP_LIMIT || self.ops.len() == FUSED_MAX_OPS {
            self.flush();
        }
        self.ops.push(op);
        if self.names.last().is_none_or(|last| last != name) {
            self.names.push(name.to_string());
        }
        self.loops += loops;
        true
    }

    /// An unfused launch after the ops so far. A walk of nothing but value ranges waits
    /// for the next walk instead (the launch does not touch what they read), saving a
    /// dispatch.
    fn unfused(&mut self, step: Step) {
        let only_ranges = self.ops.iter().all(|op| {
            op.kind() == FusedOpKind::Range as u32 || op.kind() == FusedOpKind::Partials as u32
        });
        if !only_ranges {
            self.flush();
        }
        self.steps.push(step);
    }

    fn flush(&mut self) {
        if self.ops.is_empty() {
            return;
        }
        let mut params = FusedParams {
            count: self.ops.len() as u32,
            activations: self.activations,
            ..Default::default()
        };
        params.ops[..self.ops.len()].copy_from_slice(&self.ops);
        let label = match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) if first != last => format!("{first}..{last}"),
            (Some(only), _) => only.clone(),
            _ => "walk".to_string(),
        };
        // One workgroup per image: the dispatch's y is the batch.
        self.steps.push(Step::new(self.kernel, &label, &params, 1));
        self.ops.clear();
        self.names.clear();
        self.loops = 0;
    }

    fn finish(mut self) -> Vec<Step> {
        self.flush();
        self.steps
    }
}

/// The op of a layer with this uniform (forward or backward: the body is the same), `None`
/// for flatten and dropout (they alias).
fn layer_op(uniform: LayerUniform) -> Option<Op> {
    match uniform {
        LayerUniform::Conv(p) => Some(Op::new(FusedOpKind::Conv, &p)),
        LayerUniform::Relu(p) => Some(Op::new(FusedOpKind::Relu, &p)),
        LayerUniform::Pointwise(p) => Some(Op::new(FusedOpKind::Pointwise, &p)),
        LayerUniform::Pool(p) => Some(Op::new(FusedOpKind::Pool, &p)),
        LayerUniform::Dense(p) => Some(Op::new(FusedOpKind::Dense, &p)),
        LayerUniform::Alias => None,
    }
}

/// What [`forward_walks`] plans.
pub(super) struct ForwardWalks {
    pub steps: Vec<Step>,
    /// Whether the walks reduce every activation's range (else a separate pass must).
    pub ranges_reduced: bool,
    /// Floats of value-range partials the conv block kernels write past the ranges.
    pub partial_floats: u64,
}

/// A conv block kernel (`conv2d.forward_block_tiled`) for the conv at layer `i` with the
/// batch norm, the ReLU and the 2×2 stride-2 max-pool after it where they follow, in that
/// order, writing its value-range partials at `partials_offset`. Returns the step, the
/// slots whose ranges its partials hold (conv, batch norm, ReLU, pool: `None` where not
/// fused) and the layers it covers.
fn conv_block(
    inputs: &PlanInputs<'_>,
    i: usize,
    conv: ConvParams,
    partials_offset: u32,
) -> Result<(Step, [Option<usize>; 4], usize), GpuError> {
    let (layers, arena) = (&inputs.model.layers, inputs.arena);
    let name = layers[i].plan.name.as_str();
    let batch_norm = match inputs.uniforms.get(i + 1) {
        Some(LayerUniform::Pointwise(p)) if p.op == PointwiseOp::Affine as u32 => Some(*p),
        _ => None,
    };
    let relu_at = i + 1 + usize::from(batch_norm.is_some());
    let relu = layers
        .get(relu_at)
        .is_some_and(|l| l.plan.op == LayerOp::Relu);
    let after = relu_at + usize::from(relu);
    let pool = layers.get(after).is_some_and(|l| {
        l.plan.op
            == LayerOp::MaxPool2d {
                kernel: 2,
                stride: 2,
            }
    });
    let mut block = ConvBlockParams {
        conv,
        relu: u32::from(relu),
        partials_offset,
        groups: conv_tiled_groups(name, &conv)?,
        ..Default::default()
    };
    if let Some(bn) = batch_norm {
        block.affine = 1;
        block.affine_offset = bn.out_offset;
        block.scale_offset = bn.scale_offset;
        block.shift_offset = bn.shift_offset;
    }
    if relu {
        block.conv.relu_offset = to_u32(arena.slots[relu_at + 1].offset)?;
    }
    if let (true, LayerUniform::Pool(p)) = (pool, inputs.uniforms[after]) {
        block.pool_offset = p.out_offset;
        block.pool_len = p.out_len;
        block.pool_height = p.out_height;
        block.pool_width = p.out_width;
    }
    let slots = [
        Some(i + 1),
        batch_norm.map(|_| i + 2),
        relu.then_some(relu_at + 1),
        pool.then_some(after + 1),
    ];
    let covered = after + usize::from(pool) - i;
    let step = Step::new(Kernel::ConvForwardBlockTiled, name, &block, block.groups);
    Ok((step, slots, covered))
}

/// The batched implicit-GEMM launch of the conv at layer `i` (writing the ReLU after it
/// where one follows) when the tuner chose it for this layer and the layer fits it; the
/// step and whether it wrote the ReLU.
fn conv_gemm(
    inputs: &PlanInputs<'_>,
    i: usize,
    conv: ConvParams,
) -> Result<Option<(Step, bool)>, GpuError> {
    let layers = &inputs.model.layers;
    let (Some(LayerKernel::Gemm), Some(params)) = (inputs.layer_kernel(i), &layers[i].params)
    else {
        return Ok(None);
    };
    let relu = match layers.get(i + 1) {
        Some(next) if next.plan.op == LayerOp::Relu => {
            Some(to_u32(inputs.arena.slots[i + 2].offset)?)
        }
        _ => None,
    };
    conv_gemm_step(&layers[i].plan.name, conv, &params.weight, relu)
}

/// The forward walks: every layer with its output's value range, the input's range first,
/// softmax last. Under `Auto`, each conv that fits the tiled kernel runs as a conv block
/// kernel (conv, batch norm, ReLU, 2×2 pool, range partials; many workgroups, so every
/// core works)
/// between the walks, or, where the tuner chose gemm for it, as the gemm conv (conv and
/// ReLU) with its pool and ranges in the next walk; `Fused` walks the convolutions too.
pub(super) fn forward_walks(inputs: &PlanInputs<'_>) -> Result<ForwardWalks, GpuError> {
    let arena = inputs.arena;
    let activations = to_u32(arena.slots.len())?;
    let range = |slot: usize| -> Result<Op, GpuError> {
        let s = &arena.slots[slot];
        let op = Op::new(FusedOpKind::Range, &[0u32; 4]);
        Ok(op.with_range(to_u32(slot)?, to_u32(s.offset)?, to_u32(s.len)?))
    };
    let ranges_fit = (0..arena.slots.len()).try_fold(true, |fit, slot| {
        Ok::<_, GpuError>(
            fit && op_loops(Kernel::FusedForward, &range(slot)?) < LLVMPIPE_LOOP_LIMIT,
        )
    })?;
    let conv_blocks = inputs.variant != KernelVariant::Fused;
    let mut walks = Walks::new(Kernel::FusedForward, activations);
    if ranges_fit {
        walks.push("input", range(0)?);
    }
    let mut partial_floats = 0u64;
    let layers = &inputs.model.layers;
    let mut i = 0;
    while i < layers.len() {
        let name = layers[i].plan.name.as_str();
        if let LayerUniform::Conv(p) = inputs.uniforms[i]
            && conv_blocks
            && let Some((step, relu)) = conv_gemm(inputs, i, p)?
        {
            // The gemm conv writes the conv and its ReLU; their ranges go to the next walk,
            // which walks the pool after them like any layer.
            walks.unfused(step);
            if ranges_fit {
                walks.push(name, range(i + 1)?);
                if relu {
                    walks.push(&layers[i + 1].plan.name, range(i + 2)?);
                }
            }
            i += 1 + usize::from(relu);
            continue;
        }
        if let LayerUniform::Conv(p) = inputs.uniforms[i]
            && conv_blocks
            && conv_tiled_loops(&p).is_some_and(|l| l <= LLVMPIPE_LOOP_LIMIT)
        {
            let offset = to_u32(arena.range_floats() + partial_floats)?;
            let (step, slots, covered) = conv_block(inputs, i, p, offset)?;
            partial_floats += u64::from(arena.max_batch)
                * u64::from(BLOCK_PARTIAL_FLOATS)
                * u64::from(step.groups);
            let groups = step.groups;
            walks.unfused(step);
            for (pair, slot) in slots.into_iter().enumerate() {
                if let (true, Some(slot)) = (ranges_fit, slot) {
                    let body = [to_u32(slot)?, offset, groups, pair as u32];
                    walks.push(name, Op::new(FusedOpKind::Partials, &body));
                }
            }
            i += covered;
            continue;
        }
        let output_range = range(i + 1)?;
        let fused = match layer_op(inputs.uniforms[i]) {
            Some(op) if ranges_fit => walks.push(
                name,
                op.with_range(
                    output_range.head[1],
                    output_range.head[2],
                    output_range.head[3],
                ),
            ),
            Some(op) => walks.push(name, op),
            // Flatten and dropout alias their input: only the range (the scene draws it).
            None => !ranges_fit || walks.push(name, output_range),
        };
        if !fused {
            if let Some(step) = single_layer_forward(inputs, i)? {
                walks.unfused(step);
            }
            if ranges_fit {
                walks.push(name, output_range);
            }
        }
        i += 1;
    }
    let softmax = Op::new(FusedOpKind::Softmax, &softmax_params(inputs)?);
    if !walks.push("logits", softmax) {
        walks.unfused(Step::new(
            Kernel::Softmax,
            "logits",
            &softmax_params(inputs)?,
            1,
        ));
    }
    Ok(ForwardWalks {
        steps: walks.finish(),
        ranges_reduced: ranges_fit,
        partial_floats,
    })
}

/// The backward walks of block `block`: input gradients of layers L-1 … down to the
/// block's output (flatten and dropout alias), then its Grad-CAM, each unfused where too long.
pub(super) fn backward_walks(inputs: &PlanInputs<'_>, block: usize) -> Result<Vec<Step>, GpuError> {
    let model = inputs.model;
    let b = &model.conv_blocks()[block];
    let mut walks = Walks::new(Kernel::FusedBackward, to_u32(inputs.arena.slots.len())?);
    for i in (b.output_layer + 1..model.layers.len()).rev() {
        let Some(op) = layer_op(inputs.uniforms[i]) else {
            continue;
        };
        if !walks.push(&model.layers[i].plan.name, op)
            && let Some(step) = single_layer_backward(inputs, i)?
        {
            walks.unfused(step);
        }
    }
    if !walks.push(
        &b.name,
        Op::new(FusedOpKind::GradCam, &cam_params(inputs, block)?),
    ) {
        for step in cam_steps(inputs, block)? {
            walks.unfused(step);
        }
    }
    Ok(walks.finish())
}
