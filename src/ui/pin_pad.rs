//! The PIN pad of the kiosk's admin exit: a modal window over everything, twelve large
//! touch buttons (digits, Delete, OK), a Cancel, and the digits entered shown as dots only.
//!
//! It is a pure view: it shows a [`PinPadView`] and returns [`PinPadAction`]s; the PIN and
//! the attempts live in `kiosk::AdminGate`. A service keyboard works too (digits,
//! Backspace, Enter, Escape).

use egui::{Color32, Key, Sense, Ui, Vec2};

use super::theme;

/// What the pad shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinPadView {
    /// How many dots to fill.
    pub digits_entered: usize,
    /// Room for at least this many dots (the row stays still while typing). Not the
    /// PIN's length, which the pad never reveals.
    pub max_digits: usize,
    /// A line above the dots, e.g. "Wrong PIN. 2 tries left."
    pub message: Option<String>,
}

/// A press on the pad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinPadAction {
    /// 0–9.
    Digit(u8),
    Backspace,
    Submit,
    Cancel,
}

/// Side of a key, in points: comfortably more than a fingertip.
pub const KEY_SIZE: Vec2 = Vec2::new(104.0, 84.0);

/// Shows the pad as a modal over the whole window; returns this frame's presses.
pub fn show(ctx: &egui::Context, view: &PinPadView) -> Vec<PinPadAction> {
    let mut actions = keyboard_actions(ctx);
    let modal = egui::Modal::new(egui::Id::unique("cnnviz pin pad"))
        .backdrop_color(Color32::from_black_alpha(200))
        .show(ctx, |ui| pad(ui, view, &mut actions));
    if modal.should_close() {
        actions.push(PinPadAction::Cancel);
    }
    actions
}

fn pad(ui: &mut Ui, view: &PinPadView, actions: &mut Vec<PinPadAction>) {
    let spacing = 12.0;
    ui.spacing_mut().item_spacing = Vec2::splat(spacing);
    let width = 3.0 * KEY_SIZE.x + 2.0 * spacing;
    ui.set_width(width);
    ui.vertical_centered(|ui| {
        ui.label(
            egui::RichText::new("Staff only: enter the PIN")
                .size(26.0)
                .strong(),
        );
        let message = view.message.as_deref().unwrap_or(" ");
        ui.label(
            egui::RichText::new(message)
                .size(20.0)
                .color(theme::WARNING),
        );
        dots(ui, view, width);
    });
    let rows: [[(&str, PinPadAction); 3]; 4] = [
        [("1", digit(1)), ("2", digit(2)), ("3", digit(3))],
        [("4", digit(4)), ("5", digit(5)), ("6", digit(6))],
        [("7", digit(7)), ("8", digit(8)), ("9", digit(9))],
        [
            ("Delete", PinPadAction::Backspace),
            ("0", digit(0)),
            ("OK", PinPadAction::Submit),
        ],
    ];
    for row in rows {
        ui.horizontal(|ui| {
            for (text, action) in row {
                let size = if text.len() == 1 { 34.0 } else { 24.0 };
                let mut button = egui::Button::new(egui::RichText::new(text).size(size).strong())
                    .min_size(KEY_SIZE);
                if action == PinPadAction::Submit {
                    button = button.fill(theme::ACCENT.gamma_multiply(0.4));
                }
                if ui.add(button).clicked() {
                    actions.push(action);
                }
            }
        });
    }
    let cancel = egui::Button::new(egui::RichText::new("Cancel").size(24.0));
    if ui
        .add_sized(Vec2::new(width, KEY_SIZE.y * 0.75), cancel)
        .clicked()
    {
        actions.push(PinPadAction::Cancel);
    }
}

/// The entered digits as filled dots, never as digits.
fn dots(ui: &mut Ui, view: &PinPadView, width: f32) {
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 44.0), Sense::hover());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Label,
            true,
            format!("{} digits entered", view.digits_entered),
        )
    });
    let slots = view.max_digits.max(view.digits_entered).max(1);
    let step = 34.0f32.min(width / slots as f32);
    let left = rect.center().x - 0.5 * step * (slots as f32 - 1.0);
    let painter = ui.painter_at(rect);
    for i in 0..slots {
        let centre = egui::pos2(left + step * i as f32, rect.center().y);
        if i < view.digits_entered {
            painter.circle_filled(centre, 10.0, theme::TEXT);
        } else {
            painter.circle_stroke(centre, 9.0, egui::Stroke::new(2.0, theme::MUTED));
        }
    }
}

const fn digit(d: u8) -> PinPadAction {
    PinPadAction::Digit(d)
}

/// Digits, Backspace, Enter and Escape from a keyboard.
fn keyboard_actions(ctx: &egui::Context) -> Vec<PinPadAction> {
    const DIGITS: [Key; 10] = [
        Key::Num0,
        Key::Num1,
        Key::Num2,
        Key::Num3,
        Key::Num4,
        Key::Num5,
        Key::Num6,
        Key::Num7,
        Key::Num8,
        Key::Num9,
    ];
    ctx.input(|input| {
        input
            .events
            .iter()
            .filter_map(|event| match event {
                egui::Event::Key {
                    key, pressed: true, ..
                } => match key {
                    Key::Backspace | Key::Delete => Some(PinPadAction::Backspace),
                    Key::Enter => Some(PinPadAction::Submit),
                    // Escape is the modal's own close (`should_close`).
                    _ => DIGITS
                        .iter()
                        .position(|k| k == key)
                        .map(|d| PinPadAction::Digit(d as u8)),
                },
                _ => None,
            })
            .collect()
    })
}

/// A ring filling up in the admin corner while a long press is held (`progress` 0..1), so
/// the staff member knows to keep holding. Invisible for the first fifth, so a visitor's
/// passing touch shows nothing.
pub fn show_hold_progress(ctx: &egui::Context, corner: egui::Rect, progress: f32) {
    if progress < 0.2 {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("cnnviz admin hold"),
    ));
    let centre = corner.center();
    let radius = 0.35 * corner.width().min(corner.height());
    painter.circle_stroke(centre, radius, egui::Stroke::new(4.0, theme::MUTED));
    let segments = 48;
    let filled = ((progress.clamp(0.0, 1.0) * segments as f32).ceil() as usize).max(1);
    let points: Vec<egui::Pos2> = (0..=filled)
        .map(|i| {
            let angle =
                -std::f32::consts::FRAC_PI_2 + std::f32::consts::TAU * i as f32 / segments as f32;
            centre + radius * egui::vec2(angle.cos(), angle.sin())
        })
        .collect();
    painter.add(egui::Shape::line(
        points,
        egui::Stroke::new(6.0, theme::ACCENT),
    ));
    // Keep animating while the finger is held.
    ctx.request_repaint();
}
