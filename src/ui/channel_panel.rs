//! What one conv channel looks for: its weights (a k×k grid per input channel, orange
//! positive, blue negative), its top examples from the MNIST test set (the digits that
//! excite it most, by its strongest response or its mean, with the input region that fed
//! the strongest response outlined) and, when computed, its feature visualisation. A
//! touch on an example puts that digit on the canvas.

use std::collections::HashMap;

use egui::{ColorImage, Rect, RichText, Stroke, TextureHandle, Ui, Vec2};

use super::theme;
use crate::survey::Statistic;

/// One top example, ready to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelExample {
    /// Index into the test set.
    pub image: usize,
    /// 8-bit grey pixels, `side × side`, ink bright.
    pub pixels: Vec<u8>,
    pub side: usize,
    pub label: String,
    pub value: f32,
    /// Input rows and columns (half-open) that feed the strongest response.
    pub region: Option<([usize; 2], [usize; 2])>,
}

/// What the channel window shows this frame.
#[derive(Clone, Copy, Debug)]
pub struct ChannelView<'a> {
    /// e.g. `conv2 · channel 5`.
    pub title: &'a str,
    /// `in_channels × kernel × kernel`.
    pub weights: &'a [f32],
    pub kernel: usize,
    pub statistic: Statistic,
    /// The top examples, or why there are none yet ("Computing… 500/10000").
    pub examples: Result<&'a [ChannelExample], &'a str>,
    /// An input optimised to excite the channel (ink 0–255, `side × side`) as far as its
    /// optimisation has come, with a note ("step 48 of 256"), or why there is none.
    pub feature_vis: Result<(&'a [u8], usize, &'a str), &'a str>,
    pub large: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    SetStatistic(Statistic),
    /// Put this test image on the canvas.
    Open(usize),
}

/// Example and feature-visualisation textures, made once per picture.
#[derive(Default)]
pub struct ChannelPanel {
    textures: HashMap<(usize, u64), TextureHandle>,
}

impl ChannelPanel {
    pub fn show(&mut self, ui: &mut Ui, view: &ChannelView) -> Option<ChannelEvent> {
        let mut event = None;
        ui.label(RichText::new(view.title).strong().color(theme::TEXT));
        ui.label(RichText::new("Weights").color(theme::WEAK_TEXT));
        weights(ui, view.weights, view.kernel);
        ui.label(RichText::new("An input optimised to excite it").color(theme::WEAK_TEXT));
        match view.feature_vis {
            Ok((pixels, side, note)) if pixels.len() == side * side => {
                let texture = self.texture(ui, picture_key(pixels), pixels, side);
                let size = if view.large { 140.0 } else { 96.0 };
                ui.horizontal(|ui| {
                    ui.add(egui::Image::new((texture.id(), Vec2::splat(size))));
                    ui.label(RichText::new(note).small().color(theme::WEAK_TEXT));
                });
            }
            Ok((_, _, note)) | Err(note) => {
                ui.label(RichText::new(note).small().color(theme::WEAK_TEXT));
            }
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new("Test digits that excite it most, by").color(theme::WEAK_TEXT));
            for (statistic, name, help) in [
                (Statistic::Max, "strongest", "its strongest single response"),
                (Statistic::Mean, "mean", "its mean response over the map"),
            ] {
                if ui
                    .selectable_label(view.statistic == statistic, name)
                    .on_hover_text(help)
                    .clicked()
                {
                    event = Some(ChannelEvent::SetStatistic(statistic));
                }
            }
        });
        match view.examples {
            Err(why) => {
                ui.label(RichText::new(why).color(theme::WEAK_TEXT));
            }
            Ok(examples) => {
                let side = if view.large { 84.0 } else { 60.0 };
                ui.horizontal_wrapped(|ui| {
                    for example in examples {
                        if example.pixels.len() != example.side * example.side {
                            continue;
                        }
                        let texture =
                            self.texture(ui, (example.image, 0), &example.pixels, example.side);
                        // A plain image (its rect is the picture's), so the region outline lands
                        // on the pixels it names.
                        let response = ui
                            .add(
                                egui::Image::new((texture.id(), Vec2::splat(side)))
                                    .sense(egui::Sense::click()),
                            )
                            .on_hover_text(format!(
                                "test digit #{} (a {}), response {:.3}; click to draw it",
                                example.image, example.label, example.value
                            ));
                        if let Some((rows, cols)) = example.region {
                            let inner = response.rect;
                            let scale = inner.width() / example.side as f32;
                            let r = Rect::from_min_max(
                                inner.min + Vec2::new(cols[0] as f32, rows[0] as f32) * scale,
                                inner.min + Vec2::new(cols[1] as f32, rows[1] as f32) * scale,
                            );
                            ui.painter().rect_stroke(
                                r,
                                0.0,
                                Stroke::new(1.5, theme::TARGET),
                                egui::StrokeKind::Inside,
                            );
                        }
                        if response.clicked() {
                            event = Some(ChannelEvent::Open(example.image));
                        }
                    }
                });
            }
        }
        // Only this frame's pictures keep their textures: memory stays bounded.
        let mut keep: Vec<(usize, u64)> = match view.examples {
            Ok(examples) => examples.iter().map(|e| (e.image, 0)).collect(),
            Err(_) => Vec::new(),
        };
        if let Ok((pixels, _, _)) = view.feature_vis {
            keep.push(picture_key(pixels));
        }
        self.textures.retain(|k, _| keep.contains(k));
        event
    }

    fn texture(
        &mut self,
        ui: &Ui,
        key: (usize, u64),
        pixels: &[u8],
        side: usize,
    ) -> &TextureHandle {
        self.textures.entry(key).or_insert_with(|| {
            ui.ctx().load_texture(
                format!("cnnviz channel picture {key:?}"),
                ColorImage::from_gray([side, side], pixels),
                egui::TextureOptions::NEAREST,
            )
        })
    }
}

/// A growing picture's texture key: a new one whenever its pixels change.
fn picture_key(pixels: &[u8]) -> (usize, u64) {
    let hash = pixels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (usize::MAX, hash)
}

/// Each input channel's k×k kernel as a small heat grid, scaled by the largest |weight|.
fn weights(ui: &mut Ui, weights: &[f32], kernel: usize) {
    let per = kernel * kernel;
    if per == 0 {
        return;
    }
    let scale = weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    let cell = if weights.len() / per <= 4 { 14.0 } else { 6.0 };
    ui.horizontal_wrapped(|ui| {
        for (ic, kernel_weights) in weights.chunks_exact(per).enumerate() {
            let side = kernel as f32 * cell;
            let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), egui::Sense::hover());
            for (i, &w) in kernel_weights.iter().enumerate() {
                let min =
                    rect.min + Vec2::new((i % kernel) as f32 * cell, (i / kernel) as f32 * cell);
                ui.painter().rect_filled(
                    Rect::from_min_size(min, Vec2::splat(cell)),
                    0.0,
                    super::inspector_panel::heat(w, scale),
                );
            }
            response.on_hover_text(format!("input channel {ic}"));
        }
    });
}
