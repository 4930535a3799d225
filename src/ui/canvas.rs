//! The drawing canvas: white ink on black like MNIST, for mouse, pen and touch.
//!
//! The canvas reads egui's raw input events itself instead of a widget's drag state,
//! because touch needs more than a drag: egui-winit turns the *first* finger into
//! emulated pointer events as well as `Event::Touch`, a cancelled touch arrives with no
//! button release, and a second finger must never draw. So:
//! - a touch stroke belongs to one touch id from `Start` to `End`/`Cancel`; other ids are
//!   ignored while it lasts, and a frame that carries touch events ignores the pointer
//!   events (they are the same finger, emulated);
//! - a mouse or pen stroke runs from a primary press on the canvas to the release;
//! - a stroke ends where it leaves the canvas (cut at the border), on `PointerGone`, on
//!   touch cancel, and when the window loses focus (the release may never come).

use egui::{Color32, Event, Pos2, Rect, Sense, TouchDeviceId, TouchId, TouchPhase, Ui, Vec2};

use super::raster::{Raster, Stroke};
use super::theme;
use crate::data::preprocess::InkImage;

/// Brush diameters offered, as fractions of the canvas side. The default gives MNIST's
/// stroke width (about 2.5 of 20 pixels) for a digit drawn two thirds of the canvas high.
pub const BRUSH_RANGE: std::ops::RangeInclusive<f32> = 0.03..=0.15;
pub const DEFAULT_BRUSH: f32 = 0.075;

/// Points closer than this (canvas-relative) to the previous one are dropped: they add
/// work and no ink.
const MIN_STEP: f32 = 0.002;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Pointer,
    Touch { device: TouchDeviceId, id: TouchId },
}

/// The stroke being drawn (always the last of `Canvas::strokes`).
#[derive(Clone, Copy, Debug)]
struct Active {
    source: Source,
    /// Points of it already stamped into the raster.
    stamped: usize,
}

/// Strokes as vector polylines plus their raster; see the module docs for input handling.
pub struct Canvas {
    strokes: Vec<Stroke>,
    active: Option<Active>,
    raster: Raster,
    brush: f32,
    /// The drawing changed since the overlay last asked.
    changed: bool,
    /// A loaded picture under the strokes, for display.
    base: Option<InkImage>,
    base_texture: Option<egui::TextureHandle>,
    /// Show the kiosk's large invitation on the empty canvas.
    invitation: bool,
    /// Where the canvas was last shown, in points (scripted input aims here).
    shown_at: Option<Rect>,
    /// The part the model sees, as fractions `[x, y, w, h]` of the canvas
    /// (`data::model_input::drawing_field`); the rest is dimmed.
    field: [f32; 4],
}

impl Default for Canvas {
    fn default() -> Self {
        Canvas::new()
    }
}

impl Canvas {
    pub fn new() -> Canvas {
        Canvas {
            strokes: Vec::new(),
            active: None,
            raster: Raster::default(),
            brush: DEFAULT_BRUSH,
            changed: false,
            base: None,
            base_texture: None,
            invitation: false,
            shown_at: None,
            field: [0.0, 0.0, 1.0, 1.0],
        }
    }

    /// Marks the part of the canvas the model sees (fractions `[x, y, w, h]`); outside
    /// it the canvas is dimmed.
    pub fn set_field(&mut self, field: [f32; 4]) {
        self.field = field;
    }

    /// Brush diameter as a fraction of the canvas side.
    pub fn brush(&self) -> f32 {
        self.brush
    }

    pub fn set_brush(&mut self, brush: f32) {
        self.brush = brush.clamp(*BRUSH_RANGE.start(), *BRUSH_RANGE.end());
    }

    pub fn strokes(&self) -> &[Stroke] {
        &self.strokes
    }

    /// True while a finger, pen or button is down drawing.
    pub fn is_drawing(&self) -> bool {
        self.active.is_some()
    }

    /// No stroke and no loaded picture.
    pub fn is_empty(&self) -> bool {
        self.strokes.is_empty() && self.base.is_none()
    }

    /// The drawing at [`super::raster::RESOLUTION`], for `mnist_input`.
    pub fn ink(&self) -> InkImage {
        self.raster.ink()
    }

    pub fn clear(&mut self) {
        self.strokes.clear();
        self.active = None;
        self.base = None;
        self.base_texture = None;
        self.raster.clear();
        self.changed = true;
    }

    /// Removes the last stroke (the one being drawn, if any); false when there is none.
    pub fn undo(&mut self) -> bool {
        self.active = None;
        if self.strokes.pop().is_none() {
            return false;
        }
        self.raster.rebuild(&self.strokes);
        self.changed = true;
        true
    }

    /// Adds a finished stroke, e.g. one of attract mode's scripted digits.
    pub fn add_stroke(&mut self, stroke: Stroke) {
        self.active = None;
        self.raster.stamp(&stroke, 0);
        self.strokes.push(stroke);
        self.changed = true;
    }

    /// Replaces the drawing with a picture (a saved digit to re-run, an MNIST digit in
    /// attract mode); later strokes draw over it.
    pub fn load_image(&mut self, image: &InkImage) {
        self.clear();
        self.raster.set_base(image);
        self.raster.rebuild(&[]);
        self.base = Some(image.clone());
    }

    /// Finishes the stroke being drawn, if any (the canvas was hidden mid-stroke).
    pub fn end_stroke(&mut self) {
        self.end();
    }

    /// The large "Draw a digit" invitation on the empty canvas (kiosk mode) instead of the
    /// quiet hint.
    pub fn set_invitation(&mut self, invitation: bool) {
        self.invitation = invitation;
    }

    /// The canvas's square on screen in the last frame, in points; `None` before it was
    /// shown (or while its panel is collapsed it keeps the last place).
    pub fn screen_rect(&self) -> Option<Rect> {
        self.shown_at
    }

    /// Whether the drawing changed since the last call; resets the flag.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Draws the canvas as a `side × side` square and applies this frame's input to it.
    pub fn show(&mut self, ui: &mut Ui, side: f32) -> egui::Response {
        let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::drag());
        self.shown_at = Some(rect);
        response
            .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "Drawing canvas"));
        let layer = ui.layer_id();
        let ctx = ui.ctx().clone();
        // A press only starts a stroke where the canvas is the topmost thing (not under a
        // popup or the help window).
        let owns = |pos: Pos2| ctx.layer_id_at(pos).is_none_or(|top| top == layer);
        let events = ui.input(|i| i.events.clone());
        self.handle_events(&events, rect, owns);
        self.paint(ui, rect, &response);
        response.on_hover_cursor(egui::CursorIcon::Crosshair)
    }

    /// Applies one frame's events to the strokes (see the module docs).
    pub fn handle_events(&mut self, events: &[Event], rect: Rect, owns: impl Fn(Pos2) -> bool) {
        // egui-winit reports the first finger twice: as `Touch` and as emulated pointer
        // events. Frames with touch events take the touch ones only.
        let touch_frame = events.iter().any(|e| matches!(e, Event::Touch { .. }));
        let starts_here = |pos: Pos2| rect.contains(pos) && owns(pos);
        for event in events {
            match *event {
                Event::Touch {
                    device_id,
                    id,
                    phase,
                    pos,
                    ..
                } => {
                    let source = Source::Touch {
                        device: device_id,
                        id,
                    };
                    match phase {
                        TouchPhase::Start if self.active.is_none() && starts_here(pos) => {
                            self.begin(source, rect, pos)
                        }
                        TouchPhase::Move if self.is_active(source) => self.extend(rect, pos),
                        TouchPhase::End if self.is_active(source) => {
                            self.extend(rect, pos);
                            self.end();
                        }
                        // A cancelled touch keeps what it drew but draws no more.
                        TouchPhase::Cancel if self.is_active(source) => self.end(),
                        _ => {}
                    }
                }
                Event::PointerButton {
                    pos,
                    button: egui::PointerButton::Primary,
                    pressed,
                    ..
                } if !touch_frame => {
                    if pressed && self.active.is_none() && starts_here(pos) {
                        self.begin(Source::Pointer, rect, pos);
                    } else if !pressed && self.is_active(Source::Pointer) {
                        self.extend(rect, pos);
                        self.end();
                    }
                }
                Event::PointerMoved(pos) if !touch_frame && self.is_active(Source::Pointer) => {
                    self.extend(rect, pos)
                }
                Event::PointerGone if self.is_active(Source::Pointer) => self.end(),
                // Focus lost mid-stroke (an alert, a compositor gesture): neither a release
                // nor a touch end may ever arrive.
                Event::WindowFocused(false) if self.active.is_some() => self.end(),
                _ => {}
            }
        }
        self.stamp_active();
    }

    fn is_active(&self, source: Source) -> bool {
        self.active.is_some_and(|a| a.source == source)
    }

    fn begin(&mut self, source: Source, rect: Rect, pos: Pos2) {
        self.strokes.push(Stroke {
            points: vec![unit(rect, pos)],
            width: self.brush,
        });
        self.active = Some(Active { source, stamped: 0 });
        self.changed = true;
    }

    /// Adds `pos` to the active stroke, or cuts the stroke at the border and ends it when
    /// `pos` lies outside the canvas.
    fn extend(&mut self, rect: Rect, pos: Pos2) {
        let Some(stroke) = self.strokes.last_mut() else {
            return;
        };
        let Some(&last) = stroke.points.last() else {
            return;
        };
        let next = unit(rect, pos);
        let inside = next.iter().all(|c| (0.0..=1.0).contains(c));
        let point = if inside {
            next
        } else {
            border_crossing(last, next)
        };
        if (point[0] - last[0]).hypot(point[1] - last[1]) >= MIN_STEP {
            stroke.points.push(point);
            self.changed = true;
        }
        if !inside {
            self.end();
        }
    }

    fn end(&mut self) {
        self.stamp_active();
        self.active = None;
    }

    /// Stamps the active stroke's new segments into the raster.
    fn stamp_active(&mut self) {
        let (Some(active), Some(stroke)) = (self.active.as_mut(), self.strokes.last()) else {
            return;
        };
        let n = stroke.points.len();
        if n > active.stamped {
            self.raster.stamp(stroke, active.stamped);
            active.stamped = n;
        }
    }

    fn paint(&mut self, ui: &Ui, rect: Rect, response: &egui::Response) {
        let painter = ui.painter_at(rect);
        let radius = 8.0;
        painter.rect_filled(rect, radius, Color32::BLACK);
        if let Some(texture) = self.base_texture(ui.ctx()) {
            let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
            painter.image(texture.id(), rect, uv, Color32::WHITE);
        }
        let side = rect.width();
        let to_screen = |p: [f32; 2]| rect.min + Vec2::new(p[0], p[1]) * side;
        for stroke in &self.strokes {
            let width = stroke.width * side;
            let points: Vec<Pos2> = stroke.points.iter().map(|&p| to_screen(p)).collect();
            if points.len() > 1 {
                painter.line(points.clone(), egui::Stroke::new(width, Color32::WHITE));
            }
            // Round joins and caps, as the raster's capsules have.
            for p in points {
                painter.circle_filled(p, 0.5 * width, Color32::WHITE);
            }
        }
        if self.field != [0.0, 0.0, 1.0, 1.0] {
            let [x, y, w, h] = self.field;
            let seen =
                Rect::from_min_size(rect.min + Vec2::new(x, y) * side, Vec2::new(w, h) * side);
            // Dim the margins the model does not see, and frame what it sees.
            let dim = Color32::from_black_alpha(150);
            for margin in [
                Rect::from_min_max(rect.min, Pos2::new(rect.max.x, seen.min.y)),
                Rect::from_min_max(Pos2::new(rect.min.x, seen.max.y), rect.max),
                Rect::from_min_max(Pos2::new(rect.min.x, seen.min.y), seen.left_bottom()),
                Rect::from_min_max(seen.right_top(), Pos2::new(rect.max.x, seen.max.y)),
            ] {
                if margin.is_positive() {
                    painter.rect_filled(margin, 0.0, dim);
                }
            }
            painter.rect_stroke(
                seen,
                0.0,
                egui::Stroke::new(1.0, Color32::from_gray(110)),
                egui::StrokeKind::Inside,
            );
        }
        if self.is_empty() {
            if self.invitation {
                paint_invitation(&painter, rect);
            } else {
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    "Draw a digit here",
                    egui::FontId::proportional((side / 14.0).clamp(13.0, 22.0)),
                    Color32::from_gray(90),
                );
            }
        }
        // The brush outline under a hovering mouse shows its size before drawing.
        if !self.is_drawing()
            && let Some(pos) = response.hover_pos()
            && !ui.input(|i| i.any_touches())
        {
            painter.circle_stroke(
                pos,
                0.5 * self.brush * side,
                egui::Stroke::new(1.0, Color32::from_gray(140)),
            );
        }
        ui.painter().rect_stroke(
            rect,
            radius,
            egui::Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
            egui::StrokeKind::Outside,
        );
    }

    fn base_texture(&mut self, ctx: &egui::Context) -> Option<&egui::TextureHandle> {
        let base = self.base.as_ref()?;
        if self.base_texture.is_none() {
            let grey: Vec<u8> = base
                .pixels
                .iter()
                .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            let image = egui::ColorImage::from_gray([base.width, base.height], &grey);
            self.base_texture =
                Some(ctx.load_texture("cnnviz canvas picture", image, Default::default()));
        }
        self.base_texture.as_ref()
    }
}

/// The kiosk's invitation: large, bright, readable from a step away, with an accent
/// frame that says "this is where you draw".
fn paint_invitation(painter: &egui::Painter, rect: Rect) {
    let side = rect.width();
    let inset = (side * 0.06).max(6.0);
    painter.rect_stroke(
        rect.shrink(inset),
        12.0,
        egui::Stroke::new(
            (side / 140.0).clamp(2.0, 4.0),
            theme::ACCENT.gamma_multiply(0.7),
        ),
        egui::StrokeKind::Inside,
    );
    let title = (side / 8.0).clamp(26.0, 72.0);
    painter.text(
        rect.center() - Vec2::new(0.0, 0.2 * title),
        egui::Align2::CENTER_CENTER,
        "Draw a digit",
        egui::FontId::proportional(title),
        theme::TEXT,
    );
    painter.text(
        rect.center() + Vec2::new(0.0, 0.75 * title),
        egui::Align2::CENTER_CENTER,
        "0 to 9, with your finger",
        egui::FontId::proportional(0.4 * title),
        theme::ACCENT,
    );
}

/// `pos` in canvas-relative coordinates (0..1 inside the canvas).
fn unit(rect: Rect, pos: Pos2) -> [f32; 2] {
    let p = (pos - rect.min) / rect.size();
    [p.x, p.y]
}

/// Where the segment from `inside` (in the unit square) to `outside` leaves the square.
fn border_crossing(inside: [f32; 2], outside: [f32; 2]) -> [f32; 2] {
    let mut t = 1.0f32;
    for axis in 0..2 {
        let d = outside[axis] - inside[axis];
        let bound = if d > 0.0 { 1.0 } else { 0.0 };
        if d != 0.0 && !(0.0..=1.0).contains(&outside[axis]) {
            t = t.min((bound - inside[axis]) / d);
        }
    }
    let t = t.clamp(0.0, 1.0);
    [0, 1].map(|a| (inside[a] + t * (outside[a] - inside[a])).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_leaving_the_square_is_cut_at_its_border() {
        let p = border_crossing([0.5, 0.5], [1.5, 0.5]);
        assert_eq!(p, [1.0, 0.5]);
        let p = border_crossing([0.5, 0.5], [0.5, -0.5]);
        assert_eq!(p, [0.5, 0.0]);
        let p = border_crossing([0.8, 0.5], [1.2, 1.5]);
        assert!(
            (p[0] - 1.0).abs() < 1e-6 && (p[1] - 1.0).abs() < 1e-6,
            "{p:?}"
        );
    }
}
