//! The whole window while a person draws: the headless viewer (the same [`Viewer`] the
//! window runs, whole overlay included) at the window's default size, fed a scripted stroke
//! that moves the pen every frame, so every frame records an inference.
//!
//! A frame never waits for the GPU, so the GPU's part is measured from outside it, two ways:
//!
//! - **free-running**: frames back to back without waiting, as the window draws while the
//!   pen moves; one wait at the end, included. Frames per second of the whole pipeline,
//!   CPU and GPU overlapping as they do on screen;
//! - **paced**: after each frame, a wait until the GPU is idle. The frame's CPU time is split
//!   by phase ([`FrameSplit`]); the wait is the GPU work the CPU did not hide; the
//!   inference's own GPU time comes from timestamps where the adapter has them.
//!
//! [`Viewer`]: crate::app::Viewer

use std::time::Instant;

use serde::Serialize;

use super::stats::{Schedule, median};
use super::{BenchError, Gpu};
use crate::app::{FrameSplit, HeadlessViewer, StoreChoice, ViewerGpu, ViewerOptions};
use crate::model::Model;

/// Pen points per stroke of the script; after [`STROKES_PER_DRAWING`] strokes the canvas
/// is cleared, so the ink never piles up into a solid square.
const POINTS_PER_STROKE: usize = 40;
const STROKES_PER_DRAWING: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowReport {
    pub width: u32,
    pub height: u32,
    /// Frames drawn back to back, the GPU waited for once at the end (included).
    pub free_running_frames: usize,
    pub free_running_fps: f64,
    pub free_running_frame_ms: f64,
    /// Frames drawn with a wait for the GPU after each.
    pub paced_frames: usize,
    /// Median CPU time of a frame (input to redraw decision).
    pub paced_cpu_ms: f64,
    /// Median wait for the GPU after a frame's submit.
    pub paced_gpu_wait_ms: f64,
    /// Median frame plus wait.
    pub paced_frame_ms: f64,
    pub paced_fps: f64,
    /// Medians of each part of the frame's CPU time (paced frames).
    pub cpu_split: FrameSplit,
    /// GPU time of one inference by its kernels' timestamps; `null` without them.
    pub inference_gpu_ms: Option<f64>,
    /// Fraction of measured frames that recorded an inference (1.0: every frame).
    pub inference_fraction: f64,
}

/// The script: a pen moving around a loop on the canvas, one point a frame, lifted every
/// [`POINTS_PER_STROKE`] points (the criterion bench `benches/window.rs` draws with it too).
#[derive(Debug, Default)]
pub struct ScriptedPen {
    step: usize,
    down: bool,
}

impl ScriptedPen {
    /// Queues this frame's pointer events.
    pub fn advance(&mut self, headless: &mut HeadlessViewer) {
        let Some(rect) = headless.viewer().overlay().canvas().screen_rect() else {
            return;
        };
        let point = self.step % POINTS_PER_STROKE;
        let stroke = self.step / POINTS_PER_STROKE;
        let angle = point as f32 / POINTS_PER_STROKE as f32 * std::f32::consts::TAU;
        let radius = 0.18 + 0.08 * (stroke % STROKES_PER_DRAWING) as f32;
        let at = rect.min
            + rect.size()
                * egui::vec2(0.5 + radius * angle.sin(), 0.5 - 1.3 * radius * angle.cos());
        let button = |pressed| egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        };
        headless.push_event(egui::Event::PointerMoved(at));
        if !self.down {
            if point == 0 && stroke.is_multiple_of(STROKES_PER_DRAWING) {
                headless.viewer_mut().overlay_mut().canvas_mut().clear();
            }
            headless.push_event(button(true));
            self.down = true;
        } else if point + 1 == POINTS_PER_STROKE {
            headless.push_event(button(false));
            self.down = false;
        }
        self.step += 1;
    }
}

/// Draws the scripted stroke in a headless viewer of `width`×`height` on the lent device.
pub fn measure_window(
    gpu: &Gpu<'_>,
    model: &Model,
    (width, height): (u32, u32),
    schedule: &Schedule,
) -> Result<WindowReport, BenchError> {
    let viewer_gpu = ViewerGpu::lent(
        gpu.adapter.clone(),
        gpu.device.clone(),
        gpu.queue.clone(),
        wgpu::TextureFormat::Rgba8Unorm,
    );
    let options = ViewerOptions {
        store: StoreChoice::None,
        ..ViewerOptions::default()
    };
    let unsupported = |e: anyhow::Error| BenchError::Unsupported(format!("{e:#}"));
    let mut headless =
        HeadlessViewer::with_gpu(model.clone(), options, viewer_gpu, [width, height], 1.0)
            .map_err(unsupported)?;
    headless.viewer_mut().set_animation(false);
    headless.settle().map_err(unsupported)?;
    let mut pen = ScriptedPen::default();
    let mut frame = |headless: &mut HeadlessViewer| -> Result<FrameSplit, BenchError> {
        pen.advance(headless);
        headless.frame().map_err(unsupported)?;
        Ok(headless.viewer().last_split())
    };

    // Paced: the frame, then the GPU's remainder.
    let paced = schedule.sample(|| {
        let split = frame(&mut headless)?;
        let waited = Instant::now();
        crate::gpu::wait::wait_for_gpu(gpu.device)?;
        Ok((split, waited.elapsed().as_secs_f64() * 1e3))
    })?;

    // Free-running: as many frames as the schedule allows, one wait at the end.
    let free_frames = paced.len().max(schedule.min_runs).max(1);
    let started = Instant::now();
    let mut inferences = 0usize;
    for _ in 0..free_frames {
        inferences += usize::from(frame(&mut headless)?.inference);
    }
    crate::gpu::wait::wait_for_gpu(gpu.device).map_err(BenchError::from)?;
    let free_s = started.elapsed().as_secs_f64();
    inferences += paced.iter().filter(|(s, _)| s.inference).count();

    let of = |part: fn(&FrameSplit) -> f64| {
        median(&paced.iter().map(|(s, _)| part(s)).collect::<Vec<_>>())
    };
    let cpu_split = FrameSplit {
        overlay_build_ms: of(|s| s.overlay_build_ms),
        overlay_tessellate_ms: of(|s| s.overlay_tessellate_ms),
        apply_ms: of(|s| s.apply_ms),
        inference_record_ms: of(|s| s.inference_record_ms),
        readbacks_record_ms: of(|s| s.readbacks_record_ms),
        scene_record_ms: of(|s| s.scene_record_ms),
        egui_paint_ms: of(|s| s.egui_paint_ms),
        submit_ms: of(|s| s.submit_ms),
        collect_ms: of(|s| s.collect_ms),
        total_ms: of(|s| s.total_ms),
        inference: paced.iter().all(|(s, _)| s.inference),
        scene_scale: of(|s| f64::from(s.scene_scale)) as f32,
    };
    let wait = median(&paced.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let whole = median(
        &paced
            .iter()
            .map(|(s, w)| s.total_ms + w)
            .collect::<Vec<_>>(),
    );
    let free_frame_ms = free_s * 1e3 / free_frames as f64;
    Ok(WindowReport {
        width,
        height,
        free_running_frames: free_frames,
        free_running_fps: 1e3 / free_frame_ms,
        free_running_frame_ms: free_frame_ms,
        paced_frames: paced.len(),
        paced_cpu_ms: cpu_split.total_ms,
        paced_gpu_wait_ms: wait,
        paced_frame_ms: whole,
        paced_fps: 1e3 / whole,
        cpu_split,
        inference_gpu_ms: headless.viewer().inference_gpu_ms(),
        inference_fraction: inferences as f64 / (free_frames + paced.len()) as f64,
    })
}
