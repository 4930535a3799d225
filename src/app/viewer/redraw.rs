//! Phase 7 of a frame: when to draw next. Continuously only while something moves or is
//! on its way; otherwise the window sleeps until an event, egui's own next repaint (a
//! tooltip delay, a blinking cursor) or a kiosk deadline.

use std::time::{Duration, Instant};

use super::Redraw;

/// Everything the decision depends on.
pub(super) struct RedrawInputs {
    /// The camera glides, the wave runs, attract mode draws.
    pub moving: bool,
    /// A readback or a re-run is on its way.
    pub waiting: bool,
    /// Something arrived after the frame was drawn.
    pub arrived: bool,
    /// The current generation still needs an inference or its copy.
    pub inference_pending: bool,
    pub egui_delay: Option<Duration>,
    pub kiosk_deadline: Option<Instant>,
}

pub(super) fn next_redraw(inputs: RedrawInputs, now: Instant) -> Redraw {
    if inputs.moving || inputs.waiting || inputs.arrived || inputs.inference_pending {
        return Redraw::Now;
    }
    let egui_wants = inputs.egui_delay.and_then(|delay| now.checked_add(delay));
    match egui_wants.into_iter().chain(inputs.kiosk_deadline).min() {
        Some(at) if at <= now => Redraw::Now,
        Some(at) => Redraw::At(at),
        None => Redraw::OnInput,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resting() -> RedrawInputs {
        RedrawInputs {
            moving: false,
            waiting: false,
            arrived: false,
            inference_pending: false,
            egui_delay: None,
            kiosk_deadline: None,
        }
    }

    #[test]
    fn a_resting_window_sleeps_until_input_or_a_deadline() {
        let now = Instant::now();
        assert_eq!(next_redraw(resting(), now), Redraw::OnInput);
        let later = now + Duration::from_secs(2);
        let kiosk = RedrawInputs {
            kiosk_deadline: Some(later),
            egui_delay: Some(Duration::from_secs(5)),
            ..resting()
        };
        assert_eq!(next_redraw(kiosk, now), Redraw::At(later));
        let pending = RedrawInputs {
            inference_pending: true,
            ..resting()
        };
        assert_eq!(next_redraw(pending, now), Redraw::Now);
    }
}
