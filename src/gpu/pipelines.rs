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
}

impl Kernel {
    pub const ALL: [Kernel; 26] = [
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
        }
    }

    /// Entry point name in the family's `.wgsl` file.
    pub fn entry_point(self) -> &'static str {
        use Kernel::*;
        match self {
            ConvForward | ConvForwardTiled | ReluForward | PoolForward | DenseForward
            | DenseForwardTiled | FusedForward | ConvForwardGemm => "forward",
            ConvForwardReluTiled | DenseForwardReluTiled | ConvForwardReluGemm => "forward_relu",
            DenseForwardSingleTiled => "forward_single",
            ConvForwardBlockTiled => "forward_block",
            DenseForwardReluSingleTiled => "forward_relu_single",
            ConvBackwardInput | DenseBackwardInput => "backward_input",
            DenseBackwardInputRelu => "backward_input_relu",
            ReluBackward | PoolBackward | FusedBackward => "backward",
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
    const ALL: [Family; 12] = [
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
