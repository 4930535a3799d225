//! The answer: the predicted digit, large, with its confidence, and a bar chart of every
//! class's probability. Clicking a bar asks Grad-CAM to explain that class; clicking the
//! target bar again goes back to the predicted class.

use egui::{Align2, Color32, FontId, Rect, Sense, Stroke, Ui, Vec2};

use super::shortcuts::Action;
use super::theme;
use super::view::OverlayView;
use crate::gpu::CamTarget;

/// The predicted digit and its confidence, or the invitation to draw.
pub fn show_answer(ui: &mut Ui, view: &OverlayView, canvas_empty: bool) {
    let prediction = view.prediction.filter(|_| !canvas_empty);
    let Some(prediction) = prediction else {
        if !canvas_empty {
            // The canvas changed and its prediction is on its way: never show the last
            // drawing's answer under the new drawing.
            ui.vertical_centered(|ui| {
                ui.add_space(6.0);
                ui.label(egui::RichText::new("Computing…").size(28.0).strong());
                ui.add_space(6.0);
            });
            return;
        }
        ui.vertical_centered(|ui| {
            ui.add_space(6.0);
            ui.label(egui::RichText::new("Draw a digit").size(28.0).strong());
            ui.label(
                egui::RichText::new("with mouse, pen or finger: the network answers as you draw")
                    .color(theme::WEAK_TEXT),
            );
            ui.add_space(6.0);
        });
        return;
    };
    let label = class_label(view, prediction.predicted);
    let confidence = prediction
        .probabilities
        .get(prediction.predicted)
        .copied()
        .unwrap_or(0.0);
    ui.horizontal(|ui| {
        let digit = ui.label(
            egui::RichText::new(&label)
                .size(64.0)
                .strong()
                .color(theme::ACCENT),
        );
        digit.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Label, true, format!("predicted {label}"))
        });
        ui.vertical(|ui| {
            ui.add_space(8.0);
            ui.label(egui::RichText::new("Prediction").color(theme::WEAK_TEXT));
            ui.label(
                egui::RichText::new(format!("{:.1} % confident", 100.0 * confidence))
                    .size(20.0)
                    .strong(),
            );
            confidence_bar(ui, confidence);
        });
    });
}

fn confidence_bar(ui: &mut Ui, confidence: f32) {
    let width = ui.available_width().min(180.0);
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 6.0), Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, 3.0, theme::SURFACE);
    let mut filled = rect;
    filled.set_width(rect.width() * confidence.clamp(0.0, 1.0));
    painter.rect_filled(filled, 3.0, theme::ACCENT);
}

/// The probability chart; returns the action of a clicked bar.
pub fn show_chart(ui: &mut Ui, view: &OverlayView, canvas_empty: bool) -> Option<Action> {
    let classes = view.class_labels.len();
    if classes == 0 {
        return None;
    }
    let probabilities = view
        .prediction
        .filter(|_| !canvas_empty)
        .map(|p| p.probabilities);
    let predicted = view
        .prediction
        .filter(|_| !canvas_empty)
        .map(|p| p.predicted);
    let width = ui.available_width();
    let height = (width * 0.5).clamp(110.0, 190.0);
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, height), Sense::hover());
    let painter = ui.painter_at(rect.expand(2.0));
    let label_font = FontId::proportional(15.0);
    let value_font = FontId::proportional(11.0);
    let label_height = 22.0;
    let value_height = 14.0;
    let column = rect.width() / classes as f32;
    let bar_width = (column * 0.62).max(3.0);
    let plot_top = rect.top() + value_height;
    let baseline = rect.bottom() - label_height;
    painter.line_segment(
        [
            egui::pos2(rect.left(), baseline),
            egui::pos2(rect.right(), baseline),
        ],
        Stroke::new(1.0, Color32::from_rgb(52, 60, 72)),
    );
    // Names wider than their columns (a model's own classes, "automobile") would run into
    // their neighbours: then every column says its index, and the name is on hover.
    let indices_only = view.class_labels.iter().any(|label| {
        painter
            .layout_no_wrap(label.clone(), label_font.clone(), theme::TEXT)
            .size()
            .x
            > column - 2.0
    });
    let mut action = None;
    for class in 0..classes {
        let column_rect = Rect::from_min_max(
            egui::pos2(rect.left() + class as f32 * column, rect.top()),
            egui::pos2(rect.left() + (class + 1) as f32 * column, rect.bottom()),
        );
        let label = class_label(view, class);
        let is_target = view.cam_target == CamTarget::Class(class);
        let response = ui.interact(
            column_rect,
            ui.scope_id().with(("bar", class)),
            Sense::click(),
        );
        response.widget_info(|| {
            egui::WidgetInfo::selected(
                egui::Role::Button,
                true,
                is_target,
                format!("class {label}"),
            )
        });
        let p = probabilities
            .and_then(|p| p.get(class).copied())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        if response.hovered() {
            painter.rect_filled(column_rect.shrink(1.0), 4.0, Color32::from_white_alpha(8));
        }
        let response = response.on_hover_text(format!(
            "class {label}: {:.2} %\nclick: Grad-CAM for this class",
            100.0 * p
        ));
        if response.clicked() {
            action = Some(if is_target {
                Action::TargetPredicted
            } else {
                Action::TargetClass(class)
            });
        }
        let centre = column_rect.center().x;
        let bar_height = (baseline - plot_top) * p;
        let bar = Rect::from_min_max(
            egui::pos2(centre - 0.5 * bar_width, baseline - bar_height.max(1.0)),
            egui::pos2(centre + 0.5 * bar_width, baseline),
        );
        let colour = if Some(class) == predicted {
            theme::ACCENT
        } else {
            theme::MUTED
        };
        painter.rect_filled(bar, 3.0, colour);
        if probabilities.is_some() && p >= 0.005 {
            painter.text(
                egui::pos2(centre, bar.top() - 2.0),
                Align2::CENTER_BOTTOM,
                format!("{:.0}", 100.0 * p),
                value_font.clone(),
                theme::WEAK_TEXT,
            );
        }
        let label_colour = if is_target {
            theme::TARGET
        } else {
            theme::TEXT
        };
        painter.text(
            egui::pos2(centre, baseline + 3.0),
            Align2::CENTER_TOP,
            if indices_only {
                class.to_string()
            } else {
                label
            },
            label_font.clone(),
            label_colour,
        );
        if is_target {
            // An amber frame around the column: the class Grad-CAM explains.
            painter.rect_stroke(
                column_rect.shrink(1.0),
                4.0,
                Stroke::new(1.5, theme::TARGET),
                egui::StrokeKind::Inside,
            );
        }
    }
    action
}

/// The Grad-CAM target line under the chart, with the way back to the predicted class.
pub fn show_target(ui: &mut Ui, view: &OverlayView) -> Option<Action> {
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        ui.label(egui::RichText::new("Explaining").color(theme::WEAK_TEXT));
        let predicted = view.cam_target == CamTarget::Predicted;
        if ui.selectable_label(predicted, "predicted class").clicked() && !predicted {
            action = Some(Action::TargetPredicted);
        }
        if let CamTarget::Class(class) = view.cam_target {
            ui.label(
                egui::RichText::new(format!("{} (chosen)", class_label(view, class)))
                    .color(theme::TARGET)
                    .strong(),
            );
        }
    });
    action
}

pub fn class_label(view: &OverlayView, class: usize) -> String {
    view.class_labels
        .get(class)
        .cloned()
        .unwrap_or_else(|| class.to_string())
}
