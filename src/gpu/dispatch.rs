//! Turns the plan's steps into bound launches: every uniform packed into one buffer at
//! offsets the device accepts, and one bind group per launch built from the kernel's
//! resource list (binding numbers are global, see `pipelines`). All of it once, at
//! creation; encoding an inference only picks launches and sets the batch.

use wgpu::util::DeviceExt;

use super::GpuError;
use super::buffers::Buffers;
use super::pipelines::{Kernel, Pipelines, Resource};
use super::plan::{KernelPlan, Step};

/// A launch with everything bound; only the batch (dispatch y) is chosen at encode time.
pub(super) struct Dispatch {
    pub kernel: Kernel,
    pub label: String,
    pub bind_group: wgpu::BindGroup,
    /// Workgroups per image (or per block of images), folded into (x, z) to respect the
    /// per-dimension limit.
    pub x: u32,
    pub z: u32,
    /// Images per workgroup in y (see [`Step::images_per_group`]).
    pub images_per_group: u32,
}

impl Dispatch {
    /// Records this launch for `batch` images: workgroup y is the image, or the block of
    /// `images_per_group` images for the batch-tiled kernels.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, pipelines: &Pipelines, batch: u32) {
        pass.set_pipeline(pipelines.get(self.kernel));
        pass.set_bind_group(0, &self.bind_group, &[]);
        let y = batch.div_ceil(self.images_per_group.max(1));
        pass.dispatch_workgroups(self.x, y, self.z);
    }
}

/// Every launch the network may record, mirroring [`KernelPlan`].
pub(super) struct Dispatches {
    /// Forward launches, softmax included.
    pub forward: Vec<Dispatch>,
    /// Per conv block: backward down to the block, then its Grad-CAM.
    pub backward: Vec<Vec<Dispatch>>,
    /// The separate value-range pass, where the forward launches do not reduce them.
    pub value_range: Option<Dispatch>,
}

impl Dispatches {
    pub fn new(
        device: &wgpu::Device,
        plan: &KernelPlan,
        pipelines: &Pipelines,
        buffers: &Buffers,
    ) -> Result<Dispatches, GpuError> {
        let steps = plan.steps();
        let mut made = build_dispatches(device, &steps, pipelines, buffers, None)?.into_iter();
        // Same order as `KernelPlan::steps`.
        let mut take = |n: usize| -> Vec<Dispatch> { made.by_ref().take(n).collect() };
        let forward = take(plan.forward.len());
        let backward = plan.backward.iter().map(|b| take(b.len())).collect();
        let value_range = take(usize::from(plan.value_ranges.is_some())).pop();
        Ok(Dispatches {
            forward,
            backward,
            value_range,
        })
    }
}

/// Bound launches of `steps`, in order: every uniform packed into one buffer at offsets
/// the device accepts, one bind group per step. `explain` is the buffer bound as
/// [`Resource::Explain`] (only the explanation kernels bind it).
pub(super) fn build_dispatches(
    device: &wgpu::Device,
    steps: &[&Step],
    pipelines: &Pipelines,
    buffers: &Buffers,
    explain: Option<&wgpu::Buffer>,
) -> Result<Vec<Dispatch>, GpuError> {
    let limits = device.limits();
    let max_dim = limits.max_compute_workgroups_per_dimension.max(1);

    // Every uniform in one buffer, each at an offset the device accepts for a binding.
    let align = u64::from(limits.min_uniform_buffer_offset_alignment).max(16);
    let mut data: Vec<u8> = Vec::new();
    let mut offsets = Vec::with_capacity(steps.len());
    for step in steps {
        let offset = (data.len() as u64).next_multiple_of(align);
        data.resize(offset as usize, 0);
        data.extend_from_slice(&step.params);
        offsets.push(offset);
    }
    data.resize(data.len().max(16), 0);
    // The bind groups keep this buffer alive; nothing else needs it.
    let uniforms = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("kernel uniforms"),
        contents: &data,
        usage: wgpu::BufferUsages::UNIFORM,
    });

    steps
        .iter()
        .zip(offsets)
        .map(|(step, offset)| {
            let x = step.groups.clamp(1, max_dim);
            let z = step.groups.div_ceil(x).max(1);
            if z > max_dim {
                return Err(GpuError::ModelTooLarge(format!(
                    "`{}` needs {} workgroups per image, more than {max_dim}²",
                    step.label, step.groups
                )));
            }
            let resources = Resources {
                buffers,
                uniforms: &uniforms,
                explain,
            };
            Ok(Dispatch {
                kernel: step.kernel,
                label: step.label.clone(),
                bind_group: bind_group(device, pipelines, &resources, step, offset)?,
                x,
                z,
                images_per_group: step.images_per_group,
            })
        })
        .collect()
}

/// The buffers a bind group may name.
struct Resources<'a> {
    buffers: &'a Buffers,
    uniforms: &'a wgpu::Buffer,
    explain: Option<&'a wgpu::Buffer>,
}
/// The bind group of one launch: its kernel's resources at their global binding numbers,
/// its own slice of the uniform buffer at binding 0.
fn bind_group(
    device: &wgpu::Device,
    pipelines: &Pipelines,
    resources: &Resources<'_>,
    step: &Step,
    uniform_offset: u64,
) -> Result<wgpu::BindGroup, GpuError> {
    let Resources {
        buffers,
        uniforms,
        explain,
    } = *resources;
    let entries: Vec<wgpu::BindGroupEntry> = step
        .kernel
        .resources()
        .iter()
        .map(|&resource| {
            let buffer = match resource {
                Resource::Params => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: uniforms,
                    offset: uniform_offset,
                    size: wgpu::BufferSize::new(step.params.len() as u64),
                }),
                Resource::Weights => buffers.weights.as_entire_binding(),
                Resource::Activations => buffers.activations.as_entire_binding(),
                Resource::Gradients => buffers.gradients.as_entire_binding(),
                Resource::Cam => buffers.cam.as_entire_binding(),
                Resource::Probabilities => buffers.probabilities.as_entire_binding(),
                Resource::Predicted => buffers.predicted.as_entire_binding(),
                Resource::Targets => buffers.targets.as_entire_binding(),
                Resource::Request => buffers.request.as_entire_binding(),
                Resource::Ranges => buffers.ranges.as_entire_binding(),
                Resource::RangeTable => buffers.range_table.as_entire_binding(),
                Resource::Explain => explain
                    .ok_or_else(|| {
                        GpuError::ModelTooLarge(format!(
                            "`{}` binds the explanation buffer, which this network lacks",
                            step.label
                        ))
                    })?
                    .as_entire_binding(),
            };
            Ok(wgpu::BindGroupEntry {
                binding: resource as u32,
                resource: buffer,
            })
        })
        .collect::<Result<_, GpuError>>()?;
    Ok(device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&step.label),
        layout: &pipelines.get(step.kernel).get_bind_group_layout(0),
        entries: &entries,
    }))
}
