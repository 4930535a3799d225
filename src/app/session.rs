//! Everything on the window's GPU that lives as long as the device: the network, the cube
//! scene, egui's renderer, the overlay's images and the small asynchronous readbacks.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::surface::WindowGpu;
use crate::gpu::{
    CamTarget, GpuNetwork, InferenceRequest, KernelTimer, KernelTiming, ProbabilityReadback,
};
use crate::model::Model;
use crate::scene::{CubeRenderer, RendererConfig, SceneLayout, SceneTargets, ValueReadback};
use crate::ui::FeatureMapTextures;

/// How often the timing panel's per-kernel figures are refreshed. Reading timestamps waits
/// for the GPU, so it happens at most this often, never per frame.
pub const TIMING_INTERVAL: Duration = Duration::from_secs(1);

pub struct Session {
    pub gpu: WindowGpu,
    pub network: GpuNetwork,
    pub layout: SceneLayout,
    pub cubes: CubeRenderer,
    pub targets: SceneTargets,
    pub egui: egui_wgpu::Renderer,
    /// `None` when the adapter has no storage textures; the panels then say so.
    pub images: Option<FeatureMapTextures>,
    pub probabilities: ProbabilityReadback,
    pub hovered: ValueReadback,
    timer: Option<KernelTimer>,
    /// A timed inference was submitted and its timestamps are waiting to be read.
    timer_pending: bool,
    last_timing: Option<Instant>,
    pub timings: Vec<KernelTiming>,
}

/// What one inference should compute, as the person chose it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Analysis {
    pub target: CamTarget,
    pub block: usize,
    pub grad_cam: bool,
}

impl Session {
    pub fn new(gpu: WindowGpu, model: &Model) -> anyhow::Result<Session> {
        let network =
            GpuNetwork::new(&gpu.device, model, 1).context("building the network on the GPU")?;
        let layout = SceneLayout::new(model, network.layout());
        let config = RendererConfig::for_adapter(&gpu.adapter, gpu.config.format);
        let cubes = CubeRenderer::new(&gpu.device, &network, &layout, config)
            .context("building the 3D scene")?;
        let targets = SceneTargets::new(&gpu.device, config, gpu.config.width, gpu.config.height);
        let mut egui = egui_wgpu::Renderer::new(
            &gpu.device,
            gpu.config.format,
            egui_wgpu::RendererOptions::default(),
        );
        let images = match FeatureMapTextures::new(
            &gpu.device,
            &network,
            model.architecture.normalization,
            &mut egui,
        ) {
            Ok(images) => Some(images),
            Err(e) => {
                eprintln!("cnnviz: feature-map images unavailable: {e}");
                None
            }
        };
        let timer =
            KernelTimer::new(&gpu.device, &gpu.queue, network.max_kernels_per_inference()).ok();
        Ok(Session {
            probabilities: network.probability_readback(&gpu.device),
            hovered: ValueReadback::new(&gpu.device),
            gpu,
            network,
            layout,
            cubes,
            targets,
            egui,
            images,
            timer,
            timer_pending: false,
            last_timing: None,
            timings: Vec::new(),
        })
    }

    pub fn has_timestamps(&self) -> bool {
        self.timer.is_some()
    }

    /// Records one inference of the input already written (forward, Grad-CAM, value
    /// ranges), the overlay images, and the copy of the probabilities for the CPU. Once a
    /// second the kernels are timed as well.
    pub fn encode_inference(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        analysis: Analysis,
        color_map: crate::colormap::ColorMap,
    ) -> anyhow::Result<()> {
        let request = InferenceRequest {
            batch: 1,
            target: analysis.target,
            block: Some(analysis.block),
            grad_cam: analysis.grad_cam,
            value_ranges: true,
        };
        let due = self
            .last_timing
            .is_none_or(|t| t.elapsed() >= TIMING_INTERVAL);
        match self.timer.as_mut() {
            Some(timer) if due && !self.timer_pending => {
                self.network.encode_timed(encoder, &request, timer)?;
                self.timer_pending = true;
                self.last_timing = Some(Instant::now());
            }
            _ => self.network.encode(encoder, &request)?,
        }
        if let Some(images) = &self.images {
            images.encode(encoder, color_map);
        }
        // Busy means the previous copy has not been picked up yet: the next inference
        // (or the next frame's) will carry the newer values.
        let _ = self
            .network
            .encode_probability_readback(encoder, &self.probabilities);
        Ok(())
    }

    /// Re-records only the overlay images (a colour-map change needs no inference).
    pub fn encode_images(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        color_map: crate::colormap::ColorMap,
    ) {
        if let Some(images) = &self.images {
            images.encode(encoder, color_map);
        }
    }

    /// After the submit: collects the timestamps of a timed inference. The submission
    /// finished long ago on any real GPU by the time this runs a frame later.
    pub fn collect_timings(&mut self) {
        if !self.timer_pending {
            return;
        }
        if let Some(timer) = &self.timer {
            match timer.read_blocking(&self.gpu.device) {
                Ok(timings) => self.timings = timings,
                Err(e) => eprintln!("cnnviz: kernel timings unavailable: {e}"),
            }
        }
        self.timer_pending = false;
    }
}
