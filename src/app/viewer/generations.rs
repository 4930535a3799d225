//! Which input the window's answer belongs to. Every change of what the network must
//! answer (a stroke, an undo, a clear, another Grad-CAM target or block) starts a new
//! generation; every inference and every copy of its results for the CPU is recorded for
//! one generation; results that come back carry theirs, and only the current generation's
//! are shown. An inference stays due until the current generation's results are on their
//! way, so a copy skipped because the last one was still out is never lost.

use crate::gpu::ImageOutput;

#[derive(Debug, Default)]
pub struct Generations {
    current: u64,
    /// The generation whose inference the scene's arena holds.
    scene: Option<u64>,
    /// The generation whose results were last copied for the CPU.
    copied: Option<u64>,
    /// The last results that came back and their generation.
    arrived: Option<(u64, ImageOutput)>,
}

impl Generations {
    /// The canvas or the analysis changed.
    pub fn advance(&mut self) {
        self.current += 1;
    }

    pub fn current(&self) -> u64 {
        self.current
    }

    /// Run the scene again for the same input (Predict starts a wave).
    pub fn rerun_scene(&mut self) {
        self.scene = None;
    }

    /// A new device: its arena is empty and no copy is on its way.
    pub fn gpu_replaced(&mut self) {
        self.scene = None;
        self.copied = None;
    }

    /// Whether this frame must record an inference: the arena is behind, or the results
    /// have not been copied and the readback is free to take them.
    pub fn inference_due(&self, readback_free: bool) -> bool {
        self.scene != Some(self.current) || (self.copied != Some(self.current) && readback_free)
    }

    /// Whether the scene's arena holds the current generation's inference.
    pub fn scene_is_current(&self) -> bool {
        self.scene == Some(self.current)
    }

    /// Whether anything is still to be recorded for the current generation.
    pub fn pending(&self) -> bool {
        self.scene != Some(self.current) || self.copied != Some(self.current)
    }

    /// An inference of the current generation was recorded; `copied` when its results'
    /// copy was too.
    pub fn recorded(&mut self, copied: bool) {
        self.scene = Some(self.current);
        if copied {
            self.copied = Some(self.current);
        }
    }

    /// The copy failed to come back: record it again.
    pub fn copy_lost(&mut self) {
        self.copied = None;
    }

    /// Results recorded for `generation` came back.
    pub fn arrived(&mut self, generation: u64, output: ImageOutput) {
        self.arrived = Some((generation, output));
    }

    /// The current generation's results, once back; never an earlier one's.
    pub fn shown(&self) -> Option<&ImageOutput> {
        self.arrived
            .as_ref()
            .filter(|(generation, _)| *generation == self.current)
            .map(|(_, output)| output)
    }

    /// Whether the current generation's results are back.
    pub fn settled(&self) -> bool {
        self.shown().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(predicted: usize) -> ImageOutput {
        ImageOutput {
            logits: vec![0.0; 10],
            probabilities: vec![0.1; 10],
            predicted,
            target: predicted,
            grad_cam: None,
            value_ranges: None,
        }
    }

    #[test]
    fn an_earlier_generation_is_never_shown() {
        let mut g = Generations::default();
        assert!(g.inference_due(true));
        g.recorded(true);
        let first = g.current();
        g.advance();
        g.arrived(first, output(8));
        assert!(
            g.shown().is_none(),
            "results of the last drawing under a new one"
        );
        assert!(!g.settled());
    }

    #[test]
    fn a_skipped_copy_keeps_the_inference_due() {
        let mut g = Generations::default();
        g.recorded(true);
        g.advance();
        // The readback is still out: the scene updates, the copy waits.
        assert!(g.inference_due(false));
        g.recorded(false);
        assert!(
            !g.inference_due(false),
            "nothing to do while the copy is out"
        );
        assert!(g.pending());
        // Once free, the same generation is recorded again with its copy.
        assert!(g.inference_due(true));
        g.recorded(true);
        assert!(!g.pending());
        g.arrived(g.current(), output(3));
        assert_eq!(g.shown().map(|o| o.predicted), Some(3));
    }
}
