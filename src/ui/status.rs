//! Over the scene: the picking result as a tooltip at the pointer, and a status line
//! (messages from the window, then the hover description) along the scene's bottom edge.

use egui::{Align2, Area, Color32, Frame, Id, Order, Rect};

use super::theme;
use super::view::{OverlayView, StatusLevel};

pub fn show(ctx: &egui::Context, view: &OverlayView, scene: Rect) {
    let pointer = ctx.pointer_hover_pos().filter(|p| scene.contains(*p));
    if let (Some(hover), Some(pointer)) = (view.hover, pointer) {
        Area::new(Id::unique("cnnviz hover"))
            .order(Order::Tooltip)
            .interactable(false)
            .fixed_pos(pointer + egui::vec2(16.0, 16.0))
            .show(ctx, |ui| {
                Frame::popup(ui.style()).show(ui, |ui| {
                    ui.label(egui::RichText::new(&hover.layer).strong());
                    let [row, col] = hover.position;
                    match hover.channel {
                        Some(channel) => {
                            ui.label(format!("channel {channel}, row {row}, column {col}"))
                        }
                        None => ui.label(format!("unit {col}")),
                    };
                    ui.label(egui::RichText::new(format!("value {:.4}", hover.value)).monospace());
                });
            });
    }

    let mut lines: Vec<(Color32, String)> = view
        .status
        .iter()
        .map(|m| {
            let colour = match m.level {
                StatusLevel::Info => theme::TEXT,
                StatusLevel::Warning => theme::WARNING,
                StatusLevel::Error => theme::ERROR,
            };
            (colour, m.text.clone())
        })
        .collect();
    if let Some(hover) = view.hover {
        lines.push((theme::WEAK_TEXT, hover.describe()));
    }
    if lines.is_empty() || scene.width() < 40.0 {
        return;
    }
    Area::new(Id::unique("cnnviz status"))
        .order(Order::Foreground)
        .interactable(false)
        .pivot(Align2::LEFT_BOTTOM)
        .fixed_pos(scene.left_bottom() + egui::vec2(10.0, -10.0))
        .show(ctx, |ui| {
            ui.set_max_width(scene.width() - 20.0);
            Frame::new()
                .fill(Color32::from_black_alpha(150))
                .corner_radius(6.0)
                .inner_margin(egui::Margin::symmetric(10, 6))
                .show(ui, |ui| {
                    for (colour, text) in lines {
                        ui.label(egui::RichText::new(text).color(colour));
                    }
                });
        });
}
