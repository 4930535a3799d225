//! The comparison grids, in a window over the scene (opened from the Explain panel or with
//! E): every method's map of the drawing, each with its deletion and insertion areas; or
//! the chosen method's map for every class and the counterfactual of the chosen class.
//! Tapping a tile chooses its method (or class). A tile whose answer belongs to an earlier
//! drawing stays, dimmed and marked "Computing…", until the new answer arrives.
//!
//! The maps come back to the CPU from the explanation worker, so their pictures are egui
//! textures made here, once per answer and colour map.

use egui::{Color32, Sense, Stroke, TextureHandle, Ui, Vec2};

use super::explain_panel::{FRAME, computing_badge, fit_aspect, paint_frame, paint_image};
use super::prediction_panel::class_label;
use super::theme;
use super::view::{ExplainGrid, GridTile, MapView, OverlayEvent, OverlayView};
use crate::colormap::ColorMap;
use crate::explain::{ExplainRequest, Explained};
use crate::gpu::CamTarget;

/// The textures of the maps on show, made once per answer and colour map.
#[derive(Default)]
pub struct MapTextures {
    textures: Vec<(TextureKey, TextureHandle)>,
    used: Vec<TextureKey>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct TextureKey {
    generation: u64,
    request: ExplainRequest,
    color_map: ColorMap,
}

impl MapTextures {
    fn get(
        &mut self,
        ctx: &egui::Context,
        key: TextureKey,
        explained: &Explained,
        input: Option<&[f32]>,
        size: [usize; 2],
    ) -> Option<egui::TextureId> {
        self.used.push(key);
        if let Some((_, handle)) = self.textures.iter().find(|(k, _)| *k == key) {
            return Some(handle.id());
        }
        let image = map_image(explained, input, size, key.color_map)?;
        let handle = ctx.load_texture(
            format!("cnnviz explain map {}", self.textures.len()),
            image,
            egui::TextureOptions::LINEAR,
        );
        let id = handle.id();
        self.textures.push((key, handle));
        Some(id)
    }

    /// Frees the textures no tile showed this frame.
    fn end_frame(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.textures.retain(|(k, _)| used.contains(k));
    }
}

/// The map (`size` = `[width, height]`, or square when that does not fit) in the colour
/// map, over a faint copy of the input's ink (the mean of its channels).
fn map_image(
    explained: &Explained,
    input: Option<&[f32]>,
    size: [usize; 2],
    color_map: ColorMap,
) -> Option<egui::ColorImage> {
    let len = explained.map.len();
    let [width, height] = if size[0] * size[1] == len && len > 0 {
        size
    } else {
        let side = (len as f64).sqrt().round() as usize;
        if side == 0 || side * side != len {
            return None;
        }
        [side, side]
    };
    let ink = input.filter(|i| !i.is_empty() && i.len().is_multiple_of(len));
    let channels = ink.map_or(1, |i| i.len() / len);
    let grey = |ink: &[f32], i: usize| -> f32 {
        (0..channels).map(|c| ink[c * len + i]).sum::<f32>() / channels as f32
    };
    let pixels = explained
        .map
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let [r, g, b] = color_map.rgb8(v.clamp(0.0, 1.0));
            let white = ink.map_or(0.0, |ink| grey(ink, i).clamp(0.0, 1.0) * 0.3);
            let mix = |c: u8| (f32::from(c) * (1.0 - white) + 255.0 * white).round() as u8;
            Color32::from_rgb(mix(r), mix(g), mix(b))
        })
        .collect();
    Some(egui::ColorImage::new([width, height], pixels))
}

/// Shows the open grid (if any); closing it asks the window to close it.
pub fn show(
    ctx: &egui::Context,
    view: &OverlayView,
    textures: &mut MapTextures,
    events: &mut Vec<OverlayEvent>,
) {
    let Some(grid) = view.explain.grid else {
        textures.end_frame();
        return;
    };
    let content = ctx.content_rect();
    let columns = match grid {
        ExplainGrid::Methods => 5,
        ExplainGrid::Classes => 6,
    };
    let rows = view.explain.tiles.len().div_ceil(columns).max(1);
    let gap = 10.0;
    // Tiles as large as the screen's height allows (1280×720 included) and at most two
    // thirds of its width; the window is as wide as its tiles.
    let by_width = ((content.width() * 0.66).clamp(320.0, 900.0) - gap * (columns - 1) as f32)
        / columns as f32;
    let by_height = (content.height() * 0.84 - 80.0) / rows as f32 - 46.0;
    let side = by_width.min(by_height).clamp(56.0, 170.0).floor();
    let width = side * columns as f32 + gap * (columns - 1) as f32;
    let mut open = true;
    egui::Window::new("Compare explanations")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .default_width(width)
        .max_width(width)
        .default_pos(content.center() - Vec2::new(width / 2.0, content.height() * 0.45))
        .show(ctx, |ui| {
            ui.set_width(width);
            tabs(ui, grid, events);
            ui.add_space(4.0);
            if view.explain.input.is_none() || view.prediction.is_none() {
                ui.label(egui::RichText::new("Draw a digit first.").color(theme::WEAK_TEXT));
                return;
            }
            egui::Grid::new("cnnviz explain tiles")
                .spacing([gap, 6.0])
                .show(ui, |ui| {
                    for (i, tile) in view.explain.tiles.iter().enumerate() {
                        if i > 0 && i % columns == 0 {
                            ui.end_row();
                        }
                        ui.vertical(|ui| {
                            ui.set_width(side);
                            show_tile(ui, view, tile, side, textures, events);
                        });
                    }
                });
            ui.add_space(2.0);
            ui.label(
                egui::RichText::new(match grid {
                    ExplainGrid::Methods => {
                        "del: deletion area (lower: the map finds what the network needs) · \
                         ins: insertion area (higher is better). Tap a map to choose it."
                    }
                    ExplainGrid::Classes => {
                        "Why each class: tap one to explain it. The last map shows what \
                         speaks against the chosen class (negated gradients)."
                    }
                })
                .small()
                .color(theme::WEAK_TEXT),
            );
        });
    if !open {
        events.push(OverlayEvent::SetExplainGrid(None));
    }
    textures.end_frame();
}

fn tabs(ui: &mut Ui, grid: ExplainGrid, events: &mut Vec<OverlayEvent>) {
    let height = ui.spacing().interact_size.y + 4.0;
    ui.horizontal(|ui| {
        for (tab, text) in [
            (ExplainGrid::Methods, "Every method"),
            (ExplainGrid::Classes, "Every class"),
        ] {
            let button =
                egui::Button::selectable(grid == tab, text).min_size(egui::vec2(140.0, height));
            if ui.add(button).clicked() && grid != tab {
                events.push(OverlayEvent::SetExplainGrid(Some(tab)));
            }
        }
    });
}

fn show_tile(
    ui: &mut Ui,
    view: &OverlayView,
    tile: &GridTile,
    side: f32,
    textures: &mut MapTextures,
    events: &mut Vec<OverlayEvent>,
) {
    let request = tile.request;
    let chosen = match view.explain.grid {
        Some(ExplainGrid::Classes) => {
            !request.counterfactual && request.class.is_some_and(|c| is_target(view, c))
        }
        _ => request.method == view.explain.method,
    };
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::click());
    let texture = tile.map.and_then(|m| {
        let explained = m.result.ok()?;
        let key = TextureKey {
            generation: m.generation,
            request,
            color_map: view.color_map,
        };
        textures.get(
            ui.ctx(),
            key,
            explained,
            view.explain.input,
            view.explain.input_size,
        )
    });
    let stale = texture.is_some() && tile.map.is_some_and(|m| !m.current);
    let tint = if stale {
        Color32::from_gray(110)
    } else {
        Color32::WHITE
    };
    let empty = match tile.map.map(|m| m.result) {
        Some(Err(_)) => "failed",
        _ => "Computing…",
    };
    let picture = fit_aspect(rect, view.explain.input_size);
    paint_image(ui.painter(), picture, texture, tint, empty);
    if stale {
        computing_badge(ui, rect);
    }
    let border = if chosen {
        Stroke::new(2.5, theme::TARGET)
    } else {
        Stroke::new(1.0, FRAME)
    };
    paint_frame(ui.painter(), rect, border);
    let response = match tile.map.and_then(|m| m.result.err()) {
        Some(why) => response.on_hover_text(why),
        None => response,
    };
    if response.clicked() {
        match view.explain.grid {
            Some(ExplainGrid::Classes) => {
                if let Some(class) = request.class.filter(|_| !request.counterfactual) {
                    events.push(OverlayEvent::SetCamTarget(CamTarget::Class(class)));
                }
            }
            _ => events.push(OverlayEvent::SetMethod(request.method)),
        }
    }
    let title = match view.explain.grid {
        Some(ExplainGrid::Classes) => class_title(view, tile),
        _ => request.method.label().to_string(),
    };
    ui.label(egui::RichText::new(title).strong().size(13.0));
    ui.label(
        egui::RichText::new(scores(tile.map))
            .small()
            .color(theme::WEAK_TEXT),
    );
}

/// Whether `class` is the class the panel explains.
fn is_target(view: &OverlayView, class: usize) -> bool {
    match view.cam_target {
        CamTarget::Class(c) => c == class,
        CamTarget::Predicted => view.prediction.is_some_and(|p| p.predicted == class),
    }
}

fn class_title(view: &OverlayView, tile: &GridTile) -> String {
    let explained_class = tile
        .map
        .and_then(|m| m.result.ok())
        .map(|e| e.class)
        .or(tile.request.class);
    match (tile.request.counterfactual, explained_class) {
        (true, Some(c)) => format!("against {}", class_label(view, c)),
        (true, None) => "against".to_string(),
        (false, Some(c)) => format!("why {}", class_label(view, c)),
        (false, None) => "why".to_string(),
    }
}

/// "del 0.12 · ins 0.85", or where the answer stands.
fn scores(map: Option<MapView>) -> String {
    match map.map(|m| (m.result, m.current)) {
        None => "Computing…".to_string(),
        Some((Err(_), _)) => "failed (hover)".to_string(),
        Some((Ok(e), _)) => match &e.faithfulness {
            Some(f) => format!("del {:.2} · ins {:.2}", f.deletion_auc, f.insertion_auc),
            None => format!(
                "p {:.2}",
                probability(&e.logits, e.class).unwrap_or(f32::NAN)
            ),
        },
    }
}

/// The softmax probability of `class` from the logits.
fn probability(logits: &[f32], class: usize) -> Option<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits.get(class).map(|l| (l - max).exp() / sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_image_is_the_colour_map_lightened_by_the_ink() {
        let explained = Explained {
            method: crate::explain::Method::Saliency,
            class: 0,
            counterfactual: false,
            block: None,
            logits: vec![0.0; 10],
            attribution: vec![],
            raw: vec![],
            raw_height: 0,
            raw_width: 0,
            map: vec![0.0, 1.0, 0.5, 0.25],
            faithfulness: None,
        };
        let image = map_image(
            &explained,
            Some(&[0.0, 0.0, 0.0, 1.0]),
            [0, 0],
            ColorMap::Viridis,
        )
        .expect("a square map");
        let [r, g, b] = ColorMap::Viridis.rgb8(1.0);
        assert_eq!(image.pixels[1], Color32::from_rgb(r, g, b));
        let plain = ColorMap::Viridis.rgb8(0.25);
        assert!(image.pixels[3].r() > plain[0], "ink lightens the map");
        assert!(probability(&[0.0, 0.0], 1).is_some_and(|p| (p - 0.5).abs() < 1e-6));
    }

    #[test]
    fn a_non_square_map_keeps_its_shape_and_a_colour_input_lightens_by_its_mean() {
        let explained = Explained {
            method: crate::explain::Method::Saliency,
            class: 0,
            counterfactual: false,
            block: None,
            logits: vec![0.0; 2],
            attribution: vec![],
            raw: vec![],
            raw_height: 0,
            raw_width: 0,
            map: vec![0.0; 6],
            faithfulness: None,
        };
        // Three channels of a 3 wide × 2 high input; pixel 5 is white in R, G and B.
        let mut input = vec![0.0; 18];
        for c in 0..3 {
            input[c * 6 + 5] = 1.0;
        }
        input[2] = 1.0; // pixel 2 only in R: a third as light
        let image =
            map_image(&explained, Some(&input), [3, 2], ColorMap::Viridis).expect("a 3×2 map");
        assert_eq!(image.size, [3, 2]);
        let base = image.pixels[0].r();
        let (full, third) = (image.pixels[5].r() - base, image.pixels[2].r() - base);
        assert!(full > 0 && third > 0 && third < full, "{full} {third}");
    }
}
