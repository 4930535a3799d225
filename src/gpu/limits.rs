//! What a device can hold: the largest batch whose buffers fit its limits, and the loop
//! length Mesa's software driver tolerates. Checked once, in `GpuNetwork::new`, so an
//! inference never meets a limit halfway.

use super::GpuError;
use super::arena::{ArenaLayout, CamLayout};
use super::plan::KernelPlan;
use crate::model::Model;

const F32: u64 = 4;

/// Loop iterations after which Mesa's llvmpipe (gallivm's `LP_MAX_TGSI_LOOP_ITERATIONS`)
/// ends a shader's loops without an error, leaving results silently incomplete.
pub const LLVMPIPE_LOOP_LIMIT: u64 = 65_535;

/// Floats per image that `GpuNetwork::run_blocking` reads back.
pub fn staging_floats_per_image(classes: usize, cam: &CamLayout, activations: usize) -> u64 {
    2 * classes as u64 + 2 + cam.floats_per_image() + 2 * activations as u64
}

/// Bytes per image of every buffer that grows with the batch, with the buffer's name.
fn per_image_bytes(model: &Model) -> [(&'static str, u64); 5] {
    let layout = ArenaLayout::new(model, 1);
    let cam = CamLayout::new(model, 1);
    let classes = model.num_classes();
    let staging = staging_floats_per_image(classes, &cam, layout.activations());
    [
        ("the activation arena", layout.floats_per_image * F32),
        ("the CAM buffer", cam.floats_per_image() * F32),
        (
            "the value-range buffer",
            2 * layout.activations() as u64 * F32,
        ),
        ("the probability buffer", classes as u64 * F32),
        ("the readback staging buffer", staging * F32),
    ]
}

/// The largest batch whose buffers fit `limits`, and what stops a larger one.
pub fn max_batch_for(model: &Model, limits: &wgpu::Limits) -> (u32, &'static str) {
    // Every shader indexes with u32, so no buffer may exceed 2^32 floats either.
    let limit = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(u64::from(u32::MAX) * F32);
    let mut best = (
        limits.max_compute_workgroups_per_dimension,
        "the dispatch size limit",
    );
    for (name, bytes) in per_image_bytes(model) {
        let fits = u32::try_from(limit / bytes.max(1)).unwrap_or(u32::MAX);
        if fits < best.0 {
            best = (fits, name);
        }
    }
    best
}

/// `max_batch` images fit the device, or an error naming the biggest batch that does.
pub fn check_batch(model: &Model, limits: &wgpu::Limits, max_batch: u32) -> Result<(), GpuError> {
    if max_batch == 0 {
        return Err(GpuError::ZeroBatch);
    }
    let (fits, stopper) = max_batch_for(model, limits);
    if fits == 0 {
        return Err(GpuError::ModelTooLarge(format!(
            "one image does not fit {stopper} (storage bindings hold {} bytes)",
            limits.max_storage_buffer_binding_size
        )));
    }
    if max_batch > fits {
        return Err(GpuError::BatchTooLarge {
            requested: max_batch,
            fits,
            reason: format!(
                "{stopper} would exceed the device's limits (storage binding {} bytes, buffer {} bytes, {} workgroups per dimension)",
                limits.max_storage_buffer_binding_size,
                limits.max_buffer_size,
                limits.max_compute_workgroups_per_dimension
            ),
        });
    }
    Ok(())
}

/// The packed weights fit one storage binding.
pub fn check_weights(plan: &KernelPlan, limits: &wgpu::Limits) -> Result<(), GpuError> {
    let bytes = plan.weights.len() as u64 * F32;
    if bytes > limits.max_storage_buffer_binding_size {
        return Err(GpuError::ModelTooLarge(format!(
            "{bytes} bytes of weights; a storage binding holds {}",
            limits.max_storage_buffer_binding_size
        )));
    }
    Ok(())
}

/// Whether the adapter is Mesa's llvmpipe, whose loops stop at [`LLVMPIPE_LOOP_LIMIT`].
pub(super) fn is_llvmpipe(info: &wgpu::AdapterInfo) -> bool {
    info.name.contains("llvmpipe") || info.driver.contains("llvmpipe")
}

/// On llvmpipe, refuses a model whose kernels would loop longer than it allows: a clear
/// error beats a wrong heatmap. Real GPUs have no such limit.
pub fn check_loop_limit(info: &wgpu::AdapterInfo, plan: &KernelPlan) -> Result<(), GpuError> {
    if !is_llvmpipe(info) {
        return Ok(());
    }
    match plan
        .loop_iterations()
        .into_iter()
        .find(|&(_, loops)| loops > LLVMPIPE_LOOP_LIMIT)
    {
        Some((label, loops)) => Err(GpuError::ModelTooLarge(format!(
            "`{label}` loops up to {loops} times per invocation, and Mesa's llvmpipe stops \
             loops after {LLVMPIPE_LOOP_LIMIT} iterations (its results would be wrong); \
             use a real GPU or a smaller layer"
        ))),
        None => Ok(()),
    }
}
