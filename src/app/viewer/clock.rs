//! Time in the viewer: the frame clock (what the timing panel reports: the work a frame
//! costs, not the time between frames, which an idle window stretches to seconds) and the
//! wave that sweeps through the layers after a new drawing.

use std::time::Instant;

use crate::scene::Wave;

#[derive(Debug)]
pub(super) struct FrameClock {
    started: Instant,
    last_frame: Instant,
    frame_began: Instant,
    since_last: f32,
    /// CPU time the last finished frame took, from its input to its submit and readbacks.
    work_seconds: Option<f32>,
    frames: u64,
}

impl FrameClock {
    pub fn new() -> FrameClock {
        let now = Instant::now();
        FrameClock {
            started: now,
            last_frame: now,
            frame_began: now,
            since_last: 0.0,
            work_seconds: None,
            frames: 0,
        }
    }

    /// A frame begins; returns its time.
    pub fn begin(&mut self) -> Instant {
        let now = Instant::now();
        self.since_last = (now - self.last_frame).as_secs_f32();
        self.last_frame = now;
        self.frame_began = now;
        self.frames += 1;
        now
    }

    /// The frame's work is done (submitted, readbacks collected).
    pub fn end(&mut self) {
        self.work_seconds = Some(self.frame_began.elapsed().as_secs_f32());
    }

    /// Seconds since the viewer started (the scene's animation time).
    pub fn time(&self) -> f32 {
        self.started.elapsed().as_secs_f32()
    }

    /// Seconds since the previous frame (camera motion).
    pub fn since_last(&self) -> f32 {
        self.since_last
    }

    pub fn work_seconds(&self) -> Option<f32> {
        self.work_seconds
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// The wave through the layers: on for a new drawing (the first stroke on an empty canvas)
/// or Predict. Later strokes update the scene in place; a wave restarted on every stroke
/// would keep the deeper layers hidden for as long as the person draws.
#[derive(Debug)]
pub(super) struct WaveState {
    pub animation: bool,
    pub running: Option<Wave>,
    /// The next inference starts a wave.
    pub due: bool,
}

impl WaveState {
    /// Starts the wave if one is due.
    pub fn start_if_due(&mut self, time: f32) {
        if std::mem::take(&mut self.due) && self.animation {
            self.running = Some(Wave::starting_at(time));
        }
    }

    /// The wave, while it runs.
    pub fn at(&self, time: f32) -> Option<Wave> {
        self.running.filter(|w| w.running(time))
    }
}
