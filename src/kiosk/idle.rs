//! When the kiosk resets for the next visitor and when attract mode starts and ends.
//!
//! [`IdleTimer`] is a pure state machine: the window calls [`IdleTimer::update`] once a
//! frame with the time and whether a person did anything this frame (see
//! [`person_input`]), and acts on the [`IdleEvent`]s it returns:
//! - `Reset`: clear an unsaved drawing, close dialogs and the PIN pad, reset the camera;
//! - `AttractStarted`: start the attract player and the camera orbit;
//! - `AttractEnded`: stop them and clear the canvas *before* the overlay sees this frame's
//!   input, so the touch that ended attract mode starts the visitor's first stroke on a
//!   clean canvas.

use std::time::{Duration, Instant};

/// Where the kiosk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePhase {
    /// Someone is (or was recently) using it.
    Active,
    /// Reset after idling, attract mode off: a clean, still canvas waits.
    Resting,
    /// Attract mode since the instant given.
    Attract { since: Instant },
}

/// Something the window acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleEvent {
    /// Nobody for the idle time: forget the visitor's drawing and dialogs.
    Reset,
    /// Attract mode begins (always right after a `Reset`).
    AttractStarted,
    /// A person touched during attract mode: stop it and give them a clean canvas.
    AttractEnded,
}

/// The idle → reset → attract → touch → active cycle; see the module docs.
#[derive(Clone, Debug)]
pub struct IdleTimer {
    idle_after: Duration,
    attract: bool,
    last_activity: Instant,
    phase: IdlePhase,
}

impl IdleTimer {
    /// `idle_after`: the config's `idle_seconds`; `attract`: `attract.enabled`. `now` counts
    /// as activity, so a kiosk that just started waits the full idle time first.
    pub fn new(idle_after: Duration, attract: bool, now: Instant) -> IdleTimer {
        IdleTimer {
            idle_after,
            attract,
            last_activity: now,
            phase: IdlePhase::Active,
        }
    }

    pub fn phase(&self) -> IdlePhase {
        self.phase
    }

    pub fn in_attract(&self) -> bool {
        matches!(self.phase, IdlePhase::Attract { .. })
    }

    /// Time since attract mode started, for the attract player and the orbit.
    pub fn attract_elapsed(&self, now: Instant) -> Option<Duration> {
        match self.phase {
            IdlePhase::Attract { since } => Some(now.saturating_duration_since(since)),
            _ => None,
        }
    }

    /// Feeds one frame. `person` is true when a touch, click, pointer move or key came in
    /// this frame (or a finger is still held down). Returns what happened, in order.
    pub fn update(&mut self, now: Instant, person: bool) -> Vec<IdleEvent> {
        let mut events = Vec::new();
        if person {
            self.last_activity = self.last_activity.max(now);
            match self.phase {
                IdlePhase::Attract { .. } => events.push(IdleEvent::AttractEnded),
                IdlePhase::Resting | IdlePhase::Active => {}
            }
            self.phase = IdlePhase::Active;
            return events;
        }
        if self.phase == IdlePhase::Active
            && now.saturating_duration_since(self.last_activity) >= self.idle_after
        {
            events.push(IdleEvent::Reset);
            if self.attract {
                events.push(IdleEvent::AttractStarted);
                self.phase = IdlePhase::Attract { since: now };
            } else {
                self.phase = IdlePhase::Resting;
            }
        }
        events
    }

    /// When [`IdleTimer::update`] would next return something without input: the window
    /// sleeps until then (`ControlFlow::WaitUntil`) instead of polling. `None` while resting
    /// or attracting (attract mode animates, so the window redraws anyway).
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            IdlePhase::Active => Some(self.last_activity + self.idle_after),
            _ => None,
        }
    }

    /// Back to active, as if a person had just been here (e.g. after the admin closed the
    /// PIN pad), without an event.
    pub fn poke(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
        self.phase = IdlePhase::Active;
    }
}

/// Whether an input event comes from a person: touches, presses, pointer moves, wheels,
/// keys and text. Window focus changes, screenshots and the like are not.
pub fn person_input(event: &egui::Event) -> bool {
    use egui::Event;
    matches!(
        event,
        Event::Touch { .. }
            | Event::PointerButton { .. }
            | Event::PointerMoved(_)
            | Event::MouseMoved(_)
            | Event::MouseWheel { .. }
            | Event::Zoom(_)
            | Event::Rotate(_)
            | Event::Key { .. }
            | Event::Text(_)
    )
}

/// [`person_input`] over a frame's raw input, plus a finger or button still held down.
pub fn person_in(input: &egui::InputState) -> bool {
    input.events.iter().any(person_input) || input.pointer.any_down() || input.any_touches()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn idle_resets_then_attracts_and_a_touch_ends_it() {
        let t0 = Instant::now();
        let mut idle = IdleTimer::new(Duration::from_secs(60), true, t0);
        assert!(idle.update(at(t0, 59), false).is_empty());
        assert_eq!(idle.next_deadline(), Some(at(t0, 60)));
        assert_eq!(
            idle.update(at(t0, 60), false),
            [IdleEvent::Reset, IdleEvent::AttractStarted]
        );
        assert!(idle.in_attract());
        assert_eq!(
            idle.attract_elapsed(at(t0, 75)),
            Some(Duration::from_secs(15))
        );
        // Attract mode goes on as long as nobody comes: no second reset.
        assert!(idle.update(at(t0, 500), false).is_empty());
        assert_eq!(idle.update(at(t0, 501), true), [IdleEvent::AttractEnded]);
        assert_eq!(idle.phase(), IdlePhase::Active);
        assert!(idle.update(at(t0, 502), true).is_empty());
        // The next idle period counts from the last touch.
        assert!(idle.update(at(t0, 561), false).is_empty());
        assert_eq!(idle.update(at(t0, 562), false)[0], IdleEvent::Reset);
    }

    #[test]
    fn activity_postpones_the_reset() {
        let t0 = Instant::now();
        let mut idle = IdleTimer::new(Duration::from_secs(60), true, t0);
        for s in (0..600).step_by(30) {
            assert!(idle.update(at(t0, s), true).is_empty(), "{s}");
            assert!(idle.update(at(t0, s + 29), false).is_empty(), "{s}");
        }
    }

    #[test]
    fn without_attract_it_resets_once_and_rests() {
        let t0 = Instant::now();
        let mut idle = IdleTimer::new(Duration::from_secs(10), false, t0);
        assert_eq!(idle.update(at(t0, 10), false), [IdleEvent::Reset]);
        assert_eq!(idle.phase(), IdlePhase::Resting);
        assert!(idle.update(at(t0, 100), false).is_empty());
        assert_eq!(idle.next_deadline(), None);
        // A touch while resting needs no event: the canvas is already clean.
        assert!(idle.update(at(t0, 101), true).is_empty());
        assert_eq!(idle.phase(), IdlePhase::Active);
    }

    #[test]
    fn time_going_backwards_does_nothing_odd() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut idle = IdleTimer::new(Duration::from_secs(10), true, t0);
        assert!(idle.update(t0 - Duration::from_secs(50), false).is_empty());
        idle.update(t0 - Duration::from_secs(50), true);
        assert!(idle.update(at(t0, 9), false).is_empty());
        assert_eq!(idle.update(at(t0, 10), false).len(), 2);
    }

    #[test]
    fn person_input_is_touch_pointer_and_keys() {
        assert!(person_input(&egui::Event::PointerMoved(egui::Pos2::ZERO)));
        assert!(person_input(&egui::Event::Text("a".into())));
        assert!(!person_input(&egui::Event::WindowFocused(true)));
        assert!(!person_input(&egui::Event::PointerGone));
    }
}
