//! The table of kernels: which WGSL file and entry point each one is, which resources it
//! binds, and its compute pipeline. Binding numbers are global — the same resource has the
//! same `@binding` in every shader — so one function builds every bind group from a
//! kernel's resource list instead of a hand-written layout per kernel.

/// A buffer a kernel may bind; the discriminant is its `@binding` in every shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Params = 0,
    Weights = 1,
    Activations = 2,
    Gradients = 3,
    Cam = 4,
    Probabilities = 5,
    Predicted = 6,
    Targets = 7,
    Request = 8,
    Ranges = 9,
    RangeTable = 10,
    /// The explanation methods' buffer (`gpu::explain`), bound only by their kernels; the
    /// feature visualisation binds its own buffer here (`gpu::feature_vis`).
    Explain = 11,
}

/// One compute entry point. Names start with their family (`conv2d.`, `dense.`, …) so
/// timings can be grouped and costed by layer type; the `_tiled` variants and the fused
/// ReLU kernels are chosen per layer by `kernel_choice`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    ConvForward,
    ConvForwardTiled,
    ConvForwardReluTiled,
    ConvForwardBlockTiled,
    ConvBackwardInput,
    ReluForward,
    ReluBackward,
    PoolForward,
    PoolBackward,
    DenseForward,
    DenseForwardTiled,
    DenseForwardReluTiled,
    DenseForwardSingleTiled,
    DenseForwardReluSingleTiled,
    DenseBackwardInput,
    DenseBackwardInputRelu,
    Softmax,
    CamChannelWeights,
    CamWeightedMap,
    CamUpsample,
    Normalise,
    ValueRange,
    FusedForward,
    FusedBackward,
    ConvForwardGemm,
    ConvForwardReluGemm,
    ReluBackwardGuided,
    FeatureVisJitterIn,
    FeatureVisSeed,
    FeatureVisAscend,
    FeatureVisAdvance,
    PointwiseForward,
    PointwiseBackward,
    AvgPoolForward,
    AvgPoolBackward,
    // The explanation kernels stay last: `explain::launches::explain_kernels` is a tail.
    ExplainIgInputs,
    ExplainNoiseInputs,
    ExplainOcclusionInputs,
    ExplainScoreMaskRange,
    ExplainScoreInputs,
    ExplainRankPartials,
    ExplainFaithfulnessInputs,
    ExplainPlusPlusWeights,
    ExplainXGradWeights,
    ExplainHiResMap,
    ExplainLayerMap,
    ExplainElementwiseMap,
    ExplainEigenMeans,
    ExplainEigenMatrix,
    ExplainEigenVector,
    ExplainEigenProject,
    ExplainScoreWeights,
    ExplainNegateSeed,
    ExplainSaliency,
    ExplainInputXGradient,
    ExplainGuidedBackprop,
    ExplainGuidedGradCam,
    ExplainIgReduce,
    ExplainSmoothReduce,
    ExplainOcclusionReduce,
    ExplainDisplayMap,
    ExplainFaithfulnessCurves,
}

/// Shader files, one per kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Conv2d,
    Conv2dTiled,
    Relu,
    MaxPool2d,
    Dense,
    DenseTiled,
    Softmax,
    GradCam,
    Normalise,
    ValueRange,
    Fused,
    Conv2dGemm,
    FeatureVis,
    ExplainInputs,
    ExplainCam,
    ExplainAttribution,
    Pointwise,
    AvgPool2d,
}

impl Kernel {
    pub const ALL: [Kernel; 62] = [
        Kernel::ConvForward,
        Kernel::ConvForwardTiled,
        Kernel::ConvForwardReluTiled,
        Kernel::ConvForwardBlockTiled,
        Kernel::ConvBackwardInput,
        Kernel::ReluForward,
        Kernel::ReluBackward,
        Kernel::PoolForward,
        Kernel::PoolBackward,
        Kernel::DenseForward,
        Kernel::DenseForwardTiled,
        Kernel::DenseForwardReluTiled,
        Kernel::DenseForwardSingleTiled,
        Kernel::DenseForwardReluSingleTiled,
        Kernel::DenseBackwardInput,
        Kernel::DenseBackwardInputRelu,
        Kernel::Softmax,
        Kernel::CamChannelWeights,
        Kernel::CamWeightedMap,
        Kernel::CamUpsample,
        Kernel::Normalise,
        Kernel::ValueRange,
        Kernel::FusedForward,
        Kernel::FusedBackward,
        Kernel::ConvForwardGemm,
        Kernel::ConvForwardReluGemm,
        Kernel::ReluBackwardGuided,
        Kernel::FeatureVisJitterIn,
        Kernel::FeatureVisSeed,
        Kernel::FeatureVisAscend,
        Kernel::FeatureVisAdvance,
        Kernel::PointwiseForward,
        Kernel::PointwiseBackward,
        Kernel::AvgPoolForward,
        Kernel::AvgPoolBackward,
        Kernel::ExplainIgInputs,
        Kernel::ExplainNoiseInputs,
        Kernel::ExplainOcclusionInputs,
        Kernel::ExplainScoreMaskRange,
        Kernel::ExplainScoreInputs,
        Kernel::ExplainRankPartials,
        Kernel::ExplainFaithfulnessInputs,
        Kernel::ExplainPlusPlusWeights,
        Kernel::ExplainXGradWeights,
        Kernel::ExplainHiResMap,
        Kernel::ExplainLayerMap,
        Kernel::ExplainElementwiseMap,
        Kernel::ExplainEigenMeans,
        Kernel::ExplainEigenMatrix,
        Kernel::ExplainEigenVector,
        Kernel::ExplainEigenProject,
        Kernel::ExplainScoreWeights,
        Kernel::ExplainNegateSeed,
        Kernel::ExplainSaliency,
        Kernel::ExplainInputXGradient,
        Kernel::ExplainGuidedBackprop,
        Kernel::ExplainGuidedGradCam,
        Kernel::ExplainIgReduce,
        Kernel::ExplainSmoothReduce,
        Kernel::ExplainOcclusionReduce,
        Kernel::ExplainDisplayMap,
        Kernel::ExplainFaithfulnessCurves,
    ];

    fn family(self) -> Family {
        use Kernel::*;
        match self {
            ConvForward | ConvBackwardInput => Family::Conv2d,
            ConvForwardTiled | ConvForwardReluTiled | ConvForwardBlockTiled => Family::Conv2dTiled,
            ReluForward | ReluBackward => Family::Relu,
            PoolForward | PoolBackward => Family::MaxPool2d,
            DenseForward | DenseBackwardInput => Family::Dense,
            DenseForwardTiled
            | DenseForwardReluTiled
            | DenseForwardSingleTiled
            | DenseForwardReluSingleTiled
            | DenseBackwardInputRelu => Family::DenseTiled,
            Softmax => Family::Softmax,
            CamChannelWeights | CamWeightedMap | CamUpsample => Family::GradCam,
            Normalise => Family::Normalise,
            ValueRange => Family::ValueRange,
            FusedForward | FusedBackward => Family::Fused,
            ConvForwardGemm | ConvForwardReluGemm => Family::Conv2dGemm,
            ReluBackwardGuided => Family::Relu,
            FeatureVisJitterIn | FeatureVisSeed | FeatureVisAscend | FeatureVisAdvance => {
                Family::FeatureVis
            }
            ExplainIgInputs => Family::ExplainInputs,
            ExplainNoiseInputs => Family::ExplainInputs,
            ExplainOcclusionInputs => Family::ExplainInputs,
            ExplainScoreMaskRange => Family::ExplainInputs,
            ExplainScoreInputs => Family::ExplainInputs,
            ExplainRankPartials => Family::ExplainInputs,
            ExplainFaithfulnessInputs => Family::ExplainInputs,
            ExplainPlusPlusWeights => Family::ExplainCam,
            ExplainXGradWeights => Family::ExplainCam,
            ExplainHiResMap => Family::ExplainCam,
            ExplainLayerMap => Family::ExplainCam,
            ExplainElementwiseMap => Family::ExplainCam,
            ExplainEigenMeans => Family::ExplainCam,
            ExplainEigenMatrix => Family::ExplainCam,
            ExplainEigenVector => Family::ExplainCam,
            ExplainEigenProject => Family::ExplainCam,
            ExplainScoreWeights => Family::ExplainCam,
            ExplainNegateSeed => Family::ExplainAttribution,
            ExplainSaliency => Family::ExplainAttribution,
            ExplainInputXGradient => Family::ExplainAttribution,
            ExplainGuidedBackprop => Family::ExplainAttribution,
            ExplainGuidedGradCam => Family::ExplainAttribution,
            ExplainIgReduce => Family::ExplainAttribution,
            ExplainSmoothReduce => Family::ExplainAttribution,
            ExplainOcclusionReduce => Family::ExplainAttribution,
            ExplainDisplayMap => Family::ExplainAttribution,
            ExplainFaithfulnessCurves => Family::ExplainAttribution,
            PointwiseForward | PointwiseBackward => Family::Pointwise,
            AvgPoolForward | AvgPoolBackward => Family::AvgPool2d,
        }
    }

    /// Entry point name in the family's `.wgsl` file.
    pub fn entry_point(self) -> &'static str {
        use Kernel::*;
        match self {
            ConvForward | ConvForwardTiled | ReluForward | PoolForward | DenseForward
            | DenseForwardTiled | FusedForward | ConvForwardGemm | PointwiseForward
            | AvgPoolForward => "forward",
            ConvForwardReluTiled | DenseForwardReluTiled | ConvForwardReluGemm => "forward_relu",
            DenseForwardSingleTiled => "forward_single",
            ConvForwardBlockTiled => "forward_block",
            DenseForwardReluSingleTiled => "forward_relu_single",
            ConvBackwardInput | DenseBackwardInput => "backward_input",
            DenseBackwardInputRelu => "backward_input_relu",
            ReluBackward | PoolBackward | FusedBackward | PointwiseBackward | AvgPoolBackward => {
                "backward"
            }
            Softmax | Normalise | ValueRange => "main",
            CamChannelWeights => "channel_weights",
            CamWeightedMap => "weighted_map",
            CamUpsample => "upsample",
            ReluBackwardGuided => "backward_guided",
            FeatureVisJitterIn => "jitter_in",
            FeatureVisSeed => "seed",
            FeatureVisAscend => "ascend",
            FeatureVisAdvance => "advance",
            ExplainIgInputs => "ig_inputs",
            ExplainNoiseInputs => "noise_inputs",
            ExplainOcclusionInputs => "occlusion_inputs",
            ExplainScoreMaskRange => "score_mask_range",
            ExplainScoreInputs => "score_inputs",
            ExplainRankPartials => "rank_partials",
            ExplainFaithfulnessInputs => "faithfulness_inputs",
            ExplainPlusPlusWeights => "plus_plus_weights",
            ExplainXGradWeights => "xgrad_weights",
            ExplainHiResMap => "hires_map",
            ExplainLayerMap => "layer_map",
            ExplainElementwiseMap => "elementwise_map",
            ExplainEigenMeans => "eigen_means",
            ExplainEigenMatrix => "eigen_matrix",
            ExplainEigenVector => "eigen_vector",
            ExplainEigenProject => "eigen_project",
            ExplainScoreWeights => "score_weights",
            ExplainNegateSeed => "negate_seed",
            ExplainSaliency => "saliency",
            ExplainInputXGradient => "input_x_gradient",
            ExplainGuidedBackprop => "guided_backprop",
            ExplainGuidedGradCam => "guided_grad_cam",
            ExplainIgReduce => "ig_reduce",
            ExplainSmoothReduce => "smooth_reduce",
            ExplainOcclusionReduce => "occlusion_reduce",
            ExplainDisplayMap => "display_map",
            ExplainFaithfulnessCurves => "faithfulness_curves",
        }
    }

    /// `file.entry`, as timings and debug labels show it.
    pub fn name(self) -> &'static str {
        use Kernel::*;
        match self {
            ConvForward => "conv2d.forward",
            ConvForwardTiled => "conv2d.forward_tiled",
            ConvForwardReluTiled => "conv2d.forward_relu_tiled",
            ConvForwardBlockTiled => "conv2d.forward_block_tiled",
            ConvBackwardInput => "conv2d.backward_input",
            ReluForward => "relu.forward",
            ReluBackward => "relu.backward",
            PoolForward => "maxpool2d.forward",
            PoolBackward => "maxpool2d.backward",
            DenseForward => "dense.forward",
            DenseForwardTiled => "dense.forward_tiled",
            DenseForwardReluTiled => "dense.forward_relu_tiled",
            DenseForwardSingleTiled => "dense.forward_single_tiled",
            DenseForwardReluSingleTiled => "dense.forward_relu_single_tiled",
            DenseBackwardInput => "dense.backward_input",
            DenseBackwardInputRelu => "dense.backward_input_relu",
            Softmax => "softmax.main",
            CamChannelWeights => "grad_cam.channel_weights",
            CamWeightedMap => "grad_cam.weighted_map",
            CamUpsample => "grad_cam.upsample",
            Normalise => "normalise.main",
            ValueRange => "value_range.main",
            FusedForward => "fused.forward",
            FusedBackward => "fused.backward",
            ConvForwardGemm => "conv2d.forward_gemm",
            ConvForwardReluGemm => "conv2d.forward_relu_gemm",
            ReluBackwardGuided => "relu.backward_guided",
            FeatureVisJitterIn => "feature_vis.jitter_in",
            FeatureVisSeed => "feature_vis.seed",
            FeatureVisAscend => "feature_vis.ascend",
            FeatureVisAdvance => "feature_vis.advance",
            ExplainIgInputs => "explain_inputs.ig_inputs",
            ExplainNoiseInputs => "explain_inputs.noise_inputs",
            ExplainOcclusionInputs => "explain_inputs.occlusion_inputs",
            ExplainScoreMaskRange => "explain_inputs.score_mask_range",
            ExplainScoreInputs => "explain_inputs.score_inputs",
            ExplainRankPartials => "explain_inputs.rank_partials",
            ExplainFaithfulnessInputs => "explain_inputs.faithfulness_inputs",
            ExplainPlusPlusWeights => "explain_cam.plus_plus_weights",
            ExplainXGradWeights => "explain_cam.xgrad_weights",
            ExplainHiResMap => "explain_cam.hires_map",
            ExplainLayerMap => "explain_cam.layer_map",
            ExplainElementwiseMap => "explain_cam.elementwise_map",
            ExplainEigenMeans => "explain_cam.eigen_means",
            ExplainEigenMatrix => "explain_cam.eigen_matrix",
            ExplainEigenVector => "explain_cam.eigen_vector",
            ExplainEigenProject => "explain_cam.eigen_project",
            ExplainScoreWeights => "explain_cam.score_weights",
            ExplainNegateSeed => "explain_attribution.negate_seed",
            ExplainSaliency => "explain_attribution.saliency",
            ExplainInputXGradient => "explain_attribution.input_x_gradient",
            ExplainGuidedBackprop => "explain_attribution.guided_backprop",
            ExplainGuidedGradCam => "explain_attribution.guided_grad_cam",
            ExplainIgReduce => "explain_attribution.ig_reduce",
            ExplainSmoothReduce => "explain_attribution.smooth_reduce",
            ExplainOcclusionReduce => "explain_attribution.occlusion_reduce",
            ExplainDisplayMap => "explain_attribution.display_map",
            ExplainFaithfulnessCurves => "explain_attribution.faithfulness_curves",
            PointwiseForward => "pointwise.forward",
            PointwiseBackward => "pointwise.backward",
            AvgPoolForward => "avgpool2d.forward",
            AvgPoolBackward => "avgpool2d.backward",
        }
    }

    /// The resources the entry point uses — exactly the bindings of its derived layout.
    pub fn resources(self) -> &'static [Resource] {
        use Kernel::*;
        use Resource::*;
        match self {
            // Every tiled conv entry shares conv_tile, whose block epilogue (statically
            // part of all of them) writes range partials.
            ConvForwardTiled | ConvForwardReluTiled | ConvForwardBlockTiled => {
                &[Params, Weights, Activations, Ranges]
            }
            ConvForward
            | DenseForward
            | DenseForwardTiled
            | DenseForwardReluTiled
            | DenseForwardSingleTiled
            | DenseForwardReluSingleTiled
            | ConvForwardGemm
            | ConvForwardReluGemm => &[Params, Weights, Activations],
            ConvBackwardInput | DenseBackwardInput => &[Params, Weights, Gradients],
            DenseBackwardInputRelu => &[Params, Weights, Activations, Gradients],
            ReluForward | PoolForward => &[Params, Activations],
            ReluBackward | PoolBackward => &[Params, Activations, Gradients],
            Softmax => &[
                Params,
                Activations,
                Gradients,
                Probabilities,
                Predicted,
                Targets,
                Request,
            ],
            CamChannelWeights => &[Params, Gradients, Cam],
            CamWeightedMap => &[Params, Activations, Cam],
            CamUpsample | Normalise => &[Params, Cam],
            ValueRange => &[Activations, Ranges, RangeTable],
            FusedForward => &[
                Params,
                Weights,
                Activations,
                Gradients,
                Probabilities,
                Predicted,
                Targets,
                Request,
                Ranges,
            ],
            FusedBackward => &[Params, Weights, Activations, Gradients, Cam],
            ReluBackwardGuided => &[Params, Activations, Gradients],
            FeatureVisJitterIn => &[Params, Activations, Explain],
            FeatureVisSeed => &[Params, Activations, Gradients, Explain],
            FeatureVisAscend => &[Params, Gradients, Explain],
            FeatureVisAdvance => &[Params, Explain],
            ExplainIgInputs => &[Params, Activations, Explain],
            ExplainNoiseInputs => &[Params, Activations, Explain],
            ExplainOcclusionInputs => &[Params, Activations, Explain],
            ExplainScoreMaskRange => &[Params, Explain],
            ExplainScoreInputs => &[Params, Activations, Explain],
            ExplainRankPartials => &[Params, Explain],
            ExplainFaithfulnessInputs => &[Params, Activations, Explain],
            ExplainPlusPlusWeights => &[Params, Activations, Gradients, Cam],
            ExplainXGradWeights => &[Params, Activations, Gradients, Cam],
            ExplainHiResMap => &[Params, Activations, Gradients, Cam],
            ExplainLayerMap => &[Params, Activations, Gradients, Cam],
            ExplainElementwiseMap => &[Params, Activations, Gradients, Cam],
            ExplainEigenMeans => &[Params, Activations, Explain],
            ExplainEigenMatrix => &[Params, Activations, Explain],
            ExplainEigenVector => &[Params, Explain],
            ExplainEigenProject => &[Params, Activations, Cam, Explain],
            ExplainScoreWeights => &[Params, Activations, Cam, Explain],
            ExplainNegateSeed => &[Params, Gradients],
            ExplainSaliency => &[Params, Gradients, Explain],
            ExplainInputXGradient => &[Params, Gradients, Explain],
            ExplainGuidedBackprop => &[Params, Gradients, Explain],
            ExplainGuidedGradCam => &[Params, Gradients, Cam, Explain],
            ExplainIgReduce => &[Params, Gradients, Explain],
            ExplainSmoothReduce => &[Params, Gradients, Explain],
            ExplainOcclusionReduce => &[Params, Activations, Explain],
            ExplainDisplayMap => &[Params, Explain],
            ExplainFaithfulnessCurves => &[Params, Probabilities, Explain],
            PointwiseForward => &[Params, Weights, Activations],
            PointwiseBackward => &[Params, Weights, Activations, Gradients],
            AvgPoolForward => &[Params, Activations],
            AvgPoolBackward => &[Params, Gradients],
        }
    }
}

/// One compute pipeline per kernel the plan uses, built once per [`super::GpuNetwork`]
/// (only those: compiling a shader is the slow part of creating a network on a software
/// driver). Layouts are derived from the shaders (`layout: None`), so a shader and its bind
/// groups cannot drift apart silently: a mismatch is a validation error at creation.
pub struct Pipelines {
    pipelines: Vec<Option<wgpu::ComputePipeline>>,
}

/// The uniform structs every compute shader shares (`shaders/params.wgsl`): declared once,
/// put in front of each family's file before naga parses it.
pub const SHADER_PRELUDE: &str = include_str!("../../shaders/params.wgsl");

impl Family {
    const ALL: [Family; 18] = [
        Family::Conv2d,
        Family::Conv2dTiled,
        Family::Relu,
        Family::MaxPool2d,
        Family::Dense,
        Family::DenseTiled,
        Family::Softmax,
        Family::GradCam,
        Family::Normalise,
        Family::ValueRange,
        Family::Fused,
        Family::Conv2dGemm,
        Family::FeatureVis,
        Family::ExplainInputs,
        Family::ExplainCam,
        Family::ExplainAttribution,
        Family::Pointwise,
        Family::AvgPool2d,
    ];

    /// The file under `shaders/` and its text.
    fn file(self) -> (&'static str, &'static str) {
        match self {
            Family::Conv2d => ("conv2d.wgsl", include_str!("../../shaders/conv2d.wgsl")),
            Family::Conv2dTiled => (
                "conv2d_tiled.wgsl",
                include_str!("../../shaders/conv2d_tiled.wgsl"),
            ),
            Family::Relu => ("relu.wgsl", include_str!("../../shaders/relu.wgsl")),
            Family::MaxPool2d => (
                "maxpool2d.wgsl",
                include_str!("../../shaders/maxpool2d.wgsl"),
            ),
            Family::Dense => ("dense.wgsl", include_str!("../../shaders/dense.wgsl")),
            Family::DenseTiled => (
                "dense_tiled.wgsl",
                include_str!("../../shaders/dense_tiled.wgsl"),
            ),
            Family::Softmax => ("softmax.wgsl", include_str!("../../shaders/softmax.wgsl")),
            Family::GradCam => ("grad_cam.wgsl", include_str!("../../shaders/grad_cam.wgsl")),
            Family::Normalise => (
                "normalise.wgsl",
                include_str!("../../shaders/normalise.wgsl"),
            ),
            Family::ValueRange => (
                "value_range.wgsl",
                include_str!("../../shaders/value_range.wgsl"),
            ),
            Family::Fused => ("fused.wgsl", include_str!("../../shaders/fused.wgsl")),
            Family::Conv2dGemm => (
                "conv2d_gemm.wgsl",
                include_str!("../../shaders/conv2d_gemm.wgsl"),
            ),
            Family::FeatureVis => (
                "feature_vis.wgsl",
                include_str!("../../shaders/feature_vis.wgsl"),
            ),
            Family::ExplainInputs => (
                "explain_inputs.wgsl",
                include_str!("../../shaders/explain_inputs.wgsl"),
            ),
            Family::ExplainCam => (
                "explain_cam.wgsl",
                include_str!("../../shaders/explain_cam.wgsl"),
            ),
            Family::ExplainAttribution => (
                "explain_attribution.wgsl",
                include_str!("../../shaders/explain_attribution.wgsl"),
            ),
            Family::Pointwise => (
                "pointwise.wgsl",
                include_str!("../../shaders/pointwise.wgsl"),
            ),
            Family::AvgPool2d => (
                "avgpool2d.wgsl",
                include_str!("../../shaders/avgpool2d.wgsl"),
            ),
        }
    }

    fn module(self, device: &wgpu::Device) -> wgpu::ShaderModule {
        let (name, _) = self.file();
        device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(shader_source(self).into()),
        })
    }
}

/// The prelude followed by the family's file: exactly what the device compiles.
fn shader_source(family: Family) -> String {
    let (_, text) = family.file();
    format!("{SHADER_PRELUDE}\n{text}")
}

/// Every compute shader of the network as the device compiles it, `(file name, source)`,
/// so tests can validate the concatenated sources without a device.
pub fn compute_shader_sources() -> Vec<(&'static str, String)> {
    Family::ALL
        .iter()
        .map(|&family| (family.file().0, shader_source(family)))
        .collect()
}

impl Pipelines {
    /// Pipelines for `used` (duplicates are fine). Creation errors (a shader the driver
    /// rejects) surface through the caller's error scope, see [`super::GpuNetwork::new`].
    pub fn new(device: &wgpu::Device, used: impl IntoIterator<Item = Kernel>) -> Self {
        let mut pipelines: Vec<Option<wgpu::ComputePipeline>> =
            Kernel::ALL.iter().map(|_| None).collect();
        let mut modules: Vec<(Family, wgpu::ShaderModule)> = Vec::new();
        for kernel in used {
            if pipelines[kernel as usize].is_some() {
                continue;
            }
            let family = kernel.family();
            let module = match modules.iter().position(|(f, _)| *f == family) {
                Some(at) => &modules[at].1,
                None => {
                    modules.push((family, family.module(device)));
                    &modules[modules.len() - 1].1
                }
            };
            pipelines[kernel as usize] = Some(device.create_compute_pipeline(
                &wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.name()),
                    layout: None,
                    module,
                    entry_point: Some(kernel.entry_point()),
                    compilation_options: Default::default(),
                    cache: None,
                },
            ));
        }
        Pipelines { pipelines }
    }

    /// The pipeline of a kernel the plan uses; every dispatch comes from the same plan
    /// that chose which pipelines to build, so a missing one is a bug here, not an input.
    pub fn get(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        // ALL lists the kernels in declaration order, so the discriminant is the index.
        self.pipelines[kernel as usize]
            .as_ref()
            .unwrap_or_else(|| panic!("no pipeline was built for {}", kernel.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_the_kernels_in_declaration_order() {
        for (i, kernel) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*kernel as usize, i, "{kernel:?}");
        }
    }

    #[test]
    fn every_kernel_binds_distinct_resources() {
        for kernel in Kernel::ALL {
            let mut bindings: Vec<u32> = kernel.resources().iter().map(|&r| r as u32).collect();
            bindings.sort_unstable();
            bindings.dedup();
            assert_eq!(bindings.len(), kernel.resources().len(), "{kernel:?}");
        }
    }
}
