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
}

/// One compute entry point. Names start with their family (`conv2d.`, `dense.`, …) so
/// timings can be grouped and costed by layer type; the `_tiled` variants and the fused
/// ReLU kernels are chosen per layer by `kernel_choice`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    ConvForward,
    ConvForwardTiled,
    ConvForwardReluTiled,
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
    ConvForwardGemm,
    ConvForwardReluGemm,
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
    Conv2dGemm,
}

impl Kernel {
    pub const ALL: [Kernel; 23] = [
        Kernel::ConvForward,
        Kernel::ConvForwardTiled,
        Kernel::ConvForwardReluTiled,
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
        Kernel::ConvForwardGemm,
        Kernel::ConvForwardReluGemm,
    ];

    fn family(self) -> Family {
        use Kernel::*;
        match self {
            ConvForward | ConvBackwardInput => Family::Conv2d,
            ConvForwardTiled | ConvForwardReluTiled => Family::Conv2dTiled,
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
            ConvForwardGemm | ConvForwardReluGemm => Family::Conv2dGemm,
        }
    }

    /// Entry point name in the family's `.wgsl` file.
    pub fn entry_point(self) -> &'static str {
        use Kernel::*;
        match self {
            ConvForward | ConvForwardTiled | ReluForward | PoolForward | DenseForward
            | DenseForwardTiled | ConvForwardGemm => "forward",
            ConvForwardReluTiled | DenseForwardReluTiled | ConvForwardReluGemm => "forward_relu",
            DenseForwardSingleTiled => "forward_single",
            DenseForwardReluSingleTiled => "forward_relu_single",
            ConvBackwardInput | DenseBackwardInput => "backward_input",
            DenseBackwardInputRelu => "backward_input_relu",
            ReluBackward | PoolBackward => "backward",
            Softmax | Normalise | ValueRange => "main",
            CamChannelWeights => "channel_weights",
            CamWeightedMap => "weighted_map",
            CamUpsample => "upsample",
        }
    }

    /// `file.entry`, as timings and debug labels show it.
    pub fn name(self) -> &'static str {
        use Kernel::*;
        match self {
            ConvForward => "conv2d.forward",
            ConvForwardTiled => "conv2d.forward_tiled",
            ConvForwardReluTiled => "conv2d.forward_relu_tiled",
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
            ConvForwardGemm => "conv2d.forward_gemm",
            ConvForwardReluGemm => "conv2d.forward_relu_gemm",
        }
    }

    /// The resources the entry point uses — exactly the bindings of its derived layout.
    pub fn resources(self) -> &'static [Resource] {
        use Kernel::*;
        use Resource::*;
        match self {
            ConvForward
            | ConvForwardTiled
            | ConvForwardReluTiled
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

impl Family {
    fn module(self, device: &wgpu::Device) -> wgpu::ShaderModule {
        let source = match self {
            Family::Conv2d => wgpu::include_wgsl!("../../shaders/conv2d.wgsl"),
            Family::Conv2dTiled => wgpu::include_wgsl!("../../shaders/conv2d_tiled.wgsl"),
            Family::Relu => wgpu::include_wgsl!("../../shaders/relu.wgsl"),
            Family::MaxPool2d => wgpu::include_wgsl!("../../shaders/maxpool2d.wgsl"),
            Family::Dense => wgpu::include_wgsl!("../../shaders/dense.wgsl"),
            Family::DenseTiled => wgpu::include_wgsl!("../../shaders/dense_tiled.wgsl"),
            Family::Softmax => wgpu::include_wgsl!("../../shaders/softmax.wgsl"),
            Family::GradCam => wgpu::include_wgsl!("../../shaders/grad_cam.wgsl"),
            Family::Normalise => wgpu::include_wgsl!("../../shaders/normalise.wgsl"),
            Family::ValueRange => wgpu::include_wgsl!("../../shaders/value_range.wgsl"),
            Family::Conv2dGemm => wgpu::include_wgsl!("../../shaders/conv2d_gemm.wgsl"),
        };
        device.create_shader_module(source)
    }
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
