//! The Explain panel: which explanation method, which class, which conv block and colour
//! map; the chosen method's map over the model input beside the input itself (both GPU
//! textures: the network writes Grad-CAM's map, the window writes any other method's),
//! a colour bar, the deletion and insertion curves with their areas, and the buttons that
//! open the comparison grids.

use egui::{Color32, Rect, Sense, Stroke, Ui, Vec2};

use super::prediction_panel::class_label;
use super::theme;
use super::view::{ExplainGrid, MapView, OverlayEvent, OverlayView};
use crate::colormap::ColorMap;
use crate::explain::{Faithfulness, Family, Method};
use crate::gpu::CamTarget;

pub fn show(ui: &mut Ui, view: &OverlayView, canvas_empty: bool, events: &mut Vec<OverlayEvent>) {
    let has_prediction = view.prediction.is_some() && !canvas_empty;
    let explain = &view.explain;
    let gap = ui.spacing().item_spacing.x;
    let side = ((ui.available_width() - gap) / 2.0).min(260.0).floor();
    let stale = explain.chosen.is_none_or(|m| !m.current);
    ui.horizontal(|ui| {
        let images = view.images;
        let size = images.map_or(explain.input_size, |i| [i.input.width, i.input.height]);
        ui.vertical(|ui| {
            let texture = images.map(|i| i.grad_cam.id);
            // Another method's map reaches the texture only once it has come back.
            let shown = has_prediction && view.grad_cam && explain.in_texture;
            let response = image_square(
                ui,
                side,
                texture.filter(|_| shown),
                size,
                placeholder(view, canvas_empty),
            );
            if shown && stale && explain.method != Method::GradCam {
                computing_badge(ui, response.rect);
            }
            response.on_hover_text(format!("{} over the model input", explain.method));
            ui.label(
                egui::RichText::new(explain.method.label())
                    .small()
                    .color(theme::WEAK_TEXT),
            );
        });
        ui.vertical(|ui| {
            let texture = images.map(|i| i.input.id);
            image_square(
                ui,
                side,
                texture.filter(|_| has_prediction),
                size,
                "no input",
            )
            .on_hover_text("What the network sees: the drawing prepared for the model's input");
            let caption = match images {
                // H×W, as the layer labels write shapes.
                Some(i) => format!("Model input {}×{}", i.input.height, i.input.width),
                None => "Model input".to_string(),
            };
            ui.label(egui::RichText::new(caption).small().color(theme::WEAK_TEXT));
        });
    });
    if view.images.is_none() {
        ui.label(egui::RichText::new("GPU images unavailable").color(theme::WARNING));
    }
    colour_bar(ui, view.color_map, 2.0 * side + gap);
    if let Some(why) = explain.unavailable {
        ui.label(egui::RichText::new(why).color(theme::WARNING));
    }
    if view.conv_blocks.is_empty() && explain.method.uses_block() {
        ui.label(
            egui::RichText::new(format!(
                "{} is off: this model has no conv layer to explain.",
                explain.method
            ))
            .color(theme::WEAK_TEXT),
        );
    } else if has_prediction && view.grad_cam {
        let class = match view.cam_target {
            CamTarget::Predicted => view.prediction.map(|p| p.predicted).unwrap_or(0),
            CamTarget::Class(c) => c,
        };
        let at = if explain.method.uses_block() {
            let block = view.conv_blocks.get(view.cam_block);
            format!(
                " at {}",
                block.map_or("the last conv block", |b| b.name.as_str())
            )
        } else {
            String::new()
        };
        ui.label(format!("Evidence for {}{at}", class_label(view, class)));
    }

    controls(ui, view, events);

    if has_prediction && view.grad_cam {
        faithfulness_section(ui, explain.chosen, 2.0 * side + gap);
    }
    grid_buttons(ui, view.explain.grid, events);
}

/// Method, class, layer, colours, on/off.
fn controls(ui: &mut Ui, view: &OverlayView, events: &mut Vec<OverlayEvent>) {
    egui::Grid::new("cnnviz explain controls")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let label = ui.label("Method");
            method_picker(ui, view.explain.method, events)
                .labelled_by(label.id)
                .on_hover_text("Next method: N");
            ui.end_row();

            let label = ui.label("Class");
            let predicted = view.prediction.map(|p| p.predicted);
            let current = match view.cam_target {
                CamTarget::Predicted => match predicted {
                    Some(c) => format!("predicted ({})", class_label(view, c)),
                    None => "predicted".to_string(),
                },
                CamTarget::Class(c) => class_label(view, c),
            };
            egui::ComboBox::from_id_salt("cnnviz explain class")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    let is_predicted = view.cam_target == CamTarget::Predicted;
                    if ui.selectable_label(is_predicted, "predicted").clicked() && !is_predicted {
                        events.push(OverlayEvent::SetCamTarget(CamTarget::Predicted));
                    }
                    for class in 0..view.class_labels.len() {
                        let target = CamTarget::Class(class);
                        if ui
                            .selectable_label(view.cam_target == target, class_label(view, class))
                            .clicked()
                            && view.cam_target != target
                        {
                            events.push(OverlayEvent::SetCamTarget(target));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

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

            ui.label("Map");
            let mut on = view.grad_cam;
            if ui.checkbox(&mut on, "show").changed() {
                events.push(OverlayEvent::SetGradCam(on));
            }
            ui.end_row();
        });
}

/// Every method, grouped by the library it follows.
fn method_picker(ui: &mut Ui, method: Method, events: &mut Vec<OverlayEvent>) -> egui::Response {
    // Half the screen at most, scrolling past that: seventeen rows do not fit below the
    // picker at 1280×720.
    let height = ui.ctx().content_rect().height() * 0.5;
    egui::ComboBox::from_id_salt("cnnviz explain method")
        .selected_text(method.label())
        .height(height)
        .show_ui(ui, |ui| {
            for (family, heading) in [
                (Family::Cam, "CAM (pytorch-grad-cam)"),
                (Family::Attribution, "Attribution (Captum)"),
            ] {
                ui.label(egui::RichText::new(heading).small().color(theme::WEAK_TEXT));
                for m in Method::ALL.into_iter().filter(|m| m.family() == family) {
                    if ui.selectable_label(m == method, m.label()).clicked() && m != method {
                        events.push(OverlayEvent::SetMethod(m));
                    }
                }
            }
        })
        .response
}

/// The deletion and insertion curves of the chosen method and their areas.
fn faithfulness_section(ui: &mut Ui, chosen: Option<MapView>, width: f32) {
    ui.add_space(4.0);
    let text = |t: String| egui::RichText::new(t).small().color(theme::WEAK_TEXT);
    match chosen.map(|m| (m.result, m.current)) {
        Some((Ok(explained), current)) => match &explained.faithfulness {
            Some(f) => {
                curves(ui, f, width, !current);
                ui.label(text(format!(
                    "Deletion area {:.3} (lower: faithful) · insertion area {:.3} (higher: faithful){}",
                    f.deletion_auc,
                    f.insertion_auc,
                    if current { "" } else { " · Computing…" }
                )));
            }
            None => {
                ui.label(text("No deletion/insertion curves".into()));
            }
        },
        Some((Err(why), true)) => {
            ui.label(egui::RichText::new(why).color(theme::WARNING));
        }
        _ => {
            ui.label(text("Deletion / insertion curves: Computing…".into()));
        }
    }
}

/// Deletion (falling is good) and insertion (rising is good) over the share of pixels
/// touched, probability 0..1 upward.
fn curves(ui: &mut Ui, f: &Faithfulness, width: f32, stale: bool) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 112.0), Sense::hover());
    let painter = ui.painter();
    // A legend row, the plot, an axis row.
    let plot = Rect::from_min_max(
        rect.min + Vec2::new(2.0, 16.0),
        rect.max - Vec2::new(2.0, 14.0),
    );
    painter.rect_filled(plot, 2.0, Color32::from_rgb(14, 16, 20));
    let dim = if stale { 0.4 } else { 1.0 };
    let deletion = theme::ERROR.gamma_multiply(dim);
    let insertion = theme::ACCENT.gamma_multiply(dim);
    for (values, colour) in [(&f.deletion, deletion), (&f.insertion, insertion)] {
        let steps = values.len().saturating_sub(1).max(1) as f32;
        let points: Vec<egui::Pos2> = values
            .iter()
            .enumerate()
            .map(|(i, p)| {
                egui::pos2(
                    plot.left() + plot.width() * i as f32 / steps,
                    plot.bottom() - plot.height() * p.clamp(0.0, 1.0),
                )
            })
            .collect();
        painter.add(egui::Shape::line(points, Stroke::new(2.0, colour)));
    }
    let font = egui::FontId::proportional(11.0);
    let text = |pos: egui::Pos2, align: egui::Align2, text: &str, colour: Color32| {
        painter.text(pos, align, text, font.clone(), colour);
    };
    text(
        rect.left_top(),
        egui::Align2::LEFT_TOP,
        "— deletion: probability as pixels are removed",
        deletion,
    );
    text(
        rect.right_top(),
        egui::Align2::RIGHT_TOP,
        "— insertion",
        insertion,
    );
    let axis = plot.bottom() + 1.0;
    text(
        egui::pos2(plot.left(), axis),
        egui::Align2::LEFT_TOP,
        "0 % of pixels",
        theme::WEAK_TEXT,
    );
    text(
        egui::pos2(plot.right(), axis),
        egui::Align2::RIGHT_TOP,
        "100 %",
        theme::WEAK_TEXT,
    );
}

/// The two comparison grids' toggles, touch-sized.
fn grid_buttons(ui: &mut Ui, open: Option<ExplainGrid>, events: &mut Vec<OverlayEvent>) {
    let spacing = ui.spacing().item_spacing.x;
    let width = ((ui.available_width() - spacing) / 2.0).max(60.0);
    let height = ui.spacing().interact_size.y + 4.0;
    ui.horizontal(|ui| {
        for (grid, text, help) in [
            (
                ExplainGrid::Methods,
                "Compare methods",
                "Every method's map with its deletion/insertion areas (E)",
            ),
            (
                ExplainGrid::Classes,
                "Every class",
                "This method's map for each class, and the counterfactual",
            ),
        ] {
            let on = open == Some(grid);
            let button = egui::Button::selectable(on, text).min_size(egui::vec2(width, height));
            if ui.add(button).on_hover_text(help).clicked() {
                events.push(OverlayEvent::SetExplainGrid((!on).then_some(grid)));
            }
        }
    });
}

/// "Computing…" over a map that belongs to an earlier drawing.
pub fn computing_badge(ui: &Ui, rect: Rect) {
    let painter = ui.painter();
    let band = Rect::from_center_size(rect.center(), Vec2::new(rect.width(), 22.0));
    painter.rect_filled(band, 0.0, Color32::from_black_alpha(170));
    painter.text(
        band.center(),
        egui::Align2::CENTER_CENTER,
        "Computing…",
        egui::FontId::proportional(13.0),
        theme::TEXT,
    );
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
    } else if !view.grad_cam {
        "map off"
    } else {
        "Computing…"
    }
}

/// A square showing `texture`, or a dark square with `empty_text`.
pub fn image_square(
    ui: &mut Ui,
    side: f32,
    texture: Option<egui::TextureId>,
    size: [usize; 2],
    empty_text: &str,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    let picture = fit_aspect(rect, size);
    paint_image(ui.painter(), picture, texture, Color32::WHITE, empty_text);
    paint_frame(ui.painter(), picture, Stroke::new(1.0, FRAME));
    response
}

/// The largest rectangle of an image of `size` (`[width, height]`) centred in `rect`,
/// so a non-square model input is not stretched; `rect` itself for `[0, 0]`.
pub fn fit_aspect(rect: Rect, size: [usize; 2]) -> Rect {
    let [w, h] = size.map(|s| s as f32);
    if w <= 0.0 || h <= 0.0 {
        return rect;
    }
    let scale = (rect.width() / w).min(rect.height() / h);
    Rect::from_center_size(rect.center(), Vec2::new(w, h) * scale)
}

/// The colour of an image's frame.
pub const FRAME: Color32 = Color32::from_rgb(52, 60, 72);

/// `texture` over `rect` multiplied by `tint`, or a dark square with `empty_text`.
pub fn paint_image(
    painter: &egui::Painter,
    rect: Rect,
    texture: Option<egui::TextureId>,
    tint: Color32,
    empty_text: &str,
) {
    match texture {
        Some(id) => {
            let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
            painter.image(id, rect, uv, tint);
        }
        None => {
            painter.rect_filled(rect, 6.0, Color32::BLACK);
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                empty_text,
                egui::FontId::proportional(13.0),
                Color32::from_gray(110),
            );
        }
    }
}

/// A rounded frame around an image.
pub fn paint_frame(painter: &egui::Painter, rect: Rect, stroke: Stroke) {
    painter.rect_stroke(rect, 6.0, stroke, egui::StrokeKind::Outside);
}

/// The colour map from 0 to 1, so a colour can be read as a value.
pub fn colour_bar(ui: &mut Ui, map: ColorMap, width: f32) {
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
