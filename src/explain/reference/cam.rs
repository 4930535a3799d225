//! The CAM family, exactly as pytorch-grad-cam 1.5.7 computes it.
//!
//! Notation: `A` is the target block's output (its ReLU's output; `channels × plane` with
//! `plane = height · width`, channel-major like PyTorch's NCHW), `G` the gradient of the
//! score (`±logit[class]`, pytorch-grad-cam's `ClassifierOutputTarget`) with respect to `A`.
//! Every `*_raw` function returns the map at the block's resolution after `BaseCAM`'s
//! `np.maximum(cam, 0)` (`base_cam.py`, `compute_cam_per_layer`) and before any
//! normalisation; [`cam_heatmap`] then scales it as `BaseCAM` does.

use crate::model::reference::{
    bilinear_resize, bilinear_resize_align_corners, min_max_normalize, softmax, value_range,
};

/// `relu(Σ_k w_k A_k)`: `BaseCAM.get_cam_image` (`base_cam.py`), `weights[:, :, None,
/// None] * activations` summed over channels, then `BaseCAM`'s ReLU.
pub fn weighted_sum_raw(weights: &[f64], a: &[f64], plane: usize) -> Vec<f64> {
    (0..plane)
        .map(|p| {
            let s: f64 = weights
                .iter()
                .enumerate()
                .map(|(k, w)| w * a[k * plane + p])
                .sum();
            s.max(0.0)
        })
        .collect()
}

/// `relu(Σ_k f(G_k, A_k))` pixel by pixel: the element-wise CAMs.
fn element_wise_raw(a: &[f64], g: &[f64], plane: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let channels = a.len() / plane;
    (0..plane)
        .map(|p| {
            let s: f64 = (0..channels)
                .map(|k| f(g[k * plane + p], a[k * plane + p]))
                .sum();
            s.max(0.0)
        })
        .collect()
}

fn per_channel(g: &[f64], plane: usize, f: impl Fn(usize, &[f64]) -> f64) -> Vec<f64> {
    g.chunks(plane).enumerate().map(|(k, c)| f(k, c)).collect()
}

/// Grad-CAM's channel weights `w_k = mean_p G_k[p]` (`grad_cam.py`, `GradCAM.get_cam_weights`:
/// `np.mean(grads, axis=(2, 3))`).
pub fn grad_cam_weights(g: &[f64], plane: usize) -> Vec<f64> {
    per_channel(g, plane, |_, c| c.iter().sum::<f64>() / plane as f64)
}

/// Grad-CAM++'s channel weights (`grad_cam_plusplus.py`, `GradCAMPlusPlus.get_cam_weights`):
/// `α = G² / (2 G² + (Σ_p A_k) G³ + 1e-6)`, `α = 0` where `G = 0`,
/// `w_k = Σ_p max(G, 0) · α`.
pub fn grad_cam_plus_plus_weights(a: &[f64], g: &[f64], plane: usize) -> Vec<f64> {
    per_channel(g, plane, |k, gk| {
        let sum_a: f64 = a[k * plane..(k + 1) * plane].iter().sum();
        gk.iter()
            .map(|&g| {
                let (g2, g3) = (g * g, g * g * g);
                let alpha = if g != 0.0 {
                    g2 / (2.0 * g2 + sum_a * g3 + 1e-6)
                } else {
                    0.0
                };
                g.max(0.0) * alpha
            })
            .sum()
    })
}

/// XGrad-CAM's channel weights (`xgrad_cam.py`, `XGradCAM.get_cam_weights`):
/// `w_k = Σ_p G_k A_k / (Σ_p A_k + 1e-7)`.
pub fn xgrad_cam_weights(a: &[f64], g: &[f64], plane: usize) -> Vec<f64> {
    per_channel(g, plane, |k, gk| {
        let ak = &a[k * plane..(k + 1) * plane];
        let sum_a: f64 = ak.iter().sum();
        gk.iter().zip(ak).map(|(g, a)| g * a / (sum_a + 1e-7)).sum()
    })
}

/// HiResCAM (`hirescam.py`, `HiResCAM.get_cam_image`): `relu(Σ_k G_k ∘ A_k)`.
pub fn hires_cam_raw(a: &[f64], g: &[f64], plane: usize) -> Vec<f64> {
    element_wise_raw(a, g, plane, |g, a| g * a)
}

/// LayerCAM (`layer_cam.py`, `LayerCAM.get_cam_image`): `relu(Σ_k max(G_k, 0) ∘ A_k)`.
pub fn layer_cam_raw(a: &[f64], g: &[f64], plane: usize) -> Vec<f64> {
    element_wise_raw(a, g, plane, |g, a| g.max(0.0) * a)
}

/// Grad-CAM element-wise (`grad_cam_elementwise.py`, `GradCAMElementWise.get_cam_image`):
/// `relu(Σ_k max(G_k ∘ A_k, 0))`.
pub fn grad_cam_element_wise_raw(a: &[f64], g: &[f64], plane: usize) -> Vec<f64> {
    element_wise_raw(a, g, plane, |g, a| (g * a).max(0.0))
}

/// EigenCAM's projection before the ReLU (`utils/svd_on_activations.py`,
/// `get_2d_projection`): `X = Aᵀ` as `plane × channels`, each column centred on its mean;
/// the projection is `X v` with `v` the first right singular vector of `X` (`VT[0]` of
/// `np.linalg.svd`), found here as the eigenvector of `XᵀX` with the largest eigenvalue
/// (cyclic Jacobi, f64).
///
/// The sign of `v` is arbitrary in the reference (whatever LAPACK returns). cnnviz fixes it
/// deliberately: the projection is negated when `|min| > |max|` (the sign correction of
/// pytorch-grad-cam's `get_2d_projection_with_sign_correction`, which `EigenCAM` itself does
/// not apply), so compare with the reference up to sign.
pub fn eigen_cam_projection(a: &[f64], plane: usize) -> Vec<f64> {
    let channels = a.len() / plane;
    let centred: Vec<f64> = a
        .chunks(plane)
        .flat_map(|c| {
            let mean = c.iter().sum::<f64>() / plane as f64;
            c.iter().map(move |v| v - mean)
        })
        .collect();
    // XᵀX: channels × channels.
    let mut gram = vec![0.0; channels * channels];
    for i in 0..channels {
        for j in i..channels {
            let ci = &centred[i * plane..(i + 1) * plane];
            let cj = &centred[j * plane..(j + 1) * plane];
            let d: f64 = ci.iter().zip(cj).map(|(x, y)| x * y).sum();
            gram[i * channels + j] = d;
            gram[j * channels + i] = d;
        }
    }
    let v = top_eigenvector(gram, channels);
    let mut projection: Vec<f64> = (0..plane)
        .map(|p| (0..channels).map(|k| centred[k * plane + p] * v[k]).sum())
        .collect();
    let (lo, hi) = value_range(&projection);
    if lo.abs() > hi.abs() {
        projection.iter_mut().for_each(|v| *v = -*v);
    }
    projection
}

/// EigenCAM's raw map: `relu` of [`eigen_cam_projection`].
pub fn eigen_cam_raw(a: &[f64], plane: usize) -> Vec<f64> {
    eigen_cam_projection(a, plane)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect()
}

/// The unit eigenvector of the largest eigenvalue of a symmetric `n × n` matrix, by cyclic
/// Jacobi rotations (accurate to rounding, however close the eigenvalues).
pub fn top_eigenvector(mut m: Vec<f64>, n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        let scale: f64 = m.iter().map(|x| x * x).sum();
        if off <= 1e-30 * scale || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let best = (0..n).fold(0, |b, i| if m[i * n + i] > m[b * n + b] { i } else { b });
    (0..n).map(|k| v[k * n + best]).collect()
}

/// Score-CAM's masks (`score_cam.py`, `ScoreCAM.get_cam_weights`): each channel of `A`
/// upsampled to the input size with `torch.nn.UpsamplingBilinear2d` (bilinear with
/// `align_corners = True`, unlike the heatmap's resize), then min-max normalised per channel
/// as `(m − min) / (max − min + 1e-8)`. One `out_h × out_w` mask per channel.
pub fn score_cam_masks(
    a: &[f64],
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<Vec<f64>> {
    a.chunks(height * width)
        .map(|c| {
            let up = bilinear_resize_align_corners(c, height, width, out_h, out_w);
            let (lo, hi) = value_range(&up);
            up.iter().map(|v| (v - lo) / (hi - lo + 1e-8)).collect()
        })
        .collect()
}

/// Score-CAM's channel weights from each masked input's score (`±logit[class]` of
/// `input · mask_k`, every input channel times the same mask): `softmax` over channels.
pub fn score_cam_weights(scores: &[f64]) -> Vec<f64> {
    softmax(scores)
}

/// `BaseCAM`'s scaling of a raw map into the heatmap (`utils/image.py`, `scale_cam_image`,
/// called in `compute_cam_per_layer` and again in `aggregate_multi_layers`): min-max with
/// `1e-7`, `cv2.resize` to the input size (bilinear, half-pixel centres), min-max again.
pub fn cam_heatmap(
    raw: &[f64],
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f64> {
    let low = min_max_normalize(raw);
    min_max_normalize(&bilinear_resize(&low, height, width, out_h, out_w))
}

/// Nearest-neighbour resize as PyTorch's `F.interpolate(mode = "nearest")`: output pixel
/// `o` takes source `floor(o · in / out)`.
pub fn nearest_resize(src: &[f64], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(out_h * out_w);
    for oy in 0..out_h {
        let sy = (oy * h / out_h).min(h - 1);
        for ox in 0..out_w {
            let sx = (ox * w / out_w).min(w - 1);
            out.push(src[sy * w + sx]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_eigenvector_finds_the_largest_eigenvalues_vector() {
        // Eigenvalues 3 (along (1, 1)/√2) and 1 (along (1, −1)/√2), then a 1×1 block of 2.
        let m = vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 2.0];
        let v = top_eigenvector(m, 3);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (v[0].abs() - s).abs() < 1e-12 && (v[1] - v[0]).abs() < 1e-12,
            "{v:?}"
        );
        assert!(v[2].abs() < 1e-12);
    }

    #[test]
    fn eigen_cam_projects_on_the_first_component_with_its_larger_side_positive() {
        // Two channels over 4 pixels, perfectly correlated: the component is (1, 2)/√5.
        let a = [0.0, 1.0, 2.0, 7.0, 0.0, 2.0, 4.0, 14.0];
        let p = eigen_cam_projection(&a, 4);
        let centred = [-2.5, -1.5, -0.5, 4.5];
        for (p, c) in p.iter().zip(centred) {
            assert!((p - c * 5f64.sqrt()).abs() < 1e-9, "{p:?}");
        }
        // Negating the activations keeps the map: the sign is fixed by |max| ≥ |min|.
        let negated: Vec<f64> = a.iter().map(|v| -v).collect();
        let q = eigen_cam_projection(&negated, 4);
        for (p, q) in p.iter().zip(&q) {
            assert!((p - q).abs() < 1e-9);
        }
    }

    #[test]
    fn grad_cam_plus_plus_follows_equation_19() {
        // One channel, two pixels: A = (1, 3), G = (2, −1).
        let w = grad_cam_plus_plus_weights(&[1.0, 3.0], &[2.0, -1.0], 2);
        let alpha = 4.0 / (8.0 + 4.0 * 8.0 + 1e-6);
        assert!((w[0] - 2.0 * alpha).abs() < 1e-15, "{w:?}");
        let x = xgrad_cam_weights(&[1.0, 3.0], &[2.0, -1.0], 2);
        assert!((x[0] - (2.0 - 3.0) / (4.0 + 1e-7)).abs() < 1e-15);
    }

    #[test]
    fn score_cam_masks_keep_the_corners_and_span_zero_to_one() {
        let masks = score_cam_masks(&[0.0, 1.0, 2.0, 3.0], 2, 2, 3, 3);
        let m = &masks[0];
        let scale = 3.0 + 1e-8;
        assert_eq!(m[0], 0.0);
        assert!((m[2] - 1.0 / scale).abs() < 1e-15);
        assert!((m[4] - 1.5 / scale).abs() < 1e-15, "{m:?}");
        assert!((m[8] - 3.0 / scale).abs() < 1e-15);
        let w = score_cam_weights(&[0.0, 2.0_f64.ln()]);
        assert!((w[0] - 1.0 / 3.0).abs() < 1e-15 && (w[1] - 2.0 / 3.0).abs() < 1e-15);
    }
}
