//! Everything on the viewer's GPU that lives as long as the device: the network, the cube
//! scene, egui's renderer, the overlay's images and the small asynchronous readbacks. A lost
//! device drops the whole session and builds a new one from the CPU-side model.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::explain_worker::{ExplainWorker, explain_engine, worker_device};
use super::gpu::ViewerGpu;
use super::reruns::Reruns;
use crate::explain::Method;
use crate::gpu::{
    AsyncReadback, CamTarget, GpuError, GpuNetwork, ImageOutput, InferenceRequest, KernelTimer,
    KernelTiming, OutputPlan,
};
use crate::model::Model;
use crate::scene::{
    CubeRenderer, FeatureMapTextures, RendererConfig, SceneLayout, SceneUpscaler, ValueReadback,
};

/// How often the timing panel's per-kernel figures are refreshed (a timed inference costs
/// a little more than a plain one).
pub const TIMING_INTERVAL: Duration = Duration::from_secs(1);

pub struct Session {
    pub gpu: ViewerGpu,
    pub network: GpuNetwork,
    pub layout: SceneLayout,
    pub cubes: CubeRenderer,
    /// The scene's own target (at a reduced resolution while frames miss their budget)
    /// and the pass that stretches it over the scene's area.
    pub upscaler: SceneUpscaler,
    pub egui: egui_wgpu::Renderer,
    /// `None` when the adapter has no storage textures; the panels then say so.
    pub images: Option<FeatureMapTextures>,
    /// The scene's inference results (probabilities, Grad-CAM), tagged with the input
    /// generation they were recorded for.
    pub outputs: AsyncReadback<(u64, OutputPlan)>,
    pub hovered: ValueReadback,
    /// The unit inspector's copy of a clicked unit's source activation.
    pub inspected: crate::inspect::UnitReadback,
    /// Stored inputs re-run away from the scene.
    pub reruns: Reruns,
    /// The explanation engine on its own thread; why not, when it could not be made.
    pub explain: Result<ExplainWorker, String>,
    timer: Option<KernelTimer>,
    last_timing: Option<Instant>,
    pub timings: Vec<KernelTiming>,
}

/// What one inference should compute, as the person chose it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Analysis {
    pub target: CamTarget,
    pub block: usize,
    /// The chosen method's map is computed and shown.
    pub grad_cam: bool,
    /// The explanation method the Explain panel and the scene show.
    pub method: Method,
}

impl Analysis {
    /// The request for one image; a model without conv blocks runs without Grad-CAM.
    pub fn request(&self, blocks: usize) -> InferenceRequest {
        let block = (blocks > 0).then_some(self.block.min(blocks.saturating_sub(1)));
        InferenceRequest {
            batch: 1,
            target: self.target,
            block,
            // Only Grad-CAM runs inside the network (its zero-copy path to the scene);
            // every other method's map is written into the CAM buffer by the window, which
            // an inference without Grad-CAM leaves alone.
            grad_cam: self.grad_cam && self.method == Method::GradCam && block.is_some(),
            value_ranges: true,
        }
    }
}

impl Session {
    /// Everything for frames of any size (the scene's target follows the scene's area).
    /// `repaint` wakes the window when an explanation comes back.
    pub fn new(gpu: ViewerGpu, model: &Model, repaint: &egui::Context) -> anyhow::Result<Session> {
        // The tuned plan (tuned once per adapter and model, then cached): not a frame yet,
        // so the tuner may wait on the GPU.
        let options = crate::gpu::NetworkOptions::default();
        let (network, choice) =
            crate::gpu::tune::tuned_network(&gpu.device, &gpu.queue, model, 1, &options)
                .context("building the network on the GPU")?;
        for decision in &choice.decisions {
            log::info!("kernels: {}", decision.describe());
        }
        let layout = SceneLayout::new(model, network.layout());
        let config = RendererConfig::for_adapter(&gpu.adapter, gpu.format);
        let cubes = CubeRenderer::new(&gpu.device, &network, &layout, config)
            .context("building the 3D scene")?;
        let upscaler = SceneUpscaler::new(&gpu.device, config);
        let mut egui = egui_wgpu::Renderer::new(
            &gpu.device,
            gpu.format,
            egui_wgpu::RendererOptions::default(),
        );
        let images = match FeatureMapTextures::new(
            &gpu.device,
            &network,
            &model.architecture.normalization,
            &mut egui,
        ) {
            Ok(images) => Some(images),
            Err(e) => {
                log::warn!("feature-map images unavailable: {e}");
                None
            }
        };
        let timer =
            KernelTimer::new(&gpu.device, &gpu.queue, network.max_kernels_per_inference()).ok();
        let reruns = Reruns::new(&gpu.device, model).context("building the re-run network")?;
        let repaint = repaint.clone();
        let explain = worker_device(&gpu.adapter, "the explanation methods")
            .and_then(|(device, queue)| explain_engine(&device, &queue, model))
            .and_then(|engine| ExplainWorker::start(engine, move || repaint.request_repaint()))
            .map_err(|e| format!("Explanations are unavailable: {e:#}"));
        Ok(Session {
            outputs: AsyncReadback::new(
                &gpu.device,
                "inference outputs",
                network.output_capacity(1),
            ),
            hovered: ValueReadback::new(&gpu.device),
            inspected: crate::inspect::UnitReadback::new(&gpu.device, &network),
            reruns,
            explain,
            gpu,
            network,
            layout,
            cubes,
            upscaler,
            egui,
            images,
            timer,
            last_timing: None,
            timings: Vec::new(),
        })
    }

    pub fn has_timestamps(&self) -> bool {
        self.timer.is_some()
    }

    /// Records one inference of the input already written (forward, Grad-CAM, value
    /// ranges) and the overlay images; once a second the kernels are timed as well. Then,
    /// unless the last copy is still out, the copy of its results for the CPU, tagged
    /// `generation`: true when that copy was recorded.
    pub fn encode_inference(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        request: &InferenceRequest,
        color_map: crate::colormap::ColorMap,
        generation: u64,
    ) -> anyhow::Result<bool> {
        let due = self
            .last_timing
            .is_none_or(|t| t.elapsed() >= TIMING_INTERVAL);
        match self.timer.as_mut() {
            // One timed inference at a time: its timestamps come back asynchronously.
            Some(timer) if due && !timer.in_flight() => {
                self.network.encode_timed(encoder, request, timer)?;
                self.last_timing = Some(Instant::now());
            }
            _ => self.network.encode(encoder, request)?,
        }
        if let Some(images) = &self.images {
            images.encode(encoder, color_map);
        }
        let copy = InferenceRequest {
            value_ranges: false,
            ..*request
        };
        match self
            .network
            .encode_outputs(encoder, &copy, &self.outputs, generation)
        {
            Ok(()) => Ok(true),
            // The frame that takes the last copy schedules this generation's again.
            Err(GpuError::ReadbackBusy) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The results of an inference once back, with the generation they belong to; never
    /// waits.
    pub fn take_outputs(&self) -> Result<Option<(u64, ImageOutput)>, GpuError> {
        let Some(((generation, plan), bytes)) = self.outputs.try_take()? else {
            return Ok(None);
        };
        let output = self.network.outputs_from_bytes(&plan, &bytes);
        Ok(output.images.into_iter().next().map(|o| (generation, o)))
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

    /// After the submit: starts reading back the timestamps of a timed inference (if one
    /// was recorded) and picks up those that have arrived (then true). Never waits.
    pub fn collect_timings(&mut self) -> bool {
        let Some(timer) = &self.timer else {
            return false;
        };
        timer.start_map();
        match timer.try_take() {
            Ok(Some(timings)) => {
                self.timings = timings;
                true
            }
            Ok(None) => false,
            Err(e) => {
                log::warn!("kernel timings unavailable: {e}");
                false
            }
        }
    }

    /// Whether timestamps are still on their way back.
    pub fn timings_in_flight(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| t.in_flight())
    }
}
