//! The one backward pass every gradient method uses: from a seed of ±1 on one logit down to
//! the input, with a choice of how ReLUs pass gradients.

use crate::model::reference::{layer_backward, relu_backward};
use crate::model::{LayerOp, Model};

/// How a ReLU layer passes the gradient back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReluRule {
    /// PyTorch's autograd: `dx = dy` where the ReLU's input is > 0, else 0.
    Plain,
    /// Guided backpropagation, as Captum's `ModifiedReluGradientAttribution`
    /// (`captum/attr/_core/guided_backprop_deconv.py`, `_backward_hook`) computes it: the
    /// plain gradient, then `F.relu` of it, i.e. `dx = max(dy, 0)` where the input is > 0.
    Guided,
}

/// `+1` for the logit itself, `−1` for the counterfactual (the negated logit).
pub fn seed_sign(counterfactual: bool) -> f64 {
    if counterfactual { -1.0 } else { 1.0 }
}

/// Gradients of `sign · logit[class]` with respect to every activation (index 0 the input,
/// `i + 1` the output of layer `i`, as [`crate::model::reference::forward`] returns them),
/// from the logits down to index `down_to`; entries below `down_to` are `None`.
///
/// Every layer but ReLU uses [`layer_backward`]; ReLUs follow `rule`.
pub fn gradients(
    model: &Model,
    activations: &[Vec<f64>],
    class: usize,
    sign: f64,
    rule: ReluRule,
    down_to: usize,
) -> Vec<Option<Vec<f64>>> {
    let last = model.layers.len();
    let mut seed = vec![0.0; activations[last].len()];
    seed[class] = sign;
    gradients_from(model, activations, last, seed, rule, down_to)
}

/// Gradients of any objective whose gradient with respect to activation `from` is
/// `seed`, down to activation `down_to` (entries outside `down_to..=from` are `None`): the
/// feature visualisation seeds a conv block's output with it.
pub fn gradients_from(
    model: &Model,
    activations: &[Vec<f64>],
    from: usize,
    seed: Vec<f64>,
    rule: ReluRule,
    down_to: usize,
) -> Vec<Option<Vec<f64>>> {
    let mut grads: Vec<Option<Vec<f64>>> = vec![None; model.layers.len() + 1];
    grads[from] = Some(seed);
    for i in (down_to..from).rev() {
        let dy = grads[i + 1].as_ref().expect("filled on the previous step");
        let layer = &model.layers[i];
        let dx = match (layer.plan.op, rule) {
            (LayerOp::Relu, ReluRule::Guided) => relu_backward(&activations[i], dy)
                .into_iter()
                .map(|g| g.max(0.0))
                .collect(),
            _ => layer_backward(layer, &activations[i], dy),
        };
        grads[i] = Some(dx);
    }
    grads
}

/// Gradient of `sign · logit[class]` with respect to the input (normalised units).
pub fn input_gradient(
    model: &Model,
    activations: &[Vec<f64>],
    class: usize,
    sign: f64,
    rule: ReluRule,
) -> Vec<f64> {
    gradients(model, activations, class, sign, rule, 0)
        .swap_remove(0)
        .expect("computed down to the input")
}
