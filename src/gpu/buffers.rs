//! The GPU buffers of one network, created once for `max_batch` images. Sizes come from
//! the layouts in `arena`; contents start as the plan's constants (weights, tables).

use wgpu::util::DeviceExt;

use super::arena::{ArenaLayout, CamLayout};
use super::limits::staging_floats_per_image;
use super::params::PREDICTED_SENTINEL;
use super::plan::KernelPlan;

const F32: u64 = 4;

/// Every buffer a kernel binds, plus the constant class table and the readback staging.
pub(super) struct Buffers {
    /// Every weight and bias, packed (read-only storage).
    pub weights: wgpu::Buffer,
    /// The activation arena (see `arena`); COPY_DST for the inputs.
    pub activations: wgpu::Buffer,
    /// The gradient arena, same layout.
    pub gradients: wgpu::Buffer,
    /// Grad-CAM outputs, laid out by `CamLayout`.
    pub cam: wgpu::Buffer,
    /// `(min, max)` per image and activation.
    pub ranges: wgpu::Buffer,
    /// Region and length of every activation, for the value-range kernel.
    pub range_table: wgpu::Buffer,
    /// `classes` floats per image.
    pub probabilities: wgpu::Buffer,
    /// One `u32` per image.
    pub predicted: wgpu::Buffer,
    /// One `u32` per image: the class Grad-CAM explained.
    pub targets: wgpu::Buffer,
    /// One `u32`: the requested class or `PREDICTED_SENTINEL`, copied from `class_table`.
    pub request: wgpu::Buffer,
    /// `[0, 1, …, classes − 1, PREDICTED_SENTINEL]`: the copy source of `request`, so the
    /// target is chosen inside the command encoder, ordered with the dispatches.
    pub class_table: wgpu::Buffer,
    /// MAP_READ buffer of `GpuNetwork::run_blocking`, sized for `max_batch`.
    pub output_staging: wgpu::Buffer,
}

/// A storage buffer of `floats` f32s (at least one: empty bindings are invalid, and a model
/// without conv blocks still binds `cam`), readable back through COPY_SRC.
fn storage(
    device: &wgpu::Device,
    label: &str,
    floats: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: floats.max(1) * F32,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | extra,
        mapped_at_creation: false,
    })
}

impl Buffers {
    pub fn new(
        device: &wgpu::Device,
        plan: &KernelPlan,
        layout: &ArenaLayout,
        cam: &CamLayout,
        classes: usize,
    ) -> Buffers {
        let batch = u64::from(layout.max_batch);
        let none = wgpu::BufferUsages::empty();
        let mut weights = plan.weights.clone();
        // Whole vec4s (the fused walks read them so), and at least one: a model of only
        // relu/pool/flatten still binds weights.
        weights.resize(weights.len().max(1).next_multiple_of(4), 0.0);
        let class_table: Vec<u32> = (0..classes as u32)
            .chain(std::iter::once(PREDICTED_SENTINEL))
            .collect();
        let init = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        let staging = batch * staging_floats_per_image(classes, cam, layout.activations());
        Buffers {
            weights: init(
                "weights",
                bytemuck::cast_slice(&weights),
                wgpu::BufferUsages::STORAGE,
            ),
            activations: storage(
                device,
                "activation arena",
                layout.total_floats(),
                wgpu::BufferUsages::COPY_DST,
            ),
            gradients: storage(device, "gradient arena", layout.total_floats(), none),
            // COPY_DST: the window writes other explanation methods' maps here for the
            // scene's tint (`app::write_tint`).
            cam: storage(
                device,
                "grad-cam",
                cam.total_floats,
                wgpu::BufferUsages::COPY_DST,
            ),
            ranges: storage(
                device,
                "value ranges",
                layout.range_floats() + plan.range_partials,
                none,
            ),
            range_table: init(
                "value-range table",
                bytemuck::cast_slice(&plan.range_table),
                wgpu::BufferUsages::STORAGE,
            ),
            probabilities: storage(device, "probabilities", batch * classes as u64, none),
            predicted: storage(device, "predicted classes", batch, none),
            targets: storage(device, "grad-cam target classes", batch, none),
            request: storage(device, "grad-cam request", 1, wgpu::BufferUsages::COPY_DST),
            class_table: init(
                "class table",
                bytemuck::cast_slice(&class_table),
                wgpu::BufferUsages::COPY_SRC,
            ),
            output_staging: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("inference readback"),
                size: staging.max(1) * F32,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        }
    }
}
