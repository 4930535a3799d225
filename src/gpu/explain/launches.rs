//! Every launch the explanation methods record, bound once at creation on the network's
//! buffers and the explanation buffer: the per-layer backward pass down to the input
//! (plain and guided), down to each conv block, that block's Grad-CAM steps, and the
//! `shaders/explain_*.wgsl` kernels with each block's uniform.

use super::layout::ExplainLayout;
use crate::explain::ExplainOptions;
use crate::gpu::GpuError;
use crate::gpu::dispatch::{Dispatch, build_dispatches};
use crate::gpu::kernel_choice::KernelVariant;
use crate::gpu::layer_plan::{PlanInputs, backward_layers, cam_steps, layer_uniforms};
use crate::gpu::network::GpuNetwork;
use crate::gpu::params::ExplainParams;
use crate::gpu::pipelines::{Kernel, Pipelines};
use crate::gpu::plan::{Step, WORKGROUP};
use crate::model::Model;

/// The `shaders/explain_*.wgsl` kernels, each bound once per conv block: the tail of
/// [`Kernel::ALL`] (declaration order), from the first of them on.
pub fn explain_kernels() -> &'static [Kernel] {
    &Kernel::ALL[Kernel::ExplainIgInputs as usize..]
}

/// Workgroups per image (dispatch x) of an explanation kernel, from its WGSL comment.
fn groups(kernel: Kernel, p: &ExplainParams) -> u32 {
    let per_thread = |n: u32| n.div_ceil(WORKGROUP).max(1);
    use Kernel::*;
    match kernel {
        ExplainScoreMaskRange | ExplainPlusPlusWeights | ExplainXGradWeights => p.channels.max(1),
        ExplainHiResMap | ExplainLayerMap | ExplainElementwiseMap => per_thread(p.height * p.width),
        ExplainEigenMeans => per_thread(p.channels),
        ExplainEigenMatrix => per_thread(p.channels * p.channels),
        ExplainRankPartials => per_thread(p.in_height * p.in_width),
        ExplainEigenVector
        | ExplainEigenProject
        | ExplainScoreWeights
        | ExplainNegateSeed
        | ExplainDisplayMap
        | ExplainFaithfulnessCurves => 1,
        _ => per_thread(p.in_len),
    }
}

/// What one conv block (or, without blocks, the model) records.
pub(super) struct BlockLaunches {
    /// From the logits down to the block's output (the gradient G of its activations).
    pub to_block: Vec<Dispatch>,
    /// Grad-CAM at the block: channel weights, weighted map, normalise, upsample,
    /// normalise (`layer_plan::cam_steps`).
    pub grad_cam: Vec<Dispatch>,
    /// One launch per [`explain_kernels`] entry, in that order.
    kernels: Vec<Dispatch>,
}

impl BlockLaunches {
    pub fn kernel(&self, kernel: Kernel) -> &Dispatch {
        let at = explain_kernels()
            .iter()
            .position(|&k| k == kernel)
            .expect("only explanation kernels are looked up here");
        &self.kernels[at]
    }

    /// Grad-CAM's last three steps: normalise the raw map, upsample, normalise.
    pub fn cam_tail(&self) -> &[Dispatch] {
        &self.grad_cam[2..]
    }
}

pub(super) struct Launches {
    pub pipelines: Pipelines,
    /// The plain backward pass from the logits to the input.
    pub to_input: Vec<Dispatch>,
    /// The same with guided ReLUs (`relu.backward_guided`), no ReLU fused into a dense
    /// layer's backward.
    pub guided_to_input: Vec<Dispatch>,
    /// Per conv block; one entry with empty backward lists for a model without one.
    pub blocks: Vec<BlockLaunches>,
}

impl Launches {
    pub fn new(
        device: &wgpu::Device,
        model: &Model,
        network: &GpuNetwork,
        layout: &ExplainLayout,
        options: &ExplainOptions,
        explain: &wgpu::Buffer,
    ) -> Result<Launches, GpuError> {
        let (uniforms, _) = layer_uniforms(model, &network.layout)?;
        let plain = PlanInputs {
            model,
            arena: &network.layout,
            cam: &network.cam_layout,
            variant: network.kernel_variant(),
            choices: &[],
            uniforms: uniforms.clone(),
        };
        let per_layer = backward_layers(&plain)?;
        let to_input: Vec<Step> = per_layer.iter().rev().flatten().cloned().collect();
        let guided_inputs = PlanInputs {
            variant: KernelVariant::Direct,
            uniforms,
            ..plain
        };
        let guided_to_input: Vec<Step> = backward_layers(&guided_inputs)?
            .into_iter()
            .rev()
            .flatten()
            .map(guided)
            .collect();

        let blocks = model.conv_blocks();
        let mut block_steps = Vec::new();
        for b in 0..blocks.len().max(1) {
            let block = blocks.get(b);
            let params = super::layout::explain_params(
                model,
                &network.layout,
                &network.cam_layout,
                layout,
                options,
                block,
            )?;
            let (to_block, grad_cam) = match block {
                Some(block) => (
                    per_layer[block.output_layer + 1..]
                        .iter()
                        .rev()
                        .flatten()
                        .cloned()
                        .collect(),
                    cam_steps(&plain, b)?,
                ),
                None => (Vec::new(), Vec::new()),
            };
            let name = block.map_or("explain", |b| b.name.as_str());
            let kernels: Vec<Step> = explain_kernels()
                .iter()
                .map(|&k| Step::new(k, name, &params, groups(k, &params)))
                .collect();
            block_steps.push((to_block, grad_cam, kernels));
        }

        let used = to_input
            .iter()
            .chain(&guided_to_input)
            .chain(
                block_steps
                    .iter()
                    .flat_map(|(a, b, c)| a.iter().chain(b).chain(c)),
            )
            .map(|s| s.kernel);
        let pipelines = Pipelines::new(device, used);
        let bind = |steps: &[Step]| {
            let refs: Vec<&Step> = steps.iter().collect();
            build_dispatches(device, &refs, &pipelines, &network.buffers, Some(explain))
        };
        let blocks = block_steps
            .iter()
            .map(|(to_block, grad_cam, kernels)| {
                Ok(BlockLaunches {
                    to_block: bind(to_block)?,
                    grad_cam: bind(grad_cam)?,
                    kernels: bind(kernels)?,
                })
            })
            .collect::<Result<_, GpuError>>()?;
        Ok(Launches {
            to_input: bind(&to_input)?,
            guided_to_input: bind(&guided_to_input)?,
            blocks,
            pipelines,
        })
    }
}

/// A plain ReLU backward step turned into guided backpropagation's.
fn guided(mut step: Step) -> Step {
    if step.kernel == Kernel::ReluBackward {
        step.kernel = Kernel::ReluBackwardGuided;
        step.label = step.label.replace(
            Kernel::ReluBackward.name(),
            Kernel::ReluBackwardGuided.name(),
        );
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explanation_kernels_are_exactly_those_of_the_explain_shaders() {
        let explain: Vec<Kernel> = Kernel::ALL
            .into_iter()
            .filter(|k| k.name().starts_with("explain_"))
            .collect();
        assert_eq!(explain, explain_kernels());
        assert_eq!(explain.len(), 27);
    }
}
