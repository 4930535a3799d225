//! A calm dark theme: blue-grey surfaces that recede behind the 3D scene, light text with
//! strong contrast, one teal accent for "the prediction" and one amber for "the Grad-CAM
//! target". Controls get bigger in touch-first (kiosk) mode.

use egui::{Color32, CornerRadius, FontFamily, FontId, Stroke, TextStyle, Theme, Vec2};

/// The predicted class, selected things.
pub const ACCENT: Color32 = Color32::from_rgb(94, 200, 190);
/// The class Grad-CAM explains.
pub const TARGET: Color32 = Color32::from_rgb(242, 184, 75);
/// Ordinary bars and quiet graphics.
pub const MUTED: Color32 = Color32::from_rgb(92, 108, 130);
pub const TEXT: Color32 = Color32::from_rgb(222, 227, 234);
pub const WEAK_TEXT: Color32 = Color32::from_rgb(140, 150, 165);
pub const PANEL: Color32 = Color32::from_rgb(22, 25, 31);
/// [`PANEL`] as sRGB components 0..1: the viewer clears the frame to it behind the panels,
/// which are drawn without a fill of their own.
pub const PANEL_RGB: [f32; 3] = [22.0 / 255.0, 25.0 / 255.0, 31.0 / 255.0];
pub const SURFACE: Color32 = Color32::from_rgb(30, 35, 43);
pub const WARNING: Color32 = Color32::from_rgb(240, 170, 70);
pub const ERROR: Color32 = Color32::from_rgb(240, 100, 100);

/// Installs the theme on `ctx`; `large` is the touch-first size.
pub fn apply(ctx: &egui::Context, large: bool) {
    ctx.set_theme(Theme::Dark);
    ctx.style_mut_of(Theme::Dark, |style| {
        let scale = if large { 1.2 } else { 1.0 };
        style.text_styles = [
            (TextStyle::Small, 12.0),
            (TextStyle::Body, 15.0),
            (TextStyle::Button, 15.0),
            (TextStyle::Heading, 19.0),
            (TextStyle::Monospace, 13.5),
        ]
        .into_iter()
        .map(|(text, size)| {
            let family = if text == TextStyle::Monospace {
                FontFamily::Monospace
            } else {
                FontFamily::Proportional
            };
            (text, FontId::new(size * scale, family))
        })
        .collect();

        let spacing = &mut style.spacing;
        spacing.item_spacing = Vec2::new(8.0, 7.0) * scale;
        spacing.button_padding = Vec2::new(12.0, 6.0) * scale;
        // Touch targets: at least 32 points tall, 44 in touch-first mode.
        spacing.interact_size = Vec2::new(40.0, if large { 44.0 } else { 32.0 });
        spacing.slider_width = 140.0 * scale;
        spacing.combo_width = 140.0 * scale;
        spacing.icon_width = 18.0 * scale;
        spacing.icon_width_inner = 10.0 * scale;

        let v = &mut style.visuals;
        v.override_text_color = Some(TEXT);
        v.panel_fill = PANEL;
        v.window_fill = SURFACE;
        v.window_stroke = Stroke::new(1.0, Color32::from_rgb(52, 60, 72));
        v.window_corner_radius = CornerRadius::same(10);
        v.faint_bg_color = Color32::from_rgb(28, 32, 40);
        v.extreme_bg_color = Color32::from_rgb(12, 14, 18);
        v.selection.bg_fill = ACCENT.gamma_multiply(0.45);
        v.selection.stroke = Stroke::new(1.5, ACCENT);
        v.warn_fg_color = WARNING;
        v.error_fg_color = ERROR;
        v.slider_trailing_fill = true;
        v.collapsing_header_frame = true;

        let widgets = &mut v.widgets;
        widgets.noninteractive.bg_fill = PANEL;
        widgets.noninteractive.weak_bg_fill = SURFACE;
        widgets.noninteractive.bg_stroke = Stroke::new(1.0, Color32::from_rgb(44, 51, 62));
        widgets.noninteractive.fg_stroke = Stroke::new(1.0, TEXT);
        for (state, fill) in [
            (&mut widgets.inactive, Color32::from_rgb(40, 47, 58)),
            (&mut widgets.hovered, Color32::from_rgb(52, 62, 76)),
            (&mut widgets.active, Color32::from_rgb(62, 76, 94)),
            (&mut widgets.open, Color32::from_rgb(46, 55, 68)),
        ] {
            state.bg_fill = fill;
            state.weak_bg_fill = fill;
            state.corner_radius = CornerRadius::same(6);
            state.fg_stroke.color = TEXT;
        }
        widgets.hovered.bg_stroke = Stroke::new(1.0, ACCENT.gamma_multiply(0.6));
        widgets.active.bg_stroke = Stroke::new(1.0, ACCENT);
    });
}
