//! Where a frame's CPU time goes, phase by phase: what `cnnviz bench --only window` reports
//! and what a slow frame is read from. Plain `Instant` laps, no GPU involvement (the GPU's
//! part is measured from outside the frame: a frame never waits for it).

use std::time::Instant;

/// CPU milliseconds of the last frame's parts, in the order they ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct FrameSplit {
    /// The overlay's UI code (panels, dashboard, scene labels): egui's layout pass.
    pub overlay_build_ms: f64,
    /// egui's tessellation of that UI into triangles.
    pub overlay_tessellate_ms: f64,
    /// Applying events, gestures, store outcomes, the camera.
    pub apply_ms: f64,
    /// Recording the network (forward, Grad-CAM, value ranges, feature-map textures and the
    /// results' copy) when the generation needs it.
    pub inference_record_ms: f64,
    /// Re-runs and the hovered value's copy.
    pub readbacks_record_ms: f64,
    /// The cube scene's uniform and pass.
    pub scene_record_ms: f64,
    /// egui's texture uploads, vertex buffers and pass.
    pub egui_paint_ms: f64,
    /// `queue.submit` and starting the readbacks' maps.
    pub submit_ms: f64,
    /// The non-blocking poll and whatever came back.
    pub collect_ms: f64,
    /// The whole frame, input to redraw decision.
    pub total_ms: f64,
    /// Whether this frame recorded an inference.
    pub inference: bool,
    /// The scene's internal resolution, as a fraction of its area's width and height
    /// (dynamic resolution; 1 at rest).
    pub scene_scale: f32,
}

impl FrameSplit {
    /// The parts as (name, milliseconds), for tables.
    pub fn parts(&self) -> [(&'static str, f64); 9] {
        [
            ("overlay build", self.overlay_build_ms),
            ("overlay tessellation", self.overlay_tessellate_ms),
            ("apply", self.apply_ms),
            ("inference record", self.inference_record_ms),
            ("readbacks record", self.readbacks_record_ms),
            ("scene record", self.scene_record_ms),
            ("egui paint", self.egui_paint_ms),
            ("submit", self.submit_ms),
            ("collect", self.collect_ms),
        ]
    }
}

/// A stopwatch that hands out the time since its last lap.
pub(super) struct Laps(Instant);

impl Laps {
    pub fn start() -> Laps {
        Laps(Instant::now())
    }

    /// Milliseconds since the start or the previous lap.
    pub fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let ms = (now - self.0).as_secs_f64() * 1e3;
        self.0 = now;
        ms
    }
}
