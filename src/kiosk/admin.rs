//! Leaving the kiosk: a gesture nobody makes by accident (a long press in one corner, or a
//! key chord on a service keyboard) opens the PIN pad; the right PIN exits; wrong PINs send
//! the pad back to empty, and several in a row lock it for a while.
//!
//! [`AdminGate`] is a pure state machine fed with instants, so it is tested with made-up
//! times. The window feeds it every frame ([`AdminGate::pointer`], [`AdminGate::chord`]),
//! shows [`crate::ui::pin_pad`] while [`AdminGate::pin_pad`] says so, hands the pad's
//! actions to [`AdminGate::apply`], and exits when that answers [`AdminOutcome::Exit`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, Pos2, Rect, Vec2};
use serde::{Deserialize, Serialize};

use super::config::AdminConfig;
use crate::ui::pin_pad::{PinPadAction, PinPadView};

/// Side of the corner square where the long press counts, in points.
pub const CORNER_SIZE: f32 = 80.0;
/// The pointer may wander this far (points) during the long press.
const HOLD_SLOP: f32 = 24.0;

/// A corner of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corner {
    #[default]
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

impl Corner {
    /// The corner's square of [`CORNER_SIZE`] points inside `screen`.
    pub fn rect(self, screen: Rect) -> Rect {
        let size = Vec2::splat(CORNER_SIZE.min(screen.width()).min(screen.height()));
        let min = match self {
            Corner::TopLeft => screen.left_top(),
            Corner::TopRight => screen.right_top() - Vec2::new(size.x, 0.0),
            Corner::BottomLeft => screen.left_bottom() - Vec2::new(0.0, size.y),
            Corner::BottomRight => screen.right_bottom() - size,
        };
        Rect::from_min_size(min, size)
    }
}

/// A key with modifiers, parsed from text like `Ctrl+Shift+Q` or `Alt+F12`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyChord {
    pub modifiers: Modifiers,
    pub key: Key,
}

impl FromStr for KeyChord {
    type Err = String;

    fn from_str(text: &str) -> Result<KeyChord, String> {
        let parts: Vec<&str> = text.split('+').map(str::trim).collect();
        let (key_name, modifier_names) = parts
            .split_last()
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| format!("{text:?} has no key; write e.g. \"Ctrl+Shift+Q\""))?;
        let mut modifiers = Modifiers::NONE;
        for name in modifier_names {
            match name.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => modifiers.ctrl = true,
                "shift" => modifiers.shift = true,
                "alt" | "option" => modifiers.alt = true,
                "cmd" | "command" | "super" | "meta" => modifiers.mac_cmd = true,
                _ => {
                    return Err(format!(
                        "{name:?} in {text:?} is not a modifier (Ctrl, Shift, Alt, Cmd)"
                    ));
                }
            }
        }
        // egui's names are "A", "F12", "Escape"…; accept any case for letters.
        let key = Key::from_name(key_name)
            .or_else(|| Key::from_name(&key_name.to_ascii_uppercase()))
            .ok_or_else(|| format!("{key_name:?} in {text:?} is not a key egui knows"))?;
        Ok(KeyChord { modifiers, key })
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.modifiers;
        for (on, name) in [
            (m.ctrl, "Ctrl+"),
            (m.alt, "Alt+"),
            (m.shift, "Shift+"),
            (m.mac_cmd, "Cmd+"),
        ] {
            if on {
                f.write_str(name)?;
            }
        }
        f.write_str(self.key.name())
    }
}

impl KeyChord {
    /// Whether the chord was pressed in this frame's input (exactly these modifiers).
    pub fn pressed(&self, input: &egui::InputState) -> bool {
        input.events.iter().any(|event| {
            matches!(
                event,
                egui::Event::Key { key, pressed: true, repeat: false, modifiers, .. }
                    if *key == self.key && self.matches(*modifiers)
            )
        })
    }

    fn matches(&self, held: Modifiers) -> bool {
        let want = self.modifiers;
        // egui sets `command` alongside ctrl (or cmd on macOS); compare the physical keys.
        held.ctrl == want.ctrl
            && held.shift == want.shift
            && held.alt == want.alt
            && held.mac_cmd == want.mac_cmd
    }
}

/// Where the gate is.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminState {
    /// Nothing admin-related on screen.
    Watching,
    /// A press is being held in the corner since `since`.
    Holding { since: Instant, at: Pos2 },
    /// The PIN pad is open.
    PinEntry {
        entered: String,
        last_key: Instant,
        /// What the pad says above the dots ("Wrong PIN").
        message: Option<String>,
    },
    /// Too many wrong PINs: gestures are ignored until `until`.
    LockedOut { until: Instant },
    /// The right PIN was entered: the app exits.
    Exit,
}

/// What [`AdminGate::apply`] (and [`AdminGate::update`]) tell the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// Nothing for the app to do.
    None,
    /// The right PIN: leave the kiosk (exit code 0).
    Exit,
}

/// The exit gesture → PIN → exit machine; see the module docs.
#[derive(Clone, Debug)]
pub struct AdminGate {
    long_press: Option<Duration>,
    corner: Corner,
    chord: Option<KeyChord>,
    pin: String,
    max_attempts: u32,
    lockout: Duration,
    pin_timeout: Duration,
    state: AdminState,
    wrong: u32,
}

impl AdminGate {
    /// From a validated config (`KioskConfig::load` checked the PIN and chord).
    pub fn new(config: &AdminConfig) -> AdminGate {
        let seconds = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO);
        AdminGate {
            long_press: Some(seconds(config.long_press_seconds)).filter(|d| !d.is_zero()),
            corner: config.corner,
            chord: config.key_chord.parse().ok(),
            pin: config.pin.clone(),
            max_attempts: config.max_attempts.max(1),
            lockout: seconds(config.lockout_seconds),
            pin_timeout: seconds(config.pin_timeout_seconds),
            state: AdminState::Watching,
            wrong: 0,
        }
    }

    pub fn state(&self) -> &AdminState {
        &self.state
    }

    /// The PIN pad is open: the app shows it and keeps visitors' input off the canvas.
    pub fn is_pin_entry(&self) -> bool {
        matches!(self.state, AdminState::PinEntry { .. })
    }

    pub fn key_chord(&self) -> Option<KeyChord> {
        self.chord
    }

    /// Feeds the primary press: `pressed_at` is where a finger or the primary button is
    /// held down this frame (`None` when nothing is), `screen` the window in points. A
    /// press held in the corner for the configured time opens the PIN pad.
    pub fn pointer(&mut self, now: Instant, pressed_at: Option<Pos2>, screen: Rect) {
        self.expire(now);
        let Some(hold) = self.long_press else { return };
        match (&self.state, pressed_at) {
            (AdminState::Watching, Some(pos)) if self.corner.rect(screen).contains(pos) => {
                self.state = AdminState::Holding {
                    since: now,
                    at: pos,
                };
            }
            (AdminState::Holding { since, at }, Some(pos)) => {
                if pos.distance(*at) > HOLD_SLOP && !self.corner.rect(screen).contains(pos) {
                    self.state = AdminState::Watching;
                } else if now.saturating_duration_since(*since) >= hold {
                    self.open(now);
                }
            }
            (AdminState::Holding { .. }, None) => self.state = AdminState::Watching,
            _ => {}
        }
    }

    /// The key chord was pressed ([`KeyChord::pressed`]): opens the PIN pad.
    pub fn chord(&mut self, now: Instant) {
        self.expire(now);
        if self.chord.is_some()
            && matches!(
                self.state,
                AdminState::Watching | AdminState::Holding { .. }
            )
        {
            self.open(now);
        }
    }

    /// How far a long press in the corner has got, 0..1, for a progress ring.
    pub fn hold_progress(&self, now: Instant) -> Option<(Corner, f32)> {
        match (&self.state, self.long_press) {
            (AdminState::Holding { since, .. }, Some(hold)) => {
                let t = now.saturating_duration_since(*since).as_secs_f32() / hold.as_secs_f32();
                Some((self.corner, t.clamp(0.0, 1.0)))
            }
            _ => None,
        }
    }

    /// Time-driven changes (the pad's timeout, the end of a lockout); call once a frame.
    pub fn update(&mut self, now: Instant) -> AdminOutcome {
        self.expire(now);
        if self.state == AdminState::Exit {
            AdminOutcome::Exit
        } else {
            AdminOutcome::None
        }
    }

    /// When the gate next changes by itself, for `ControlFlow::WaitUntil`.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            AdminState::Holding { since, .. } => self.long_press.map(|d| *since + d),
            AdminState::PinEntry { last_key, .. } => Some(*last_key + self.pin_timeout),
            AdminState::LockedOut { until } => Some(*until),
            _ => None,
        }
    }

    /// What the PIN pad shows, while it is open.
    pub fn pin_pad(&self) -> Option<PinPadView> {
        match &self.state {
            AdminState::PinEntry {
                entered, message, ..
            } => Some(PinPadView {
                digits_entered: entered.len(),
                // Four empty slots whatever the PIN: its length is a secret too.
                max_digits: 4,
                message: message.clone(),
            }),
            _ => None,
        }
    }

    /// Applies one PIN pad action.
    pub fn apply(&mut self, action: PinPadAction, now: Instant) -> AdminOutcome {
        self.expire(now);
        let AdminState::PinEntry {
            entered,
            last_key,
            message,
        } = &mut self.state
        else {
            return AdminOutcome::None;
        };
        *last_key = now;
        match action {
            PinPadAction::Digit(d) if d < 10 && entered.len() < 12 => {
                entered.push(char::from(b'0' + d));
                *message = None;
            }
            PinPadAction::Digit(_) => {}
            PinPadAction::Backspace => {
                entered.pop();
            }
            PinPadAction::Cancel => self.state = AdminState::Watching,
            PinPadAction::Submit => {
                if same(entered, &self.pin) {
                    self.wrong = 0;
                    self.state = AdminState::Exit;
                    return AdminOutcome::Exit;
                }
                self.wrong += 1;
                if self.wrong >= self.max_attempts {
                    self.wrong = 0;
                    self.state = AdminState::LockedOut {
                        until: now + self.lockout,
                    };
                } else {
                    let left = self.max_attempts - self.wrong;
                    entered.clear();
                    *message = Some(format!(
                        "Wrong PIN. {left} {} left.",
                        if left == 1 { "try" } else { "tries" }
                    ));
                }
            }
        }
        AdminOutcome::None
    }

    /// Closes the pad and forgets a press in progress (the idle reset calls this).
    /// A lockout stays.
    pub fn cancel(&mut self) {
        if matches!(
            self.state,
            AdminState::Holding { .. } | AdminState::PinEntry { .. }
        ) {
            self.state = AdminState::Watching;
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = AdminState::PinEntry {
            entered: String::new(),
            last_key: now,
            message: None,
        };
    }

    fn expire(&mut self, now: Instant) {
        match &self.state {
            AdminState::PinEntry { last_key, .. }
                if now.saturating_duration_since(*last_key) >= self.pin_timeout =>
            {
                self.state = AdminState::Watching
            }
            AdminState::LockedOut { until } if now >= *until => self.state = AdminState::Watching,
            _ => {}
        }
    }
}

/// Compares without stopping at the first difference, so timing says nothing of the PIN.
fn same(entered: &str, pin: &str) -> bool {
    let (a, b) = (entered.as_bytes(), pin.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdminConfig {
        AdminConfig {
            long_press_seconds: 3.0,
            corner: Corner::TopRight,
            key_chord: "Ctrl+Shift+Q".into(),
            pin: "2468".into(),
            max_attempts: 3,
            lockout_seconds: 60.0,
            pin_timeout_seconds: 20.0,
        }
    }

    const SCREEN: Rect = Rect {
        min: Pos2::ZERO,
        max: Pos2::new(1920.0, 1080.0),
    };
    const CORNER: Pos2 = Pos2::new(1900.0, 20.0);

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    fn enter(gate: &mut AdminGate, pin: &str, now: Instant) -> AdminOutcome {
        for c in pin.bytes() {
            gate.apply(PinPadAction::Digit(c - b'0'), now);
        }
        gate.apply(PinPadAction::Submit, now)
    }

    #[test]
    fn a_long_press_in_the_corner_opens_the_pad_and_the_pin_exits() {
        let t0 = Instant::now();
        let mut gate = AdminGate::new(&config());
        gate.pointer(t0, Some(CORNER), SCREEN);
        gate.pointer(secs(t0, 2.9), Some(CORNER + Vec2::new(-5.0, 5.0)), SCREEN);
        assert!(!gate.is_pin_entry());
        let (corner, progress) = gate.hold_progress(secs(t0, 1.5)).unwrap();
        assert_eq!(corner, Corner::TopRight);
        assert!((progress - 0.5).abs() < 0.01);
        gate.pointer(secs(t0, 3.0), Some(CORNER), SCREEN);
        assert!(gate.is_pin_entry());
        let view = gate.pin_pad().unwrap();
        assert_eq!(view.digits_entered, 0);
        assert_eq!(enter(&mut gate, "2468", secs(t0, 5.0)), AdminOutcome::Exit);
        assert_eq!(gate.update(secs(t0, 5.0)), AdminOutcome::Exit);
    }

    #[test]
    fn a_press_elsewhere_or_released_early_does_nothing() {
        let t0 = Instant::now();
        let mut gate = AdminGate::new(&config());
        // The wrong corner.
        gate.pointer(t0, Some(Pos2::new(10.0, 10.0)), SCREEN);
        gate.pointer(secs(t0, 10.0), Some(Pos2::new(10.0, 10.0)), SCREEN);
        assert_eq!(*gate.state(), AdminState::Watching);
        // Released after 2 s, pressed again: the clock starts over.
        gate.pointer(secs(t0, 20.0), Some(CORNER), SCREEN);
        gate.pointer(secs(t0, 22.0), None, SCREEN);
        gate.pointer(secs(t0, 22.5), Some(CORNER), SCREEN);
        gate.pointer(secs(t0, 24.0), Some(CORNER), SCREEN);
        assert!(!gate.is_pin_entry());
        // Dragged out of the corner.
        gate.pointer(secs(t0, 24.5), Some(Pos2::new(900.0, 500.0)), SCREEN);
        gate.pointer(secs(t0, 30.0), Some(Pos2::new(900.0, 500.0)), SCREEN);
        assert!(!gate.is_pin_entry());
    }

    #[test]
    fn wrong_pins_go_back_then_lock_out() {
        let t0 = Instant::now();
        let mut gate = AdminGate::new(&config());
        gate.chord(t0);
        assert!(gate.is_pin_entry());
        assert_eq!(enter(&mut gate, "1111", t0), AdminOutcome::None);
        let view = gate.pin_pad().expect("still open");
        assert_eq!(view.digits_entered, 0);
        assert_eq!(view.message.as_deref(), Some("Wrong PIN. 2 tries left."));
        enter(&mut gate, "246", t0);
        enter(&mut gate, "24688", t0);
        assert!(matches!(gate.state(), AdminState::LockedOut { .. }));
        // Locked: neither gesture opens the pad, nor does the right PIN help.
        gate.chord(secs(t0, 30.0));
        gate.pointer(secs(t0, 30.0), Some(CORNER), SCREEN);
        gate.pointer(secs(t0, 40.0), Some(CORNER), SCREEN);
        assert!(!gate.is_pin_entry());
        assert_eq!(enter(&mut gate, "2468", secs(t0, 40.0)), AdminOutcome::None);
        assert_eq!(gate.next_deadline(), Some(secs(t0, 60.0)));
        // After the lockout it works again.
        gate.chord(secs(t0, 61.0));
        assert!(gate.is_pin_entry());
        assert_eq!(enter(&mut gate, "2468", secs(t0, 62.0)), AdminOutcome::Exit);
    }

    #[test]
    fn the_pad_times_out_backspaces_and_cancels() {
        let t0 = Instant::now();
        let mut gate = AdminGate::new(&config());
        gate.chord(t0);
        gate.apply(PinPadAction::Digit(2), secs(t0, 1.0));
        gate.apply(PinPadAction::Digit(9), secs(t0, 2.0));
        gate.apply(PinPadAction::Backspace, secs(t0, 3.0));
        assert_eq!(gate.pin_pad().unwrap().digits_entered, 1);
        gate.apply(PinPadAction::Digit(42), secs(t0, 3.0));
        assert_eq!(gate.pin_pad().unwrap().digits_entered, 1);
        assert_eq!(gate.update(secs(t0, 22.9)), AdminOutcome::None);
        assert!(gate.is_pin_entry());
        gate.update(secs(t0, 23.0));
        assert!(!gate.is_pin_entry());

        gate.chord(secs(t0, 30.0));
        gate.apply(PinPadAction::Cancel, secs(t0, 31.0));
        assert_eq!(*gate.state(), AdminState::Watching);
        gate.chord(secs(t0, 32.0));
        gate.cancel();
        assert_eq!(*gate.state(), AdminState::Watching);
    }

    #[test]
    fn a_gesture_that_is_off_does_nothing() {
        let t0 = Instant::now();
        let mut gate = AdminGate::new(&AdminConfig {
            long_press_seconds: 0.0,
            ..config()
        });
        gate.pointer(t0, Some(CORNER), SCREEN);
        gate.pointer(secs(t0, 100.0), Some(CORNER), SCREEN);
        assert!(!gate.is_pin_entry());
        let mut gate = AdminGate::new(&AdminConfig {
            key_chord: String::new(),
            ..config()
        });
        gate.chord(t0);
        assert!(!gate.is_pin_entry());
    }

    #[test]
    fn key_chords_parse_and_print() {
        let chord: KeyChord = "ctrl + shift + q".parse().unwrap();
        assert_eq!(chord.key, Key::Q);
        assert!(chord.modifiers.ctrl && chord.modifiers.shift && !chord.modifiers.alt);
        assert_eq!(chord.to_string(), "Ctrl+Shift+Q");
        assert_eq!("Alt+F12".parse::<KeyChord>().unwrap().key, Key::F12);
        for bad in ["", "Ctrl+", "Hyper+Q", "Ctrl+Banana"] {
            assert!(bad.parse::<KeyChord>().is_err(), "{bad}");
        }
        assert!(chord.matches(Modifiers {
            ctrl: true,
            shift: true,
            command: true,
            ..Modifiers::NONE
        }));
        assert!(!chord.matches(Modifiers::CTRL));
    }

    #[test]
    fn pins_compare_exactly() {
        assert!(same("2468", "2468"));
        assert!(!same("246", "2468"));
        assert!(!same("24680", "2468"));
        assert!(!same("", "2468"));
        assert!(!same("2469", "2468"));
    }

    #[test]
    fn corners_are_inside_the_screen() {
        for corner in [
            Corner::TopLeft,
            Corner::TopRight,
            Corner::BottomLeft,
            Corner::BottomRight,
        ] {
            let r = corner.rect(SCREEN);
            assert!(SCREEN.contains_rect(r), "{corner:?} {r:?}");
            assert_eq!(r.width(), CORNER_SIZE);
        }
        assert!(
            Corner::BottomRight
                .rect(SCREEN)
                .contains(Pos2::new(1919.0, 1079.0))
        );
    }
}
