//! The scene's share of the pointer: whatever the overlay's panels leave free. Reading the
//! gestures through egui (rather than raw winit events) gives mouse, pen and touch one code
//! path, and egui already knows which pointer belongs to a panel.

use egui::{Align2, Color32, FontId, Id, PointerButton, Rect, Sense, Ui};

use crate::scene::{Camera, LabelKind, SceneLayout};

/// What the pointer did to the scene this frame. Distances are in points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gesture {
    /// Primary-button (or one-finger) drag: orbit.
    pub orbit: [f32; 2],
    /// Secondary or middle drag: pan.
    pub pan: [f32; 2],
    /// Wheel notches (positive zooms in).
    pub zoom: f32,
    /// Two-finger pinch scale (1 = none).
    pub pinch: f32,
    /// Double click or double tap: back to the home view.
    pub reset: bool,
    /// Where the pointer rests over the scene.
    pub hover: Option<[f32; 2]>,
    /// A click (not a drag): highlight what is under it, or clear the highlight.
    pub clicked: bool,
}

impl Default for Gesture {
    fn default() -> Self {
        Gesture {
            orbit: [0.0; 2],
            pan: [0.0; 2],
            zoom: 0.0,
            pinch: 1.0,
            reset: false,
            hover: None,
            clicked: false,
        }
    }
}

impl Gesture {
    /// Adds what a later pass of the same frame saw.
    pub fn add(&mut self, later: Gesture) {
        self.orbit = [
            self.orbit[0] + later.orbit[0],
            self.orbit[1] + later.orbit[1],
        ];
        self.pan = [self.pan[0] + later.pan[0], self.pan[1] + later.pan[1]];
        self.zoom += later.zoom;
        self.pinch *= later.pinch;
        self.reset |= later.reset;
        self.clicked |= later.clicked;
        self.hover = later.hover.or(self.hover);
    }
}

/// Points of wheel scrolling per zoom notch (egui reports scrolling in points).
const POINTS_PER_NOTCH: f32 = 50.0;

pub fn read(ui: &mut Ui, scene: Rect) -> Gesture {
    let mut gesture = Gesture::default();
    if !scene.is_positive() {
        return gesture;
    }
    let response = ui.interact(scene, Id::unique("cnnviz scene"), Sense::click_and_drag());
    let (multi_touch, scroll) = ui.input(|i| (i.multi_touch(), i.smooth_scroll_delta));
    if let Some(touch) = multi_touch {
        // Two fingers: pinch zooms and the pair's movement pans; no orbit, no drawing.
        gesture.pinch = touch.zoom_delta;
        gesture.pan = [touch.translation_delta.x, touch.translation_delta.y];
    } else if response.dragged_by(PointerButton::Primary) {
        let d = response.drag_delta();
        gesture.orbit = [d.x, d.y];
    } else if response.dragged_by(PointerButton::Secondary)
        || response.dragged_by(PointerButton::Middle)
    {
        let d = response.drag_delta();
        gesture.pan = [d.x, d.y];
    }
    if response.hovered() && scroll.y != 0.0 {
        gesture.zoom = scroll.y / POINTS_PER_NOTCH;
    }
    gesture.reset = response.double_clicked();
    gesture.clicked = response.clicked() && !gesture.reset;
    gesture.hover = response
        .hover_pos()
        .filter(|_| !response.dragged())
        .map(|p| [p.x, p.y]);
    gesture
}

/// Layer names with their shapes, and the digit of each output cube, over the scene.
pub fn draw_labels(ui: &Ui, layout: &SceneLayout, camera: &Camera, scene: Rect) {
    let screen = ui.ctx().content_rect();
    let viewport = [screen.width(), screen.height()];
    let painter = ui.ctx().layer_painter(egui::LayerId::background());
    let painter = painter.with_clip_rect(scene);
    let mut labels = layout.project_labels_detailed(camera, viewport);
    // Layer names first: where labels would overlap, the later one is left out, so a
    // crowded end of the network stays readable instead of a smear of text.
    labels.sort_by_key(|(label, _)| matches!(label.kind, LabelKind::Class));
    let mut placed: Vec<Rect> = Vec::new();
    for (label, [x, y]) in labels {
        let at = egui::pos2(screen.min.x + x, screen.min.y + y);
        let (font, colour) = match label.kind {
            LabelKind::Layer => (FontId::proportional(13.0), Color32::from_gray(200)),
            LabelKind::Class => (FontId::monospace(15.0), Color32::from_rgb(250, 230, 140)),
        };
        let galley = painter.layout_no_wrap(label.text, font, colour);
        let rect = Align2::CENTER_BOTTOM
            .anchor_size(at, galley.size())
            .expand(1.0);
        if placed.iter().any(|other| other.intersects(rect)) {
            continue;
        }
        placed.push(rect);
        painter.galley(rect.shrink(1.0).min, galley, colour);
    }
}
