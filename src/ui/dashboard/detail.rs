//! One saved prediction in full: the drawing, the probabilities and Grad-CAM as stored and,
//! after a re-run, as the current model computes them, side by side; and what can be done
//! with it (re-run, put back on the canvas, report, delete with confirmation).

use egui::{Color32, RichText, TextureHandle, Ui, Vec2};

use super::{DashboardEvent, RerunResult};
use crate::colormap::ColorMap;
use crate::store::{PredictionStore, Report, RerunInput, SavedPrediction, StoreError, utc_text};
use crate::ui::theme;

const IMAGE_SIDE: f32 = 168.0;

/// A loaded prediction and its textures.
pub struct Detail {
    pub record: SavedPrediction,
    pub report: Option<Report>,
    /// The store generation this was loaded at.
    pub generation: u64,
    drawing: Option<TextureHandle>,
    stored_cam: Option<TextureHandle>,
    rerun_cam: Option<(RerunResult, TextureHandle)>,
    /// Set while "Delete…" waits for confirmation.
    pub confirming_delete: bool,
    pub load_error: Option<String>,
}

impl Detail {
    /// Loads a prediction; `Ok(None)` if it is gone.
    pub fn load(
        ctx: &egui::Context,
        store: &PredictionStore,
        id: crate::store::PredictionId,
        color_map: ColorMap,
    ) -> Result<Option<Detail>, StoreError> {
        let generation = store.generation();
        let Some(record) = store.get(id)? else {
            return Ok(None);
        };
        let report = store.report_of(id)?;
        let (drawing, load_error) = match record.drawing() {
            Ok(d) => (
                Some(ctx.load_texture(
                    format!("dashboard drawing {}", id.0),
                    egui::ColorImage::from_gray([d.width as usize, d.height as usize], &d.pixels),
                    egui::TextureOptions::LINEAR,
                )),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let heat: Vec<f32> = record
            .grad_cam
            .heatmap
            .iter()
            .map(|&v| f32::from(v) / 255.0)
            .collect();
        let stored_cam = (!heat.is_empty())
            .then(|| cam_texture(ctx, &record, &heat, color_map, "stored"))
            .flatten();
        Ok(Some(Detail {
            record,
            report,
            generation,
            drawing,
            stored_cam,
            rerun_cam: None,
            confirming_delete: false,
            load_error,
        }))
    }

    pub fn set_rerun(&mut self, ctx: &egui::Context, result: RerunResult, color_map: ColorMap) {
        let texture = result
            .heatmap
            .as_deref()
            .and_then(|heat| cam_texture(ctx, &self.record, heat, color_map, "rerun"))
            .unwrap_or_else(|| {
                ctx.load_texture(
                    "dashboard rerun empty",
                    egui::ColorImage::filled([1, 1], Color32::BLACK),
                    egui::TextureOptions::NEAREST,
                )
            });
        self.rerun_cam = Some((result, texture));
    }

    pub fn rerun(&self) -> Option<&RerunResult> {
        self.rerun_cam.as_ref().map(|(r, _)| r)
    }

    /// The window's content; pushes what the person asked for.
    pub fn ui(&mut self, ui: &mut Ui, events: &mut Vec<DashboardEvent>) {
        let r = &self.record;
        ui.label(format!(
            "Saved {} UTC with {} ({})",
            utc_text(r.time_ms),
            r.model.name,
            r.model.short_hash()
        ));
        match &self.report {
            Some(rep) => {
                let colour = if u16::from(rep.true_digit) != r.predicted {
                    theme::ERROR
                } else {
                    theme::ACCENT
                };
                ui.label(RichText::new(format!("Reported as {}", rep.true_digit)).color(colour));
                if !rep.reason.is_empty() {
                    ui.label(RichText::new(format!("“{}”", rep.reason)).italics());
                }
            }
            None => {
                ui.label(RichText::new("Not reported").color(theme::WEAK_TEXT));
            }
        }
        if let Some(e) = &self.load_error {
            ui.label(RichText::new(e).color(theme::ERROR));
        }
        ui.add_space(4.0);

        ui.horizontal(|ui| {
            picture(ui, self.drawing.as_ref(), "Drawing");
            picture(
                ui,
                self.stored_cam.as_ref(),
                &format!(
                    "Grad-CAM as stored (class {}, {})",
                    r.grad_cam.target, r.grad_cam.layer
                ),
            );
            if let Some((result, texture)) = &self.rerun_cam {
                picture(
                    ui,
                    Some(texture),
                    &format!("Grad-CAM now ({})", result.model),
                );
            }
        });
        ui.add_space(4.0);
        self.probabilities(ui);
        ui.add_space(6.0);

        let id = r.id;
        ui.horizontal(|ui| {
            if ui
                .button("Re-run")
                .on_hover_text("Put the stored model input through the current model")
                .clicked()
            {
                events.push(DashboardEvent::Rerun(RerunInput {
                    id,
                    input: r.input.clone(),
                    grad_cam_target: r.grad_cam.target,
                    grad_cam_block: r.grad_cam.block,
                }));
            }
            let drawing = r.drawing().ok();
            if ui
                .add_enabled(drawing.is_some(), egui::Button::new("Show in scene"))
                .on_hover_text("Puts this drawing on the canvas: the scene and the answer show it")
                .clicked()
                && let Some(d) = drawing
            {
                events.push(DashboardEvent::PutOnCanvas {
                    id,
                    drawing: d.to_ink_image(),
                });
            }
            let report_text = if self.report.is_some() {
                "Change report…"
            } else {
                "Report…"
            };
            if ui.button(report_text).clicked() {
                events.push(DashboardEvent::Report {
                    id,
                    predicted: r.predicted,
                });
            }
            if ui.button("Delete…").clicked() {
                self.confirming_delete = true;
            }
        });
        if self.confirming_delete {
            ui.separator();
            ui.label(
                RichText::new(format!("Delete {id} and its report for good?"))
                    .color(theme::WARNING),
            );
            ui.horizontal(|ui| {
                let delete = egui::Button::new(RichText::new("Delete").color(Color32::WHITE))
                    .fill(Color32::from_rgb(150, 45, 45));
                if ui.add(delete).clicked() {
                    events.push(DashboardEvent::Delete(id));
                    self.confirming_delete = false;
                }
                if ui.button("Keep it").clicked() {
                    self.confirming_delete = false;
                }
            });
        }
    }

    /// Stored probabilities beside the re-run's, one row per class.
    fn probabilities(&self, ui: &mut Ui) {
        let r = &self.record;
        let rerun = self.rerun();
        egui::Grid::new("dashboard probabilities")
            .num_columns(if rerun.is_some() { 3 } else { 2 })
            .spacing([10.0, 2.0])
            .show(ui, |ui| {
                ui.label(RichText::new("class").small().color(theme::WEAK_TEXT));
                ui.label(RichText::new("stored").small().color(theme::WEAK_TEXT));
                if let Some(now) = rerun {
                    let verdict = if now.predicted == r.predicted {
                        "now (same answer)".to_string()
                    } else {
                        format!("now (changed from {} to {})", r.predicted, now.predicted)
                    };
                    ui.label(RichText::new(verdict).small().color(theme::WEAK_TEXT));
                }
                ui.end_row();
                for (class, &p) in r.probabilities.iter().enumerate() {
                    ui.label(class.to_string());
                    bar(ui, p, class == r.predicted as usize);
                    if let Some(now) = rerun {
                        let q = now.probabilities.get(class).copied().unwrap_or(0.0);
                        bar(ui, q, class == now.predicted as usize);
                    }
                    ui.end_row();
                }
            });
    }
}

fn bar(ui: &mut Ui, p: f32, highlight: bool) {
    let colour = if highlight {
        theme::ACCENT
    } else {
        theme::MUTED
    };
    ui.add(
        egui::ProgressBar::new(p.clamp(0.0, 1.0))
            .desired_width(150.0)
            .fill(colour)
            .text(format!("{:.1}%", 100.0 * p)),
    );
}

fn picture(ui: &mut Ui, texture: Option<&TextureHandle>, caption: &str) {
    ui.vertical(|ui| {
        let (rect, _) = ui.allocate_exact_size(Vec2::splat(IMAGE_SIDE), egui::Sense::hover());
        match texture {
            Some(t) => {
                let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                ui.painter().image(t.id(), rect, uv, Color32::WHITE);
            }
            None => {
                ui.painter().rect_filled(rect, 4.0, Color32::BLACK);
                ui.painter().text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    "none stored",
                    egui::FontId::proportional(12.0),
                    Color32::from_gray(90),
                );
            }
        }
        ui.add_sized(
            [IMAGE_SIDE, 14.0],
            egui::Label::new(RichText::new(caption).small().color(theme::WEAK_TEXT)).wrap(),
        );
    });
}

/// The model input (grey, or in colour for three channels) with a heatmap over it, as the
/// Grad-CAM panel shows it.
fn cam_texture(
    ctx: &egui::Context,
    record: &SavedPrediction,
    heat: &[f32],
    map: ColorMap,
    which: &str,
) -> Option<TextureHandle> {
    let (h, w) = (record.input.height as usize, record.input.width as usize);
    let channels = if record.input.channels == 3 { 3 } else { 1 };
    let input = record.input.values.get(..channels * h * w)?;
    if heat.len() != h * w {
        return None;
    }
    let picture = crate::heatmap::overlay(input, heat, w, h, 4, map);
    let image = egui::ColorImage::from_rgb(
        [picture.width() as usize, picture.height() as usize],
        picture.as_raw(),
    );
    Some(ctx.load_texture(
        format!("dashboard cam {which} {}", record.id.0),
        image,
        egui::TextureOptions::NEAREST,
    ))
}
