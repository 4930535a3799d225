//! The help window: every shortcut from the one table in `shortcuts`, plus the pointer
//! and touch controls that no key table holds. Two pairs of columns keep it short enough
//! for a 600-point-high window.

use egui::{RichText, Ui};

use super::shortcuts::help_lines;
use super::theme;

/// Pointer and touch controls, handled by the canvas and the scene.
const POINTER_HELP: &[(&str, &str)] = &[
    ("Drag on the canvas", "Draw (mouse, pen or one finger)"),
    ("Click a probability bar", "Explain that class"),
    ("Tap a map in a grid", "Explain with that method or class"),
    ("Left drag in the scene", "Orbit the camera"),
    ("Right or middle drag", "Pan the camera"),
    ("Wheel / pinch", "Zoom the camera"),
    ("Double-click the scene", "Reset the camera"),
    ("Hover a cube", "Layer, channel, position, value"),
];

/// Shows the window while `open`; its close button clears `open`.
pub fn show(ctx: &egui::Context, open: &mut bool) {
    let max_height = ctx.content_rect().height() * 0.8;
    egui::Window::new("Shortcuts")
        .open(open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            egui::ScrollArea::vertical()
                .max_height(max_height)
                .min_scrolled_height(max_height)
                .show(ui, |ui| {
                    let keys: Vec<(String, String)> = help_lines()
                        .into_iter()
                        .map(|(keys, help)| (keys, help.to_string()))
                        .collect();
                    two_column_grid(ui, "cnnviz shortcuts", &keys, |text| {
                        RichText::new(text).monospace().strong()
                    });
                    ui.add_space(6.0);
                    ui.separator();
                    ui.add_space(2.0);
                    let pointer: Vec<(String, String)> = POINTER_HELP
                        .iter()
                        .map(|(gesture, help)| (gesture.to_string(), help.to_string()))
                        .collect();
                    two_column_grid(ui, "cnnviz pointer help", &pointer, |text| {
                        RichText::new(text).color(theme::ACCENT)
                    });
                });
        });
}

/// `(key, help)` rows laid out in two pairs of columns, filled top to bottom.
fn two_column_grid(
    ui: &mut Ui,
    id: &str,
    rows: &[(String, String)],
    key_style: impl Fn(&str) -> RichText,
) {
    let half = rows.len().div_ceil(2);
    egui::Grid::new(id)
        .num_columns(4)
        .spacing([18.0, 4.0])
        .show(ui, |ui| {
            for i in 0..half {
                for (key, help) in [rows.get(i), rows.get(i + half)].into_iter().flatten() {
                    ui.label(key_style(key));
                    ui.label(help.as_str());
                }
                ui.end_row();
            }
        });
}
