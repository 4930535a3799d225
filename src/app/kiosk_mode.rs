//! Kiosk behaviour inside the viewer: the idle reset between visitors, attract mode (MNIST
//! digits drawn onto the canvas while the camera orbits) and the admin exit (gesture, then
//! PIN). The state machines live in [`crate::kiosk`]; this module feeds them each frame and
//! applies what they say to the viewer's canvas, camera and dialogs.

use std::time::{Duration, Instant};

use crate::kiosk::{AdminGate, AdminOutcome, AttractDigits, AttractPlayer, IdleEvent, IdleTimer};
use crate::kiosk::{KioskConfig, person_input};

/// What the kiosk asks of the viewer this frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KioskActions {
    /// Forget the visitor: clear the canvas, close dialogs, home camera.
    pub reset: bool,
    /// A clean canvas (attract mode ended by a touch, or a new attract digit begins).
    pub clear_canvas: bool,
    /// Back to the home view (attract mode's orbit ended).
    pub home_camera: bool,
    /// Put this attract drawing on the canvas.
    pub attract_ink: Option<crate::data::preprocess::InkImage>,
    /// Turn the camera by this many degrees (attract orbit).
    pub orbit_degrees: f32,
    /// The right PIN was entered.
    pub exit: bool,
}

pub struct KioskMode {
    config: KioskConfig,
    idle: IdleTimer,
    attract: AttractPlayer,
    admin: AdminGate,
    /// The attract digit on the canvas, to start each one on a clean canvas.
    attract_sequence: Option<u64>,
    last_update: Instant,
}

impl KioskMode {
    /// `digits`: the attract digits (see [`AttractDigits::load`]).
    pub fn new(config: KioskConfig, digits: AttractDigits, now: Instant) -> KioskMode {
        let idle_after = Duration::try_from_secs_f64(config.idle_seconds)
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(100));
        KioskMode {
            idle: IdleTimer::new(idle_after, config.attract.enabled, now),
            attract: AttractPlayer::new(digits, &config.attract),
            admin: AdminGate::new(&config.admin),
            config,
            attract_sequence: None,
            last_update: now,
        }
    }

    pub fn config(&self) -> &KioskConfig {
        &self.config
    }

    pub fn in_attract(&self) -> bool {
        self.idle.in_attract()
    }

    /// Before the overlay runs: this frame's input against the idle timer, and attract
    /// mode's next drawing. `held`: a finger or button was still down after the last frame.
    pub fn before_frame(
        &mut self,
        now: Instant,
        events: &[egui::Event],
        held: bool,
    ) -> KioskActions {
        let dt = now
            .saturating_duration_since(self.last_update)
            .as_secs_f32();
        self.last_update = now;
        let mut actions = KioskActions::default();
        // While the PIN pad is open the admin is there: no reset under their fingers.
        let person = held || self.admin.is_pin_entry() || events.iter().any(person_input);
        for event in self.idle.update(now, person) {
            match event {
                IdleEvent::Reset => {
                    actions.reset = true;
                    self.admin.cancel();
                }
                IdleEvent::AttractStarted => {
                    self.attract.restart();
                    self.attract_sequence = None;
                    log::info!("attract mode started");
                }
                IdleEvent::AttractEnded => {
                    actions.clear_canvas = true;
                    actions.home_camera = true;
                    self.attract_sequence = None;
                    log::info!("attract mode ended by a visitor");
                }
            }
        }
        if let Some(elapsed) = self.idle.attract_elapsed(now) {
            if let Some(frame) = self.attract.update(elapsed) {
                if self.attract_sequence != Some(frame.sequence) {
                    self.attract_sequence = Some(frame.sequence);
                    actions.clear_canvas = true;
                }
                actions.attract_ink = Some(frame.ink);
            }
            actions.orbit_degrees = self.config.attract.orbit_degrees_per_second * dt.min(0.25);
        }
        actions
    }

    /// Inside the overlay's pass: the PIN pad and the long-press ring, and the admin
    /// gesture read from the input egui has just processed.
    pub fn show(&mut self, ctx: &egui::Context, now: Instant) -> KioskActions {
        let screen = ctx.content_rect();
        let pressed_at = ctx.input(|i| {
            let down = i.pointer.primary_down() || i.any_touches();
            down.then(|| i.pointer.interact_pos()).flatten()
        });
        self.admin.pointer(now, pressed_at, screen);
        if let Some(chord) = self.admin.key_chord()
            && ctx.input(|i| chord.pressed(i))
        {
            self.admin.chord(now);
        }
        let mut actions = KioskActions::default();
        if let Some((corner, progress)) = self.admin.hold_progress(now) {
            crate::ui::pin_pad::show_hold_progress(ctx, corner.rect(screen), progress);
            ctx.request_repaint();
        }
        if let Some(view) = self.admin.pin_pad() {
            for action in crate::ui::pin_pad::show(ctx, &view) {
                if self.admin.apply(action, now) == AdminOutcome::Exit {
                    actions.exit = true;
                }
            }
        }
        if self.admin.update(now) == AdminOutcome::Exit {
            actions.exit = true;
        }
        actions
    }

    /// When the kiosk next changes by itself (idle reset, PIN pad timeout, lockout end).
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.idle.next_deadline(), self.admin.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }
}
