//! Phases 1 and 2 of a frame: the input (the kiosk's rules see the raw events first) and
//! the overlay. The overlay reads a view of the state ([`OverlayView`]) and returns what
//! the person asked for ([`OverlayPass`]); it changes nothing else. A new panel reads the
//! view and returns an event.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Viewer, WindowRequest, scene_input, store_link};
use crate::app::kiosk_mode::KioskActions;
use crate::ui::{ExplainView, GpuTimes, OverlayEvent, OverlayView, PredictionView, StatusMessage};

/// What one overlay pass produced.
pub(super) struct OverlayPass {
    /// What the person asked for: the apply phase's input.
    pub requests: OverlayRequests,
    /// The painted UI: the record phase's input.
    pub paint: OverlayPaint,
    /// When egui wants its next repaint (a tooltip delay, a blinking cursor).
    pub repaint_delay: Option<Duration>,
    pub platform: egui::PlatformOutput,
}

pub(super) struct OverlayRequests {
    pub events: Vec<OverlayEvent>,
    /// The area the panels leave to the scene, in points.
    pub scene_rect: egui::Rect,
    pub gesture: scene_input::Gesture,
    pub store_requests: store_link::StoreRequests,
    pub kiosk_exit: bool,
    pub pixels_per_point: f32,
}

pub(super) struct OverlayPaint {
    pub paint_jobs: Vec<egui::ClippedPrimitive>,
    pub textures: egui::TexturesDelta,
    pub pixels_per_point: f32,
}

impl Viewer {
    /// Phase 1: kiosk mode's rules (idle reset, attract mode) act on the raw input before
    /// the overlay sees it.
    pub(super) fn kiosk_before_frame(
        &mut self,
        raw_input: &egui::RawInput,
        now: Instant,
    ) -> Vec<WindowRequest> {
        self.status
            .retain(|(_, at)| at.elapsed().as_secs_f32() < 4.0);
        let Some(kiosk) = self.kiosk.as_mut() else {
            return Vec::new();
        };
        let held = self
            .egui_ctx
            .input(|i| i.pointer.any_down() || i.any_touches());
        let actions = kiosk.before_frame(now, &raw_input.events, held);
        if self.apply_kiosk(actions) {
            vec![WindowRequest::Exit]
        } else {
            Vec::new()
        }
    }

    /// Phase 2: runs the overlay (panels first, then the free area becomes the scene's)
    /// and tessellates it.
    pub(super) fn show_overlay(
        &mut self,
        raw_input: egui::RawInput,
        now: Instant,
    ) -> anyhow::Result<OverlayPass> {
        let session = self.session.as_ref().context("the GPU is being rebuilt")?;
        let status: Vec<StatusMessage> = self.status.iter().map(|(m, _)| m.clone()).collect();
        let timing_note = if session.has_timestamps() {
            "waiting for the first timed inference"
        } else {
            "timestamps unavailable on this adapter"
        };
        let gpu_times = if session.timings.is_empty() {
            GpuTimes::Unavailable(timing_note)
        } else {
            GpuTimes::Kernels(&session.timings)
        };
        let shown = self
            .generations
            .shown()
            .filter(|_| self.current_input.is_some());
        let choice = self.explain_choice();
        let generation = self.generations.current();
        let chosen = self.explanations.chosen(&choice);
        let explain = ExplainView {
            in_texture: self.analysis.method == crate::explain::Method::GradCam
                || (chosen.is_some() && self.explanations.tint.map(|(_, r)| r) == chosen),
            method: self.analysis.method,
            chosen: self
                .explanations
                .chosen(&choice)
                .filter(|_| self.current_input.is_some())
                .and_then(|request| self.explanations.answer(&request, generation)),
            unavailable: session.explain.as_ref().err().map(String::as_str),
            grid: self.explanations.grid,
            tiles: self
                .current_input
                .as_ref()
                .map(|_| self.explanations.tiles(&choice, generation))
                .unwrap_or_default(),
            input: self.current_input.as_deref(),
            input_size: [
                self.model.architecture.input.width,
                self.model.architecture.input.height,
            ],
        };
        let survey_status = self.survey.as_ref().map(|s| s.status());
        if let (Some(channel), Some(status)) = (self.channel.as_mut(), survey_status.as_ref()) {
            channel.refresh(&self.model, &self.blocks, status);
        }
        let mut channel_note = String::new();
        let vis_progress = self
            .feature_vis
            .as_ref()
            .filter(|f| {
                self.channel.as_ref().is_some_and(|c| {
                    f.objective == crate::feature_vis::Objective::Channels { block: c.block }
                })
            })
            .map(|f| f.progress());
        let vis_note = match &vis_progress {
            Some(p) if p.error.is_some() => p.error.clone().unwrap_or_default(),
            Some(p) if p.images.is_empty() => "Optimising…".to_string(),
            Some(p) if p.steps < p.total => {
                format!("step {} of {}, still growing", p.steps, p.total)
            }
            Some(p) => format!("{} steps of gradient ascent (jitter, blur, decay)", p.steps),
            None => "Not computed".to_string(),
        };
        let channel = self
            .channel
            .as_ref()
            .map(|c| crate::ui::channel_panel::ChannelView {
                title: &c.title,
                weights: &c.weights,
                kernel: c.kernel,
                statistic: c.statistic,
                examples: c.examples(survey_status.as_ref(), &mut channel_note),
                feature_vis: match (&vis_progress, self.channel.as_ref()) {
                    (Some(p), Some(c)) if p.error.is_none() && c.channel < p.images.len() => {
                        Ok((p.images[c.channel].as_slice(), p.side, vis_note.as_str()))
                    }
                    _ => Err(vis_note.as_str()),
                },
                large: self.options.features.large_controls,
            });
        let large = self.options.features.large_controls;
        let labels = &self.model.architecture.classes;
        let failures = self
            .failures
            .as_ref()
            .zip(survey_status.as_ref())
            .map(|(f, status)| f.view(labels, large, status));
        let inspected_generation = self
            .generations
            .scene_is_current()
            .then_some(generation)
            .filter(|_| self.current_input.is_some());
        let explained_class = shown
            .and_then(|o| self.model.architecture.classes.get(o.target))
            .map_or("", String::as_str);
        // A logit's inspector shows what the network thinks its class looks like.
        let logits = self.model.layers.len();
        let class_progress = self
            .inspector
            .as_ref()
            .filter(|i| i.pick.activation == logits)
            .and(self.class_vis.as_ref())
            .map(|v| v.progress());
        let class_caption = match (&class_progress, self.inspector.as_ref()) {
            (Some(p), Some(i)) => {
                let class = labels.get(i.pick.element_index).map_or("?", String::as_str);
                if p.steps < p.total {
                    format!(
                        "What the network thinks a {class} looks like (step {} of {})",
                        p.steps, p.total
                    )
                } else {
                    format!("What the network thinks a {class} looks like")
                }
            }
            _ => String::new(),
        };
        let inspector = self.inspector.as_ref().map(|i| {
            let mut view = i.view(inspected_generation, explained_class);
            view.picture = class_progress
                .as_ref()
                .and_then(|p| {
                    p.images
                        .get(i.pick.element_index)
                        .map(|img| (img.as_slice(), p.side))
                })
                .map(|(img, side)| (img, side, class_caption.as_str()));
            view
        });
        let view = OverlayView {
            model_name: &self.model.architecture.name,
            input_note: &self.input_note,
            adapter: &self.adapter,
            class_labels: &self.model.architecture.classes,
            prediction: shown.map(|output| PredictionView {
                probabilities: &output.probabilities,
                predicted: output.predicted,
            }),
            cam_target: self.analysis.target,
            conv_blocks: &self.blocks,
            cam_block: self.analysis.block,
            grad_cam: self.analysis.grad_cam,
            color_map: self.color_map,
            animation: self.wave.animation,
            images: session.images.as_ref().map(|i| i.images()),
            gpu_times,
            frame_seconds: self.clock.work_seconds(),
            hover: self.pointer.hover.as_ref(),
            status: &status,
            features: self.options.features,
            explain,
            inspector,
            failures,
            channel,
        };
        let mut events = crate::ui::OverlayEvents::default();
        let mut gesture = scene_input::Gesture::default();
        let mut store_requests = store_link::StoreRequests::default();
        let store = &mut self.store;
        let overlay = &mut self.overlay;
        let kiosk = &mut self.kiosk;
        let mut kiosk_actions = KioskActions::default();
        let camera = &self.camera;
        let mut laps = super::Laps::start();
        // egui may run the closure twice in one frame (a discarded layout pass), and only the
        // first pass sees the input: what any pass reports is kept.
        let full_output = self.egui_ctx.run_ui(raw_input, |ui| {
            let shown: crate::ui::OverlayEvents = overlay.show(ui, &view);
            events.events.extend(shown.events);
            events.scene_rect = shown.scene_rect;
            if let Some(store) = store.as_mut() {
                let requests = store.show(ui.ctx());
                store_requests.dashboard.extend(requests.dashboard);
                store_requests.report = requests.report.or(store_requests.report.take());
            }
            gesture.add(scene_input::read(ui, events.scene_rect));
            scene_input::draw_labels(ui, &session.layout, camera, events.scene_rect);
            if let Some(kiosk) = kiosk.as_mut() {
                let shown = kiosk.show(ui.ctx(), now);
                kiosk_actions.exit |= shown.exit;
            }
        });
        self.split.overlay_build_ms = laps.lap();
        let repaint_delay = full_output
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map(|v| v.repaint_delay);
        let pixels_per_point = full_output.pixels_per_point;
        let paint_jobs = self
            .egui_ctx
            .tessellate(full_output.shapes, pixels_per_point);
        self.split.overlay_tessellate_ms = laps.lap();
        Ok(OverlayPass {
            requests: OverlayRequests {
                events: events.events,
                scene_rect: events.scene_rect,
                gesture,
                store_requests,
                kiosk_exit: kiosk_actions.exit,
                pixels_per_point,
            },
            paint: OverlayPaint {
                paint_jobs,
                textures: full_output.textures_delta,
                pixels_per_point,
            },
            repaint_delay,
            platform: full_output.platform_output,
        })
    }
}
