//! Adam (Kingma & Ba) exactly as `torch.optim.Adam` with default betas and eps, and the
//! learning-rate schedule.

use crate::model::LayerParams;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// The moment estimates, shaped like the parameters.
pub struct Adam {
    m: Vec<LayerParams>,
    v: Vec<LayerParams>,
    step: i32,
}

impl Adam {
    /// `zeros` must be shaped like the parameters (see `Network::zero_params`).
    pub fn new(zeros: Vec<LayerParams>) -> Self {
        Self {
            m: zeros.clone(),
            v: zeros,
            step: 0,
        }
    }

    /// One update of every parameter with its gradient.
    pub fn step(&mut self, params: &mut [LayerParams], grads: &[LayerParams], learning_rate: f32) {
        self.step = self.step.saturating_add(1);
        let correction1 = 1.0 - BETA1.powi(self.step);
        let correction2 = 1.0 - BETA2.powi(self.step);
        let step_size = learning_rate / correction1;
        let root2 = correction2.sqrt();
        let layers = params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut().zip(&mut self.v));
        for ((p, g), (m, v)) in layers {
            update(
                &mut p.weight,
                &g.weight,
                &mut m.weight,
                &mut v.weight,
                step_size,
                root2,
            );
            update(
                &mut p.bias,
                &g.bias,
                &mut m.bias,
                &mut v.bias,
                step_size,
                root2,
            );
        }
    }
}

/// PyTorch's formulation: `p -= lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)`.
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step_size: f32, root2: f32) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        *p -= step_size * *m / (v.sqrt() / root2 + EPSILON);
    }
}

/// Cosine annealing from `peak` at the first step down to `peak · floor` at the last:
/// large steps while the loss is high, small ones to settle into a minimum at the end,
/// with no schedule parameters to tune beyond the peak.
pub fn cosine_learning_rate(peak: f32, floor: f32, step: usize, total_steps: usize) -> f32 {
    let progress = if total_steps > 1 {
        step as f32 / (total_steps - 1) as f32
    } else {
        0.0
    };
    let cosine = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
    peak * (floor + (1.0 - floor) * cosine)
}
