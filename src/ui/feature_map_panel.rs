//! Feature maps: for every conv block, one small image per channel from the block's GPU
//! atlas, each normalised on its own (see `shaders/feature_maps.wgsl`).

use egui::{Color32, Rect, Sense, Stroke, Ui, Vec2};

use super::theme;
use super::view::OverlayView;
use crate::scene::feature_maps::ChannelAtlas;

/// Channel images are never smaller than this (points): smaller hides what they show.
const MIN_CELL: f32 = 30.0;
const MAX_CELL: f32 = 72.0;
const GAP: f32 = 3.0;

/// Draws the panel; a click on a channel returns `(block, channel)` (the channel explorer).
pub fn show(ui: &mut Ui, view: &OverlayView, canvas_empty: bool) -> Option<(usize, usize)> {
    if view.conv_blocks.is_empty() {
        ui.label("This model has no conv blocks.");
        return None;
    }
    let Some(images) = view.images else {
        ui.label(egui::RichText::new("GPU images unavailable").color(theme::WARNING));
        return None;
    };
    let mut clicked = None;
    let live = view.prediction.is_some() && !canvas_empty;
    if !live {
        ui.label(
            egui::RichText::new("Draw a digit to see what each channel responds to.")
                .color(theme::WEAK_TEXT),
        );
    }
    for (index, (block, atlas)) in view.conv_blocks.iter().zip(&images.blocks).enumerate() {
        let mut title = format!(
            "{} · {} channels · {}×{}",
            block.name, block.channels, block.height, block.width
        );
        if view.grad_cam && index == view.cam_block {
            title.push_str(" · Grad-CAM");
        }
        egui::CollapsingHeader::new(title)
            .id_salt(("cnnviz feature maps", index))
            .default_open(true)
            .show(ui, |ui| {
                if let Some(channel) = channel_grid(ui, &block.name, atlas, live) {
                    clicked = Some((index, channel));
                }
            });
    }
    clicked
}

/// The channels on a grid that fills the panel's width; returns the clicked channel.
fn channel_grid(ui: &mut Ui, name: &str, atlas: &ChannelAtlas, live: bool) -> Option<usize> {
    let mut clicked = None;
    let width = ui.available_width();
    let columns = (((width + GAP) / (MIN_CELL + GAP)).floor() as usize).clamp(1, atlas.channels);
    let cell = ((width - GAP * (columns - 1) as f32) / columns as f32).min(MAX_CELL);
    let rows = atlas.channels.div_ceil(columns);
    let size = Vec2::new(
        columns as f32 * (cell + GAP) - GAP,
        rows as f32 * (cell + GAP) - GAP,
    );
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    for channel in 0..atlas.channels {
        let min = rect.min
            + Vec2::new(
                (channel % columns) as f32 * (cell + GAP),
                (channel / columns) as f32 * (cell + GAP),
            );
        let cell_rect = Rect::from_min_size(min, Vec2::splat(cell));
        if live {
            painter.image(atlas.id, cell_rect, atlas.uv(channel), Color32::WHITE);
        } else {
            painter.rect_filled(cell_rect, 2.0, Color32::from_rgb(16, 18, 23));
        }
        let response = ui.interact(
            cell_rect,
            ui.scope_id().with((name, channel)),
            Sense::click(),
        );
        if response.clicked() {
            clicked = Some(channel);
        }
        if response.hovered() {
            painter.rect_stroke(
                cell_rect,
                2.0,
                Stroke::new(1.5, theme::ACCENT),
                egui::StrokeKind::Inside,
            );
        }
        response.on_hover_ui(|ui| {
            ui.label(format!("{name} · channel {channel}"));
            if live {
                let big = Vec2::splat(160.0);
                ui.add(egui::Image::new((atlas.id, big)).uv(atlas.uv(channel)));
                ui.label(
                    egui::RichText::new("brightest = this channel's largest value")
                        .small()
                        .color(theme::WEAK_TEXT),
                );
            }
            ui.label(
                egui::RichText::new("Click: what this channel looks for")
                    .small()
                    .color(theme::WEAK_TEXT),
            );
        });
    }
    clicked
}
