//! Every keyboard shortcut, in one table: the help panel lists it and the key handling
//! reads it, so a key cannot work without being documented or be documented without
//! working.

use egui::{Key, Modifiers};

/// Something a key (or a button) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Predict,
    Clear,
    Undo,
    Save,
    Report,
    Dashboard,
    ToggleGradCam,
    /// The next explanation method of the Explain panel.
    NextMethod,
    /// The comparison grid (every method) open / closed.
    ToggleExplainGrid,
    /// The failure view (confusion matrices) open / closed.
    ToggleFailures,
    /// Grad-CAM explains the predicted class again.
    TargetPredicted,
    /// Grad-CAM explains this class.
    TargetClass(usize),
    NextBlock,
    NextColorMap,
    ToggleAnimation,
    ResetCamera,
    /// Held: orbit the camera; `yaw`/`pitch` are directions (−1, 0 or 1).
    Orbit {
        yaw: i8,
        pitch: i8,
    },
    /// Held: zoom the camera in (1) or out (−1).
    Zoom(i8),
    TogglePanels,
    ToggleHelp,
    CloseHelp,
    ToggleFullscreen,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Shortcut {
    pub key: Key,
    /// Required modifiers; Shift is ignored unless listed (so `?` works as Shift+/).
    pub modifiers: Modifiers,
    pub action: Action,
    /// What the help panel says. Consecutive rows with the same text are one help line.
    pub help: &'static str,
}

impl Shortcut {
    /// Held shortcuts act on every frame the key is down, the others once per press.
    pub fn is_held(&self) -> bool {
        matches!(self.action, Action::Orbit { .. } | Action::Zoom(_))
    }

    /// The key as people read it, e.g. `Ctrl+Z`.
    pub fn key_label(&self) -> String {
        let mut label = String::new();
        if self.modifiers.command || self.modifiers.ctrl {
            label.push_str("Ctrl+");
        }
        if self.modifiers.alt {
            label.push_str("Alt+");
        }
        if self.modifiers.shift {
            label.push_str("Shift+");
        }
        label.push_str(match self.key {
            Key::ArrowLeft => "←",
            Key::ArrowRight => "→",
            Key::ArrowUp => "↑",
            Key::ArrowDown => "↓",
            Key::PageUp => "Page Up",
            Key::PageDown => "Page Down",
            key => key.symbol_or_name(),
        });
        label
    }
}

const fn key(key: Key, action: Action, help: &'static str) -> Shortcut {
    Shortcut {
        key,
        modifiers: Modifiers::NONE,
        action,
        help,
    }
}

const TARGET_HELP: &str = "Explain that class";
const ORBIT_HELP: &str = "Orbit the camera (hold)";
const ZOOM_HELP: &str = "Zoom the camera (hold)";

/// The shortcuts, in the order the help panel lists them.
pub const SHORTCUTS: &[Shortcut] = &[
    key(Key::Enter, Action::Predict, "Predict now"),
    key(Key::C, Action::Clear, "Clear the canvas"),
    key(Key::Delete, Action::Clear, "Clear the canvas"),
    Shortcut {
        key: Key::Z,
        modifiers: Modifiers::COMMAND,
        action: Action::Undo,
        help: "Undo the last stroke",
    },
    key(Key::U, Action::Undo, "Undo the last stroke"),
    key(Key::Backspace, Action::Undo, "Undo the last stroke"),
    key(Key::S, Action::Save, "Save the prediction"),
    key(Key::R, Action::Report, "Report a misclassification"),
    key(Key::D, Action::Dashboard, "Open the dashboard"),
    key(Key::G, Action::ToggleGradCam, "Explanation map on / off"),
    key(Key::N, Action::NextMethod, "Next explanation method"),
    key(
        Key::E,
        Action::ToggleExplainGrid,
        "Compare every explanation method",
    ),
    key(
        Key::F,
        Action::ToggleFailures,
        "Where the model fails: confusion matrices",
    ),
    key(
        Key::P,
        Action::TargetPredicted,
        "Grad-CAM for the predicted class",
    ),
    key(Key::Num0, Action::TargetClass(0), TARGET_HELP),
    key(Key::Num1, Action::TargetClass(1), TARGET_HELP),
    key(Key::Num2, Action::TargetClass(2), TARGET_HELP),
    key(Key::Num3, Action::TargetClass(3), TARGET_HELP),
    key(Key::Num4, Action::TargetClass(4), TARGET_HELP),
    key(Key::Num5, Action::TargetClass(5), TARGET_HELP),
    key(Key::Num6, Action::TargetClass(6), TARGET_HELP),
    key(Key::Num7, Action::TargetClass(7), TARGET_HELP),
    key(Key::Num8, Action::TargetClass(8), TARGET_HELP),
    key(Key::Num9, Action::TargetClass(9), TARGET_HELP),
    key(Key::B, Action::NextBlock, "Next conv block to explain"),
    key(Key::M, Action::NextColorMap, "Next colour map"),
    key(Key::A, Action::ToggleAnimation, "Layer animation on / off"),
    key(Key::Home, Action::ResetCamera, "Reset the camera"),
    key(
        Key::ArrowLeft,
        Action::Orbit { yaw: -1, pitch: 0 },
        ORBIT_HELP,
    ),
    key(
        Key::ArrowRight,
        Action::Orbit { yaw: 1, pitch: 0 },
        ORBIT_HELP,
    ),
    key(Key::ArrowUp, Action::Orbit { yaw: 0, pitch: 1 }, ORBIT_HELP),
    key(
        Key::ArrowDown,
        Action::Orbit { yaw: 0, pitch: -1 },
        ORBIT_HELP,
    ),
    key(Key::PageUp, Action::Zoom(1), ZOOM_HELP),
    key(Key::PageDown, Action::Zoom(-1), ZOOM_HELP),
    key(Key::Plus, Action::Zoom(1), ZOOM_HELP),
    key(Key::Minus, Action::Zoom(-1), ZOOM_HELP),
    key(Key::H, Action::TogglePanels, "Hide / show the panels"),
    key(Key::F1, Action::ToggleHelp, "This help"),
    key(Key::Questionmark, Action::ToggleHelp, "This help"),
    key(Key::Escape, Action::CloseHelp, "Close this help"),
    key(Key::F11, Action::ToggleFullscreen, "Full screen on / off"),
];

/// Help lines: each distinct consecutive `help` text once, with all its keys.
pub fn help_lines() -> Vec<(String, &'static str)> {
    let mut lines: Vec<(Vec<String>, &'static str)> = Vec::new();
    for shortcut in SHORTCUTS {
        match lines.last_mut() {
            Some((keys, help)) if *help == shortcut.help => keys.push(shortcut.key_label()),
            _ => lines.push((vec![shortcut.key_label()], shortcut.help)),
        }
    }
    lines
        .into_iter()
        .map(|(keys, help)| {
            // A run of digit keys (0…9) reads better as a range.
            let digits = keys
                .iter()
                .all(|k| k.len() == 1 && k.as_bytes()[0].is_ascii_digit());
            let keys = if digits && keys.len() > 2 {
                format!("{} … {}", keys[0], keys[keys.len() - 1])
            } else {
                keys.join(" / ")
            };
            (keys, help)
        })
        .collect()
}

/// What the keyboard did this frame: the actions of keys pressed (once each) and of held
/// keys (every frame). Keys go to a focused text field instead (a report's reason) while
/// egui wants the keyboard.
pub fn actions_this_frame(ctx: &egui::Context) -> Vec<Action> {
    // A text field has the keys, or a modal (the kiosk's PIN pad, a dialog) owns them: a
    // digit typed there must not also pick a Grad-CAM class behind it.
    if ctx.egui_wants_keyboard_input() || ctx.memory(|m| m.top_modal_layer().is_some()) {
        return Vec::new();
    }
    ctx.input(|input| {
        let mut actions = Vec::new();
        for event in &input.events {
            if let egui::Event::Key {
                key,
                pressed: true,
                repeat: false,
                modifiers,
                ..
            } = event
            {
                actions.extend(
                    SHORTCUTS
                        .iter()
                        .filter(|s| !s.is_held() && s.key == *key)
                        .filter(|s| modifiers.matches_logically(s.modifiers))
                        .map(|s| s.action),
                );
            }
        }
        let plain = !input.modifiers.command && !input.modifiers.ctrl && !input.modifiers.alt;
        actions.extend(
            SHORTCUTS
                .iter()
                .filter(|s| s.is_held() && plain && input.key_down(s.key))
                .map(|s| s.action),
        );
        actions
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_groups_the_class_keys() {
        let lines = help_lines();
        assert!(
            lines
                .iter()
                .any(|(keys, help)| *help == TARGET_HELP && keys == "0 … 9")
        );
        assert!(
            lines
                .iter()
                .any(|(keys, _)| keys == "Ctrl+Z / U / Backspace")
        );
    }
}
