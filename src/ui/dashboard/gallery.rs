//! The gallery: one tile per prediction — the thumbnail, what the model said, what the
//! report says, the confidence and the time — wrapped into rows.

use egui::{Color32, Rect, Role, Sense, Stroke, TextureHandle, Ui, Vec2, WidgetInfo};

use super::RerunResult;
use crate::store::{GalleryItem, Thumbnail, utc_text};
use crate::ui::theme;

const TILE: Vec2 = Vec2::new(96.0, 128.0);
const IMAGE_SIDE: f32 = 72.0;

/// A texture for a thumbnail (uploaded once per page view).
pub fn texture(ctx: &egui::Context, name: String, thumbnail: &Thumbnail) -> TextureHandle {
    let image = egui::ColorImage::from_gray(
        [thumbnail.width as usize, thumbnail.height as usize],
        &thumbnail.pixels,
    );
    ctx.load_texture(name, image, egui::TextureOptions::LINEAR)
}

/// The words a screen reader (and the tests) know a tile by.
pub fn tile_label(item: &GalleryItem) -> String {
    let s = &item.summary;
    let mut text = format!(
        "{} predicted {} ({:.0}%)",
        s.id,
        s.predicted,
        100.0 * s.confidence
    );
    if let Some(t) = s.true_digit {
        text += &format!(", reported as {t}");
    }
    text
}

/// One tile; clicking it selects the prediction.
pub fn tile(
    ui: &mut Ui,
    item: &GalleryItem,
    texture: &TextureHandle,
    rerun: Option<&RerunResult>,
    selected: bool,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(TILE, Sense::click());
    let label = tile_label(item);
    response.widget_info(|| WidgetInfo::labeled(Role::Button, true, &label));
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let s = &item.summary;
    let painter = ui.painter();
    let hovered = response.hovered();
    let fill = if selected || hovered {
        theme::SURFACE.gamma_multiply(1.6)
    } else {
        theme::SURFACE
    };
    let border = if s.is_wrong() {
        theme::ERROR
    } else if selected {
        theme::ACCENT
    } else {
        Color32::from_rgb(52, 60, 72)
    };
    painter.rect_filled(rect, 6.0, fill);
    painter.rect_stroke(
        rect,
        6.0,
        Stroke::new(1.5, border),
        egui::StrokeKind::Inside,
    );

    // The thumbnail keeps its aspect ratio inside a square.
    let (w, h) = (
        f32::from(item.thumbnail.width),
        f32::from(item.thumbnail.height),
    );
    let scale = IMAGE_SIDE / w.max(h);
    let image_rect = Rect::from_center_size(
        egui::pos2(rect.center().x, rect.top() + 6.0 + IMAGE_SIDE / 2.0),
        Vec2::new(w * scale, h * scale),
    );
    painter.rect_filled(
        Rect::from_center_size(image_rect.center(), Vec2::splat(IMAGE_SIDE)),
        2.0,
        Color32::BLACK,
    );
    painter.image(
        texture.id(),
        image_rect,
        Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        Color32::WHITE,
    );

    let mut y = rect.top() + 10.0 + IMAGE_SIDE;
    let big = egui::FontId::proportional(15.0);
    let small = egui::FontId::proportional(11.0);
    let (verdict, colour) = match s.true_digit {
        Some(t) if s.is_wrong() => (format!("{} ≠ {t}", s.predicted), theme::ERROR),
        Some(_) => (format!("{} (right)", s.predicted), theme::ACCENT),
        None => (s.predicted.to_string(), theme::TEXT),
    };
    painter.text(
        egui::pos2(rect.center().x, y),
        egui::Align2::CENTER_TOP,
        verdict,
        big,
        colour,
    );
    y += 18.0;
    let time = utc_text(s.time_ms);
    let detail = format!("{:.0}% · {}", 100.0 * s.confidence, &time[5..16]);
    painter.text(
        egui::pos2(rect.center().x, y),
        egui::Align2::CENTER_TOP,
        detail,
        small.clone(),
        theme::WEAK_TEXT,
    );
    if let Some(r) = rerun {
        let changed = r.predicted != s.predicted;
        painter.text(
            egui::pos2(rect.center().x, y + 13.0),
            egui::Align2::CENTER_TOP,
            format!("now {} ({:.0}%)", r.predicted, 100.0 * r.confidence()),
            small,
            if changed {
                theme::TARGET
            } else {
                theme::WEAK_TEXT
            },
        );
    }
    response.on_hover_text(format!("{label}\nsaved {time} UTC"))
}
