//! The attribution family, exactly as Captum 0.9 computes it with the model's normalised
//! input as `inputs` and `target = class` (the logit; `sign = −1` explains the negated
//! logit). Every function returns one value per input element (`channels × height × width`).

use super::backward::{ReluRule, input_gradient};
use super::quadrature::integrated_gradients_path;
use crate::model::Model;
use crate::model::reference::forward_f64;
use crate::model::rng::Rng;

/// `∂(sign · logit[class]) / ∂x` at `x` with the given ReLU rule.
pub fn gradient_at(model: &Model, x: &[f64], class: usize, sign: f64, rule: ReluRule) -> Vec<f64> {
    let activations = forward_f64(model, x.to_vec());
    input_gradient(model, &activations, class, sign, rule)
}

/// `sign · logit[class]` of `x`.
pub fn score_of(model: &Model, x: Vec<f64>, class: usize, sign: f64) -> f64 {
    sign * forward_f64(model, x).last().expect("the logits")[class]
}

/// Saliency (`captum/attr/_core/saliency.py`, `Saliency.attribute`, `abs = True`):
/// `|∂score/∂x|`.
pub fn saliency(model: &Model, x: &[f64], class: usize, sign: f64) -> Vec<f64> {
    gradient_at(model, x, class, sign, ReluRule::Plain)
        .into_iter()
        .map(f64::abs)
        .collect()
}

/// Input × gradient (`captum/attr/_core/input_x_gradient.py`): `x · ∂score/∂x`.
pub fn input_x_gradient(model: &Model, x: &[f64], class: usize, sign: f64) -> Vec<f64> {
    gradient_at(model, x, class, sign, ReluRule::Plain)
        .into_iter()
        .zip(x)
        .map(|(g, x)| g * x)
        .collect()
}

/// Guided backpropagation (`captum/attr/_core/guided_backprop_deconv.py`,
/// `GuidedBackprop`): the input gradient with every ReLU's gradient clamped at 0
/// ([`ReluRule::Guided`]).
pub fn guided_backprop(model: &Model, x: &[f64], class: usize, sign: f64) -> Vec<f64> {
    gradient_at(model, x, class, sign, ReluRule::Guided)
}

/// Guided Grad-CAM (`captum/attr/_core/guided_grad_cam.py`, `GuidedGradCam.attribute`):
/// `LayerGradCam` at the block with `relu_attributions = True` — `relu(Σ_k mean_p(G_k) A_k)`,
/// the Grad-CAM raw map (`block_raw`, `block_h × block_w`) — upsampled with
/// `F.interpolate(mode = "nearest")` to the input size, times guided backprop, every
/// input channel by the same map.
pub fn guided_grad_cam(
    guided: &[f64],
    block_raw: &[f64],
    (block_h, block_w): (usize, usize),
    (height, width): (usize, usize),
) -> Vec<f64> {
    let up = super::cam::nearest_resize(block_raw, block_h, block_w, height, width);
    let plane = height * width;
    guided
        .iter()
        .enumerate()
        .map(|(i, g)| g * up[i % plane])
        .collect()
}

/// Integrated Gradients (`captum/attr/_core/integrated_gradients.py`, `method =
/// "gausslegendre"`, `baselines = 0`): `x · Σ_i s_i ∂score/∂x (α_i x)` with the path
/// points `α_i` and step sizes `s_i` of [`integrated_gradients_path`]. By completeness the
/// attributions add up to about `score(x) − score(0)`.
pub fn integrated_gradients(
    model: &Model,
    x: &[f64],
    class: usize,
    sign: f64,
    steps: usize,
) -> Vec<f64> {
    let (alphas, step_sizes) = integrated_gradients_path(steps);
    let mut total = vec![0.0; x.len()];
    for (alpha, step) in alphas.iter().zip(&step_sizes) {
        let scaled: Vec<f64> = x.iter().map(|v| alpha * v).collect();
        let g = gradient_at(model, &scaled, class, sign, ReluRule::Plain);
        for (t, g) in total.iter_mut().zip(g) {
            *t += step * g;
        }
    }
    total.iter().zip(x).map(|(t, x)| t * x).collect()
}

/// SmoothGrad's noise, `samples × len` values (sample-major), the same on both engines:
/// `stdev · z` with `z` standard normal from [`Rng::new`]`(seed)` by the Box–Muller
/// transform — each pair of draws `u, v` (53-bit uniforms `(next_u64 >> 11) · 2⁻⁵³` in
/// `[0, 1)`) gives `r = sqrt(−2 ln(1 − u))` and the two values `r cos(2π v)`,
/// `r sin(2π v)`, in that order. (Captum draws `torch.normal(0, stdev)`; the values differ,
/// the distribution is the same.)
pub fn smoothgrad_noise(seed: u64, samples: usize, len: usize, stdev: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut uniform = || (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let count = samples * len;
    let mut noise = Vec::with_capacity(count + 1);
    while noise.len() < count {
        let (u, v) = (uniform(), uniform());
        let r = (-2.0 * (1.0 - u).ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * v;
        noise.push(stdev * r * angle.cos());
        noise.push(stdev * r * angle.sin());
    }
    noise.truncate(count);
    noise
}

/// SmoothGrad (`captum/attr/_core/noise_tunnel.py`, `NoiseTunnel(Saliency)` with
/// `nt_type = "smoothgrad"`): the mean over the noisy copies `x + noise_i` of
/// [`saliency`], with `noise` from [`smoothgrad_noise`].
pub fn smoothgrad(model: &Model, x: &[f64], class: usize, sign: f64, noise: &[f64]) -> Vec<f64> {
    let samples = noise.len() / x.len().max(1);
    let mut total = vec![0.0; x.len()];
    for n in noise.chunks(x.len()) {
        let noisy: Vec<f64> = x.iter().zip(n).map(|(x, n)| x + n).collect();
        for (t, s) in total.iter_mut().zip(saliency(model, &noisy, class, sign)) {
            *t += s;
        }
    }
    total.into_iter().map(|t| t / samples as f64).collect()
}

/// Top-left offsets of Captum's occlusion windows along one axis
/// (`captum/attr/_core/occlusion.py`): `ceil((side − window) / stride) + 1` positions
/// `i · stride`; a window that runs past the edge is cut there (`_occlusion_mask` pads
/// with a negative amount). A window wider than the side gives the one offset 0; `stride`
/// must be > 0.
pub fn occlusion_offsets(side: usize, window: usize, stride: usize) -> Vec<usize> {
    let count = side.saturating_sub(window).div_ceil(stride) + 1;
    (0..count).map(|i| i * stride).collect()
}

/// Occlusion (`captum/attr/_core/occlusion.py` on `feature_ablation.py`, `baselines = 0`,
/// `sliding_window_shapes = (channels, window, window)`, `strides = (channels, stride,
/// stride)`): for each window the drop `score(x) − score(x with the window set to 0)` is
/// added to every element the window covers; each element's sum is divided by the number
/// of windows covering it (`use_weights`). Needs `window ≤ height, width` and
/// `stride ≤ window`, as Captum asserts.
pub fn occlusion(
    model: &Model,
    x: &[f64],
    class: usize,
    sign: f64,
    (height, width): (usize, usize),
    window: usize,
    stride: usize,
) -> Vec<f64> {
    let plane = height * width;
    let channels = x.len() / plane;
    let base = score_of(model, x.to_vec(), class, sign);
    let mut total = vec![0.0; plane];
    let mut count = vec![0.0; plane];
    for &top in &occlusion_offsets(height, window, stride) {
        for &left in &occlusion_offsets(width, window, stride) {
            let covered: Vec<usize> = (top..(top + window).min(height))
                .flat_map(|y| (left..(left + window).min(width)).map(move |x| y * width + x))
                .collect();
            let mut occluded = x.to_vec();
            for c in 0..channels {
                for &p in &covered {
                    occluded[c * plane + p] = 0.0;
                }
            }
            let drop = base - score_of(model, occluded, class, sign);
            for &p in &covered {
                total[p] += drop;
                count[p] += 1.0;
            }
        }
    }
    (0..channels)
        .flat_map(|_| total.iter().zip(&count).map(|(t, c)| t / c))
        .collect()
}
