//! The viewer without a window: frames drawn into an offscreen texture, input scripted as
//! egui events. `cnnviz render --overlay` takes its picture this way, `cnnviz soak` drives
//! hours of visitors through it, and the tests use it to check what the window would show,
//! device loss included.

use std::time::Instant;

use anyhow::Context;

use super::gpu::ViewerGpu;
use super::viewer::{FrameOutput, FrameTarget, Redraw, Viewer, ViewerOptions};
use crate::model::Model;
use crate::scene::{OffscreenTarget, RendererConfig};

/// How many frames [`HeadlessViewer::settle`] draws at most.
const SETTLE_FRAMES: usize = 120;

/// How long [`HeadlessViewer::settle`] waits for the explanation worker at a time (the
/// comparison grid on a software rasteriser takes seconds).
const SETTLE_EXPLAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

pub struct HeadlessViewer {
    viewer: Viewer,
    target: OffscreenTarget,
    size: [u32; 2],
    pixels_per_point: f32,
    started: Instant,
    events: Vec<egui::Event>,
    recoveries: u32,
}

impl HeadlessViewer {
    /// A viewer of `size` pixels at `pixels_per_point` on a new headless device.
    pub fn new(
        model: Model,
        options: ViewerOptions,
        size: [u32; 2],
        pixels_per_point: f32,
    ) -> anyhow::Result<HeadlessViewer> {
        HeadlessViewer::with_gpu(
            model,
            options,
            ViewerGpu::headless()?,
            size,
            pixels_per_point,
        )
    }

    /// The same on a device the caller opened (tests share one, or destroy it).
    pub fn with_gpu(
        model: Model,
        options: ViewerOptions,
        gpu: ViewerGpu,
        size: [u32; 2],
        pixels_per_point: f32,
    ) -> anyhow::Result<HeadlessViewer> {
        if !(pixels_per_point.is_finite() && (0.25..=8.0).contains(&pixels_per_point)) {
            anyhow::bail!("the UI scale must be between 0.25 and 8, not {pixels_per_point}");
        }
        let target = offscreen_target(&gpu, size)?;
        let viewer = Viewer::new(model, options, gpu, size)?;
        Ok(HeadlessViewer {
            viewer,
            target,
            size,
            pixels_per_point,
            started: Instant::now(),
            events: Vec::new(),
            recoveries: 0,
        })
    }

    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    pub fn viewer_mut(&mut self) -> &mut Viewer {
        &mut self.viewer
    }

    pub fn size(&self) -> [u32; 2] {
        self.size
    }

    pub fn pixels_per_point(&self) -> f32 {
        self.pixels_per_point
    }

    /// How many times a lost device has been replaced.
    pub fn recoveries(&self) -> u32 {
        self.recoveries
    }

    /// Queues an input event (in points) for the next frame.
    pub fn push_event(&mut self, event: egui::Event) {
        self.events.push(event);
    }

    /// Draws one frame with the queued events. A lost device is replaced first, as the
    /// window does.
    pub fn frame(&mut self) -> anyhow::Result<FrameOutput> {
        if self.viewer.device_lost() {
            self.recover()?;
        }
        let [w, h] = self.size;
        let mut raw = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(
                    w as f32 / self.pixels_per_point,
                    h as f32 / self.pixels_per_point,
                ),
            )),
            time: Some(self.started.elapsed().as_secs_f64()),
            events: std::mem::take(&mut self.events),
            focused: true,
            ..Default::default()
        };
        raw.viewports
            .entry(egui::ViewportId::ROOT)
            .or_default()
            .native_pixels_per_point = Some(self.pixels_per_point);
        self.viewer.frame(
            raw,
            FrameTarget {
                view: self.target.view(),
                size: self.size,
            },
        )
    }

    /// Draws frames until nothing is in flight and nothing moves (the prediction and the
    /// explanations are back, the wave and the camera have stopped), at most
    /// [`SETTLE_FRAMES`]; waits for the GPU and the explanation worker between frames
    /// instead of spinning.
    pub fn settle(&mut self) -> anyhow::Result<()> {
        for _ in 0..SETTLE_FRAMES {
            let output = self.frame()?;
            if let Some(gpu) = self.viewer.gpu() {
                let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
            }
            let explaining = self.viewer.explaining();
            if explaining && !self.viewer.wait_for_explanations(SETTLE_EXPLAIN_WAIT)? {
                anyhow::bail!("the explanations took longer than {SETTLE_EXPLAIN_WAIT:?}");
            }
            if output.redraw != Redraw::Now && !self.viewer.busy() && !explaining {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The last frame, read back (waits for the GPU).
    pub fn screenshot(&self) -> anyhow::Result<image::RgbaImage> {
        let gpu = self.viewer.gpu().context("the GPU is being rebuilt")?;
        Ok(self.target.read(&gpu.device, &gpu.queue)?)
    }

    fn recover(&mut self) -> anyhow::Result<()> {
        log::warn!("the GPU device was lost; rebuilding the GPU side");
        self.viewer.release_gpu();
        let gpu = ViewerGpu::headless().context("reopening the GPU after a lost device")?;
        self.target = offscreen_target(&gpu, self.size)?;
        self.viewer.replace_gpu(gpu, self.size)?;
        self.recoveries += 1;
        Ok(())
    }
}

fn offscreen_target(gpu: &ViewerGpu, [w, h]: [u32; 2]) -> anyhow::Result<OffscreenTarget> {
    let config = RendererConfig::for_adapter(&gpu.adapter, gpu.format);
    Ok(OffscreenTarget::for_config(&gpu.device, config, w, h)?)
}
