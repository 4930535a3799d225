//! Frame rate of the full 3D scene, offscreen: the same pass the window records into its
//! surface, into a texture of the window's default size, with the adapter's own renderer
//! settings (`RendererConfig::for_adapter`).

use std::time::Instant;

use serde::Serialize;

use super::stats::{Schedule, median};
use super::{BenchError, Gpu};
use crate::gpu::{GpuError, GpuNetwork, InferenceRequest};
use crate::model::Model;
use crate::scene::{
    CubeRenderer, FrameParams, OffscreenTarget, RendererConfig, SceneLayout, SceneSettings,
};

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RenderReport {
    pub width: u32,
    pub height: u32,
    /// `Instanced` or `Tiles`, as the renderer picked for this adapter.
    pub draw_mode: String,
    pub sample_count: u32,
    pub runs: usize,
    /// One frame of the scene alone (the arena already holds an inference): write the
    /// frame uniform, record, submit, wait.
    pub scene_median_ms: f64,
    pub scene_fps: f64,
    /// One frame that also runs the whole inference (forward, Grad-CAM, value ranges) in the
    /// same submission, as the window does after each stroke.
    pub with_inference_median_ms: f64,
    pub with_inference_fps: f64,
}

/// Renders frames of `network`'s scene (a batch-1 network whose input is already written).
pub fn measure_render(
    gpu: &Gpu<'_>,
    model: &Model,
    network: &GpuNetwork,
    (width, height): (u32, u32),
    schedule: &Schedule,
) -> Result<RenderReport, BenchError> {
    let (device, queue) = (gpu.device, gpu.queue);
    let layout = SceneLayout::new(model, network.layout());
    let config = RendererConfig::for_adapter(gpu.adapter, FORMAT);
    let renderer = CubeRenderer::new(device, network, &layout, config)?;
    let target = OffscreenTarget::new(device, &renderer, width, height)?;
    let camera = layout.home_camera(width as f32 / height as f32);
    let params = FrameParams::new(&camera, target.viewport(), SceneSettings::default());
    let request = InferenceRequest::default();

    let frame = |inference: Option<(&GpuNetwork, &InferenceRequest)>| -> Result<f64, BenchError> {
        let started = Instant::now();
        target.render(device, queue, &renderer, &params, inference)?;
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(GpuError::from)?;
        Ok(started.elapsed().as_secs_f64())
    };
    let with_inference = schedule.sample(|| frame(Some((network, &request))))?;
    let scene = schedule.sample(|| frame(None))?;
    let (scene_s, with_s) = (median(&scene), median(&with_inference));
    Ok(RenderReport {
        width,
        height,
        draw_mode: format!("{:?}", config.draw_mode),
        sample_count: config.sample_count,
        runs: scene.len(),
        scene_median_ms: scene_s * 1e3,
        scene_fps: 1.0 / scene_s,
        with_inference_median_ms: with_s * 1e3,
        with_inference_fps: 1.0 / with_s,
    })
}
