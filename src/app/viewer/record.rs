//! Phases 4 and 5 of a frame: record the GPU work and submit it, in one encoder: the
//! network (only when the current generation needs it), the overlay's images, one batch of
//! re-runs on their own network, the copies for the readbacks, the cube scene and the
//! egui pass. Then the readbacks' maps start; nothing here waits. A new readback records
//! its copy here and is picked up in `collect`.

use anyhow::Context;

use super::overlay_phase::OverlayPaint;
use super::{FrameTarget, Viewer};
use crate::explain::{ExplainRequest, Method};
use crate::scene::{CamTint, DEFAULT_BACKGROUND, FrameParams, SceneSettings, Wave};
use crate::ui::StatusLevel;

/// What the recorded frame holds, for the collect and redraw phases.
pub(super) struct Recorded {
    /// The hovered cube's value is on its way.
    pub hovered_copy: bool,
    pub wave: Option<Wave>,
}

impl Viewer {
    /// The tint the scene draws: the chosen method's map of the drawing on the canvas, if
    /// it is there (Grad-CAM's from the network, another's once written).
    pub(super) fn scene_tint(&self) -> Option<CamTint> {
        if self.current_input.is_none() || !self.analysis.grad_cam || self.blocks.is_empty() {
            return None;
        }
        let tint = CamTint {
            block: self.analysis.block,
            layer: true,
            input: true,
        };
        if self.analysis.method == Method::GradCam {
            return Some(tint);
        }
        let chosen = self.explanations.chosen(&self.explain_choice())?;
        (self.explanations.tint == Some((self.generations.current(), chosen))).then_some(tint)
    }

    /// The chosen method's answer for the current generation has come back and the CAM
    /// buffer does not hold it yet: its generation and request.
    fn explain_tint_due(&self) -> Option<(u64, ExplainRequest)> {
        if self.analysis.method == Method::GradCam || !self.analysis.grad_cam {
            return None;
        }
        let generation = self.generations.current();
        let chosen = self.explanations.chosen(&self.explain_choice())?;
        self.explanations.current(&chosen, generation)?;
        (self.explanations.tint != Some((generation, chosen))).then_some((generation, chosen))
    }

    /// Records and submits the frame's GPU work into `target`.
    pub(super) fn record_and_submit(
        &mut self,
        pass: &OverlayPaint,
        target: &FrameTarget<'_>,
    ) -> anyhow::Result<Recorded> {
        let time = self.clock.time();
        let mut laps = super::Laps::start();
        let mut egui_ms = 0.0;
        let tint_due = self.explain_tint_due();
        let gradient_from = self.gradient_from();
        let mut scene_tint = self.scene_tint();
        let session = self.session.as_mut().context("the GPU is being rebuilt")?;
        self.textures.record_uploads(&pass.textures);
        for (id, deltas) in &pass.textures.set {
            for delta in deltas {
                session
                    .egui
                    .update_texture(&session.gpu.device, &session.gpu.queue, *id, delta);
            }
        }
        egui_ms += laps.lap();
        let [width, height] = target.size;
        let mut encoder =
            session
                .gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("frame"),
                });

        // Another method's map of this drawing, where the scene and the heatmap image read
        // it (before the network and the images are recorded: the write comes first).
        if let Some((generation, chosen)) = tint_due {
            let explained = self.explanations.current(&chosen, generation);
            let block = self.blocks.get(self.analysis.block);
            if let (Some(explained), Some(block)) = (explained, block) {
                crate::app::explain_tint::write_tint(
                    &session.gpu.queue,
                    &session.network,
                    explained,
                    block,
                );
                self.explanations.tint = Some((generation, chosen));
                self.images_due = true;
                // The write goes ahead of this frame's commands: the scene may draw it now.
                scene_tint = Some(CamTint {
                    block: self.analysis.block,
                    layer: true,
                    input: true,
                });
            }
        }

        // The network, for the current generation.
        let request = self.analysis.request(self.blocks.len());
        let mut failure = None;
        self.split.inference = false;
        if self.generations.inference_due(!session.outputs.in_flight()) {
            self.split.inference = true;
            let generation = self.generations.current();
            match session.encode_inference(&mut encoder, &request, self.color_map, generation) {
                Ok(copied) => self.generations.recorded(copied),
                Err(e) => {
                    // Recorded as done, so the same error is not repeated every frame;
                    // the next change of input or analysis tries again.
                    self.generations.recorded(true);
                    failure = Some(format!("The network could not run: {e:#}"));
                }
            }
            self.pointer.value_due = true;
            if let Some(inspector) = self.inspector.as_mut() {
                inspector.due = true;
            }
            self.images_due = false;
            self.wave.start_if_due(time);
        } else if self.images_due {
            session.encode_images(&mut encoder, self.color_map);
            self.images_due = false;
        }

        self.split.inference_record_ms = laps.lap();

        // Stored inputs, on the re-run network.
        if let Err(e) = session.reruns.encode(
            &session.gpu.queue,
            &mut encoder,
            &self.model,
            self.analysis.target,
            request.block,
        ) {
            failure = Some(format!("A re-run could not run: {e}"));
        }

        // The hovered cube's value.
        let hovered_copy = match self.pointer.pick {
            Some(pick) if self.pointer.value_due => session
                .hovered
                .encode(
                    &mut encoder,
                    &session.network,
                    pick.activation,
                    pick.element_index,
                )
                .is_ok(),
            _ => false,
        };
        self.pointer.value_due &= !hovered_copy;

        // The inspected unit's inputs, once the arena holds the current generation.
        let mut inspected_copy = false;
        if let Some(inspector) = self.inspector.as_mut()
            && inspector.due
            && self.current_input.is_some()
            && self.generations.scene_is_current()
        {
            let tag = inspector.tag(self.generations.current(), gradient_from);
            match session
                .inspected
                .encode(&mut encoder, &session.network, &self.model, tag)
            {
                Ok(copied) => {
                    inspected_copy = copied;
                    // The input image needs no copy; a busy readback tries next frame.
                    inspector.due = !copied
                        && crate::inspect::source_activation(&self.model, tag.activation).is_some();
                }
                Err(e) => {
                    inspector.due = false;
                    failure = Some(format!("The inspector could not read the unit: {e}"));
                }
            }
        }
        self.split.readbacks_record_ms = laps.lap();

        // The cube scene, in the area the panels leave free.
        let wave = self.wave.at(time);
        let settings = SceneSettings {
            time,
            wave,
            color_map: self.color_map,
            grad_cam: scene_tint,
            background: DEFAULT_BACKGROUND,
            ..SceneSettings::default()
        };
        let [sx, sy, sw, sh] = self.scene_pixels;
        // The scene into a target of its own at `scale` of its area's width and height
        // (dynamic resolution), then stretched over its area. The pass that stretches it
        // clears the rest of the frame to the panels' colour: the panels are not filled
        // again (see `Overlay`), which saves a software rasteriser a blended rectangle over
        // half the frame.
        let scale = self.split.scene_scale;
        let reduced = [(sw * scale).round().max(1.0), (sh * scale).round().max(1.0)];
        let params = FrameParams::new(&self.camera, reduced, settings);
        session.cubes.prepare(&session.gpu.queue, &params);
        let (view, targets) =
            session
                .upscaler
                .target(&session.gpu.device, reduced[0] as u32, reduced[1] as u32);
        session
            .cubes
            .encode_pass(&mut encoder, targets, view, DEFAULT_BACKGROUND);
        session.upscaler.encode(
            &mut encoder,
            target.view,
            target.size,
            session.cubes.clear_color(crate::ui::theme::PANEL_RGB),
            [sx, sy, sw, sh],
        );
        self.split.scene_record_ms = laps.lap();

        // The overlay on top.
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [width, height],
            pixels_per_point: pass.pixels_per_point,
        };
        let gpu = &session.gpu;
        let extra = session.egui.update_buffers(
            &gpu.device,
            &gpu.queue,
            &mut encoder,
            &pass.paint_jobs,
            &screen,
        );
        {
            let render = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("egui"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: target.view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Load,
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            session
                .egui
                .render(&mut render.forget_lifetime(), &pass.paint_jobs, &screen);
        }

        self.split.egui_paint_ms = egui_ms + laps.lap();

        // Submit, then start every readback's map: they are picked up when done.
        gpu.queue
            .submit(extra.into_iter().chain(std::iter::once(encoder.finish())));
        self.textures.record_frees(&pass.textures);
        for id in &pass.textures.free {
            session.egui.free_texture(id);
        }
        session.outputs.start_map();
        session.reruns.start_map();
        if hovered_copy {
            session.hovered.start_map();
        }
        if inspected_copy {
            session.inspected.start_map();
        }
        self.split.submit_ms = laps.lap();
        if let Some(why) = failure {
            self.say(StatusLevel::Error, why);
        }
        Ok(Recorded { hovered_copy, wave })
    }
}
