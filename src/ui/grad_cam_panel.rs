//! Where the network looked: the Grad-CAM heatmap over the model input beside the input
//! itself (both GPU textures), the target conv block, the colour map, and a colour bar.

use egui::{Color32, Rect, Sense, Stroke, Ui, Vec2};

use super::prediction_panel::class_label;
use super::theme;
use super::view::{OverlayEvent, OverlayView};
use crate::colormap::ColorMap;
use crate::gpu::CamTarget;

pub fn show(ui: &mut Ui, view: &OverlayView, canvas_empty: bool, events: &mut Vec<OverlayEvent>) {
    let has_prediction = view.prediction.is_some() && !canvas_empty;
    let gap = ui.spacing().item_spacing.x;
    let side = ((ui.available_width() - gap) / 2.0).min(260.0).floor();
    ui.horizontal(|ui| {
        let images = view.images;
        ui.vertical(|ui| {
            let texture = images.map(|i| i.grad_cam.id);
            let shown = has_prediction && view.grad_cam;
            image_square(
                ui,
                side,
                texture.filter(|_| shown),
                placeholder(view, canvas_empty),
            )
            .on_hover_text("Grad-CAM heatmap over the model input");
            ui.label(
                egui::RichText::new("Grad-CAM")
                    .small()
                    .color(theme::WEAK_TEXT),
            );
        });
        ui.vertical(|ui| {
            let texture = images.map(|i| i.input.id);
            image_square(ui, side, texture.filter(|_| has_prediction), "no input")
                .on_hover_text("What the network sees: the drawing cropped, scaled and centred");
            let caption = match images {
                Some(i) => format!("Model input {}×{}", i.input.width, i.input.height),
                None => "Model input".to_string(),
            };
            ui.label(egui::RichText::new(caption).small().color(theme::WEAK_TEXT));
        });
    });
    if view.images.is_none() {
        ui.label(egui::RichText::new("GPU images unavailable").color(theme::WARNING));
    }
    colour_bar(ui, view.color_map, 2.0 * side + gap);
    if view.conv_blocks.is_empty() {
        ui.label(
            egui::RichText::new("Grad-CAM is off: this model has no conv layer to explain.")
                .color(theme::WEAK_TEXT),
        );
    } else if has_prediction && view.grad_cam {
        let class = match view.cam_target {
            CamTarget::Predicted => view.prediction.map(|p| p.predicted).unwrap_or(0),
            CamTarget::Class(c) => c,
        };
        let block = view
            .conv_blocks
            .get(view.cam_block)
            .map(|b| b.name.as_str());
        ui.label(format!(
            "Evidence for {} at {}",
            class_label(view, class),
            block.unwrap_or("the last conv block")
        ));
    }

    egui::Grid::new("cnnviz grad-cam controls")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let label = ui.label("Layer");
            let current = view
                .conv_blocks
                .get(view.cam_block)
                .map(|b| b.name.clone())
                .unwrap_or_else(|| "none".into());
            egui::ComboBox::from_id_salt("cnnviz cam block")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for (i, block) in view.conv_blocks.iter().enumerate() {
                        let text = format!(
                            "{} · {}×{}×{}",
                            block.name, block.channels, block.height, block.width
                        );
                        if ui.selectable_label(i == view.cam_block, text).clicked()
                            && i != view.cam_block
                        {
                            events.push(OverlayEvent::SetCamBlock(i));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

            let label = ui.label("Colours");
            egui::ComboBox::from_id_salt("cnnviz colour map")
                .selected_text(color_map_name(view.color_map))
                .show_ui(ui, |ui| {
                    for map in [ColorMap::Viridis, ColorMap::Turbo] {
                        if ui
                            .selectable_label(map == view.color_map, color_map_name(map))
                            .clicked()
                            && map != view.color_map
                        {
                            events.push(OverlayEvent::SetColorMap(map));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

            ui.label("Grad-CAM");
            let mut on = view.grad_cam;
            if ui.checkbox(&mut on, "show").changed() {
                events.push(OverlayEvent::SetGradCam(on));
            }
            ui.end_row();
        });
}

pub fn color_map_name(map: ColorMap) -> &'static str {
    match map {
        ColorMap::Viridis => "Viridis",
        ColorMap::Turbo => "Turbo",
    }
}

fn placeholder(view: &OverlayView, canvas_empty: bool) -> &'static str {
    if canvas_empty || view.prediction.is_none() {
        "draw a digit"
    } else {
        "Grad-CAM off"
    }
}

/// A square showing `texture`, or a dark square with `empty_text`.
fn image_square(
    ui: &mut Ui,
    side: f32,
    texture: Option<egui::TextureId>,
    empty_text: &str,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    let painter = ui.painter();
    match texture {
        Some(id) => {
            let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
            painter.image(id, rect, uv, Color32::WHITE);
        }
        None => {
            painter.rect_filled(rect, 6.0, Color32::BLACK);
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                empty_text,
                egui::FontId::proportional(13.0),
                Color32::from_gray(90),
            );
        }
    }
    painter.rect_stroke(
        rect,
        6.0,
        Stroke::new(1.0, Color32::from_rgb(52, 60, 72)),
        egui::StrokeKind::Outside,
    );
    response
}

/// The colour map from 0 to 1, so a colour can be read as a value.
fn colour_bar(ui: &mut Ui, map: ColorMap, width: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 24.0), Sense::hover());
    let bar = Rect::from_min_size(rect.min, Vec2::new(width, 8.0));
    let mut mesh = egui::Mesh::default();
    let steps = 32;
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        let [r, g, b] = map.rgb8(t);
        let colour = Color32::from_rgb(r, g, b);
        let x = bar.left() + t * bar.width();
        mesh.colored_vertex(egui::pos2(x, bar.top()), colour);
        mesh.colored_vertex(egui::pos2(x, bar.bottom()), colour);
        if i > 0 {
            let k = 2 * i as u32;
            mesh.add_triangle(k - 2, k - 1, k);
            mesh.add_triangle(k - 1, k + 1, k);
        }
    }
    let painter = ui.painter();
    painter.add(egui::Shape::mesh(mesh));
    let font = egui::FontId::proportional(12.0);
    for (text, x, align) in [
        ("low", bar.left(), egui::Align2::LEFT_TOP),
        ("high", bar.right(), egui::Align2::RIGHT_TOP),
    ] {
        painter.text(
            egui::pos2(x, bar.bottom() + 2.0),
            align,
            text,
            font.clone(),
            theme::WEAK_TEXT,
        );
    }
}
