//! Dynamic resolution: how sharply the scene is drawn this frame. While frames follow one
//! another (drawing, the camera gliding) and miss the frame budget, the scene is drawn at a
//! lower internal resolution and stretched over its area ([`crate::scene::SceneUpscaler`]);
//! when they make it with room to spare, sharper again. At rest the scene is always drawn at
//! full resolution: a frame drawn reduced that would be the last one asks for one more, sharp.
//! The overlay (text included) is never reduced, and picking works in the scene's area in the
//! frame, whatever its internal resolution.

use std::time::{Duration, Instant};

/// The scales tried, sharpest first (fractions of the scene area's width and height). A few
/// fixed steps keep the reduced target from being remade every frame.
pub const SCALES: [f32; 4] = [1.0, 0.8, 0.65, 0.5];

/// The frame period aimed at: 30 frames a second while something moves.
const BUDGET: Duration = Duration::from_micros(33_333);
/// Frames in a row over the budget before the scene gets coarser.
const SLOW_FRAMES: u32 = 2;
/// Frames in a row well under the budget (below `FAST_FRACTION` of it) before it gets
/// sharper: slower than coarsening, so the scale does not flicker.
const FAST_FRAMES: u32 = 20;
const FAST_FRACTION: f64 = 0.6;

#[derive(Debug, Default)]
pub(super) struct DynamicResolution {
    /// Index into [`SCALES`].
    level: usize,
    last_begin: Option<Instant>,
    slow: u32,
    fast: u32,
    /// The last frame was drawn reduced and no other frame was due: draw a sharp one.
    sharpen: bool,
    /// A scale fixed from outside (tests, pictures), instead of the budget's.
    pinned: Option<f32>,
}

impl DynamicResolution {
    /// The scale of the frame beginning at `now`; `continuous` when the previous frame asked
    /// to be followed at once (something moves or is on its way).
    pub fn begin(&mut self, now: Instant, continuous: bool) -> f32 {
        let period = self.last_begin.map(|t| now.saturating_duration_since(t));
        self.last_begin = Some(now);
        if let Some(scale) = self.pinned {
            return scale;
        }
        if !continuous || std::mem::take(&mut self.sharpen) {
            self.slow = 0;
            self.fast = 0;
            return 1.0;
        }
        match period {
            Some(p) if p > BUDGET => {
                self.fast = 0;
                self.slow += 1;
                if self.slow >= SLOW_FRAMES {
                    self.slow = 0;
                    self.level = (self.level + 1).min(SCALES.len() - 1);
                }
            }
            Some(p) if p.as_secs_f64() < BUDGET.as_secs_f64() * FAST_FRACTION => {
                self.slow = 0;
                self.fast += 1;
                if self.fast >= FAST_FRAMES {
                    self.fast = 0;
                    self.level = self.level.saturating_sub(1);
                }
            }
            _ => {
                self.slow = 0;
                self.fast = 0;
            }
        }
        SCALES[self.level]
    }

    /// Fixes the scale (clamped to 0.25..=1), or gives it back to the budget with `None`.
    pub fn pin(&mut self, scale: Option<f32>) {
        self.pinned = scale.map(|s| {
            if s.is_finite() {
                s.clamp(0.25, 1.0)
            } else {
                1.0
            }
        });
    }

    /// The frame drawn at `scale` would be the last for now (`continuous` false): true when
    /// it must be followed by a sharp one.
    pub fn must_sharpen(&mut self, scale: f32, continuous: bool) -> bool {
        self.sharpen = scale < 1.0 && !continuous && self.pinned.is_none();
        self.sharpen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_continuous_frames_reduce_the_scene_and_rest_restores_it() {
        let mut dr = DynamicResolution::default();
        let mut now = Instant::now();
        assert_eq!(dr.begin(now, true), 1.0, "no period yet");
        let mut scale = 1.0;
        for _ in 0..8 {
            now += Duration::from_millis(100);
            scale = dr.begin(now, true);
        }
        assert_eq!(
            scale,
            *SCALES.last().unwrap(),
            "slow frames reach the coarsest scale"
        );
        // The last frame of a burst is followed by a sharp one.
        assert!(dr.must_sharpen(scale, false));
        now += Duration::from_millis(100);
        assert_eq!(
            dr.begin(now, true),
            1.0,
            "the sharpening frame is full resolution"
        );
        assert!(!dr.must_sharpen(1.0, false));
        // At rest: always sharp.
        now += Duration::from_millis(500);
        assert_eq!(dr.begin(now, false), 1.0);
    }

    #[test]
    fn fast_frames_sharpen_again_slowly() {
        let mut dr = DynamicResolution::default();
        let mut now = Instant::now();
        dr.begin(now, true);
        for _ in 0..4 {
            now += Duration::from_millis(100);
            dr.begin(now, true);
        }
        let coarse = dr.level;
        assert!(coarse > 0);
        for _ in 0..FAST_FRAMES - 1 {
            now += Duration::from_millis(5);
            dr.begin(now, true);
        }
        assert_eq!(dr.level, coarse, "one fast frame short of a step");
        now += Duration::from_millis(5);
        dr.begin(now, true);
        assert_eq!(dr.level, coarse - 1);
    }
}
