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

/// One compute entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    ConvForward,
    ConvBackwardInput,
    ReluForward,
    ReluBackward,
    PoolForward,
    PoolBackward,
    DenseForward,
    DenseBackwardInput,
    Softmax,
    CamChannelWeights,
    CamWeightedMap,
    CamUpsample,
    Normalise,
    ValueRange,
}

/// Shader files, one per kernel family; the discriminant indexes the module list in
/// [`Pipelines::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Conv2d,
    Relu,
    MaxPool2d,
    Dense,
    Softmax,
    GradCam,
    Normalise,
    ValueRange,
}

impl Kernel {
    pub const ALL: [Kernel; 14] = [
        Kernel::ConvForward,
        Kernel::ConvBackwardInput,
        Kernel::ReluForward,
        Kernel::ReluBackward,
        Kernel::PoolForward,
        Kernel::PoolBackward,
        Kernel::DenseForward,
        Kernel::DenseBackwardInput,
        Kernel::Softmax,
        Kernel::CamChannelWeights,
        Kernel::CamWeightedMap,
        Kernel::CamUpsample,
        Kernel::Normalise,
        Kernel::ValueRange,
    ];

    fn family(self) -> Family {
        use Kernel::*;
        match self {
            ConvForward | ConvBackwardInput => Family::Conv2d,
            ReluForward | ReluBackward => Family::Relu,
            PoolForward | PoolBackward => Family::MaxPool2d,
            DenseForward | DenseBackwardInput => Family::Dense,
            Softmax => Family::Softmax,
            CamChannelWeights | CamWeightedMap | CamUpsample => Family::GradCam,
            Normalise => Family::Normalise,
            ValueRange => Family::ValueRange,
        }
    }

    /// Entry point name in the family's `.wgsl` file.
    pub fn entry_point(self) -> &'static str {
        use Kernel::*;
        match self {
            ConvForward | ReluForward | PoolForward | DenseForward => "forward",
            ConvBackwardInput | DenseBackwardInput => "backward_input",
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
            ConvBackwardInput => "conv2d.backward_input",
            ReluForward => "relu.forward",
            ReluBackward => "relu.backward",
            PoolForward => "maxpool2d.forward",
            PoolBackward => "maxpool2d.backward",
            DenseForward => "dense.forward",
            DenseBackwardInput => "dense.backward_input",
            Softmax => "softmax.main",
            CamChannelWeights => "grad_cam.channel_weights",
            CamWeightedMap => "grad_cam.weighted_map",
            CamUpsample => "grad_cam.upsample",
            Normalise => "normalise.main",
            ValueRange => "value_range.main",
        }
    }

    /// The resources the entry point uses — exactly the bindings of its derived layout.
    pub fn resources(self) -> &'static [Resource] {
        use Kernel::*;
        use Resource::*;
        match self {
            ConvForward | DenseForward => &[Params, Weights, Activations],
            ConvBackwardInput | DenseBackwardInput => &[Params, Weights, Gradients],
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

/// One compute pipeline per kernel, built once per [`super::GpuNetwork`]. Layouts are
/// derived from the shaders (`layout: None`), so a shader and its bind groups cannot drift
/// apart silently: a mismatch is a validation error at creation.
pub struct Pipelines {
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Pipelines {
    /// Creation errors (a shader the driver rejects) surface through the caller's error
    /// scope, see [`super::GpuNetwork::new`].
    pub fn new(device: &wgpu::Device) -> Self {
        let modules = [
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/conv2d.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/relu.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/maxpool2d.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/dense.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/softmax.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/grad_cam.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/normalise.wgsl")),
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/value_range.wgsl")),
        ];
        let pipelines = Kernel::ALL
            .iter()
            .map(|&kernel| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.name()),
                    layout: None,
                    module: &modules[kernel.family() as usize],
                    entry_point: Some(kernel.entry_point()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        Pipelines { pipelines }
    }

    pub fn get(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        // ALL lists the kernels in declaration order, so the discriminant is the index.
        &self.pipelines[kernel as usize]
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
