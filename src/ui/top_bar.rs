//! The title bar: what is loaded, the panel toggles, and the buttons that mirror the
//! main shortcuts (each says its key, so the keys are learnt by using the buttons).

use egui::Ui;

use super::shortcuts::Action;
use super::theme;
use super::view::OverlayView;

/// Which panels and windows are open; the bar flips them directly.
pub struct PanelToggles<'a> {
    pub draw: &'a mut bool,
    pub inspect: &'a mut bool,
    pub help: &'a mut bool,
}

/// Draws the bar; returns the actions of the buttons pressed.
pub fn show(ui: &mut Ui, view: &OverlayView, toggles: PanelToggles) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal_wrapped(|ui| {
        ui.label(
            egui::RichText::new("cnnviz")
                .size(20.0)
                .strong()
                .color(theme::ACCENT),
        );
        if !view.model_name.is_empty() {
            ui.label(egui::RichText::new(view.model_name).color(theme::WEAK_TEXT));
        }
        ui.separator();
        ui.toggle_value(toggles.draw, "Draw")
            .on_hover_text("Show or hide the drawing panel (H hides both)");
        ui.toggle_value(toggles.inspect, "Inspect")
            .on_hover_text("Show or hide Grad-CAM, feature maps and timing");
        ui.separator();
        let mut animation = view.animation;
        if ui
            .toggle_value(&mut animation, "Animate")
            .on_hover_text("Layer-by-layer wave through the network (A)")
            .changed()
        {
            actions.push(Action::ToggleAnimation);
        }
        if ui
            .button("Reset view")
            .on_hover_text("Reset the camera (Home, or double-click the scene)")
            .clicked()
        {
            actions.push(Action::ResetCamera);
        }
        let features = view.features;
        let store_buttons = [
            (
                features.save,
                "Save",
                "Save this drawing and its prediction (S)",
                Action::Save,
            ),
            (
                features.report,
                "Report",
                "Report a misclassification (R)",
                Action::Report,
            ),
            (
                features.dashboard,
                "Dashboard",
                "Saved predictions and reports (D)",
                Action::Dashboard,
            ),
            (
                features.failures,
                "Failures",
                "Where the model fails: the test set's and the reports' confusion matrices (F)",
                Action::ToggleFailures,
            ),
        ];
        if store_buttons.iter().any(|b| b.0) {
            ui.separator();
        }
        for (shown, text, help, action) in store_buttons {
            if shown && ui.button(text).on_hover_text(help).clicked() {
                actions.push(action);
            }
        }
        ui.separator();
        ui.toggle_value(toggles.help, "Help")
            .on_hover_text("Every shortcut (F1 or ?)");
    });
    actions
}
