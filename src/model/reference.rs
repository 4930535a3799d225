//! The CPU reference twin: every layer's forward pass, the Grad-CAM backward pass and the
//! Grad-CAM map in plain Rust with f64 arithmetic. It is slow and simple on purpose: the
//! WGSL kernels are tested against it, so it must be obviously right.
//!
//! Activations are indexed like the GPU arena: index 0 is the normalised input and index
//! `i + 1` the output of layer `i`.

use super::{AvgPoolGeometry, ConvGeometry, Layer, LayerOp, Model};

/// Added to the denominator of min-max normalisation, as `pytorch_grad_cam` does.
pub const CAM_EPSILON: f64 = 1e-7;

/// Runs the whole network on one normalised input; returns every activation.
pub fn forward(model: &Model, input: &[f32]) -> Vec<Vec<f64>> {
    forward_f64(model, input.iter().map(|&v| v as f64).collect())
}

/// [`forward`] from an input already in f64 (the explanation methods' perturbed inputs).
pub fn forward_f64(model: &Model, input: Vec<f64>) -> Vec<Vec<f64>> {
    assert_eq!(input.len(), model.input_len(), "input length");
    let mut activations = vec![input];
    for layer in &model.layers {
        let next = layer_forward(layer, activations.last().expect("input pushed"));
        activations.push(next);
    }
    activations
}

/// Forward pass of one layer.
pub fn layer_forward(layer: &Layer, x: &[f64]) -> Vec<f64> {
    let params = layer.params.as_ref();
    match layer.plan.op {
        LayerOp::Conv2d(g) => {
            let p = params.expect("conv has parameters");
            let (_, h, w) = layer.plan.input.chw();
            conv2d_forward(x, h, w, g, &p.weight, &p.bias)
        }
        LayerOp::Relu => relu_forward(x),
        LayerOp::LeakyRelu { negative_slope } => {
            x.iter().map(|&v| leaky_relu(v, negative_slope)).collect()
        }
        LayerOp::Sigmoid => x.iter().map(|&v| sigmoid(v)).collect(),
        LayerOp::Tanh => x.iter().map(|&v| v.tanh()).collect(),
        LayerOp::Dropout => x.to_vec(),
        LayerOp::BatchNorm { eps, .. } => {
            let p = params.expect("batch norm has parameters");
            let scale = batch_norm_scale(p, eps);
            let r = p
                .running
                .as_ref()
                .expect("batch norm has running statistics");
            let plane = layer.plan.input.chw();
            let plane = plane.1 * plane.2;
            x.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = i / plane;
                    (v - r.mean[c] as f64) * scale[c] + p.bias[c] as f64
                })
                .collect()
        }
        LayerOp::MaxPool2d { kernel, stride } => {
            let (c, h, w) = layer.plan.input.chw();
            maxpool_forward(x, c, h, w, kernel, stride)
        }
        LayerOp::AvgPool2d(g) => {
            let (c, h, w) = layer.plan.input.chw();
            avgpool_forward(x, c, h, w, g)
        }
        LayerOp::GlobalAvgPool => {
            let (c, h, w) = layer.plan.input.chw();
            (0..c)
                .map(|ch| x[ch * h * w..(ch + 1) * h * w].iter().sum::<f64>() / (h * w) as f64)
                .collect()
        }
        LayerOp::Flatten => x.to_vec(),
        LayerOp::Dense {
            in_features,
            out_features,
        } => {
            let p = params.expect("dense has parameters");
            dense_forward(x, &p.weight, &p.bias, in_features, out_features)
        }
    }
}

/// Gradient of one layer's input given the gradient of its output.
/// `x` is the layer's input activation.
pub fn layer_backward(layer: &Layer, x: &[f64], dy: &[f64]) -> Vec<f64> {
    match layer.plan.op {
        LayerOp::Conv2d(g) => {
            let p = layer.params.as_ref().expect("conv has parameters");
            let (_, h, w) = layer.plan.input.chw();
            conv2d_backward_input(dy, h, w, g, &p.weight)
        }
        LayerOp::Relu => relu_backward(x, dy),
        // PyTorch's leaky_relu_backward: the slope where the input is not positive.
        LayerOp::LeakyRelu { negative_slope } => x
            .iter()
            .zip(dy)
            .map(|(&v, &d)| {
                if v > 0.0 {
                    d
                } else {
                    d * negative_slope as f64
                }
            })
            .collect(),
        LayerOp::Sigmoid => x
            .iter()
            .zip(dy)
            .map(|(&v, &d)| {
                let y = sigmoid(v);
                d * y * (1.0 - y)
            })
            .collect(),
        LayerOp::Tanh => x
            .iter()
            .zip(dy)
            .map(|(&v, &d)| d * (1.0 - v.tanh() * v.tanh()))
            .collect(),
        LayerOp::Dropout => dy.to_vec(),
        LayerOp::BatchNorm { eps, .. } => {
            let p = layer.params.as_ref().expect("batch norm has parameters");
            let scale = batch_norm_scale(p, eps);
            let (_, h, w) = layer.plan.input.chw();
            dy.iter()
                .enumerate()
                .map(|(i, &d)| d * scale[i / (h * w)])
                .collect()
        }
        LayerOp::MaxPool2d { kernel, stride } => {
            let (c, h, w) = layer.plan.input.chw();
            maxpool_backward(x, dy, c, h, w, kernel, stride)
        }
        LayerOp::AvgPool2d(g) => {
            let (c, h, w) = layer.plan.input.chw();
            avgpool_backward(dy, c, h, w, g)
        }
        LayerOp::GlobalAvgPool => {
            let (c, h, w) = layer.plan.input.chw();
            (0..c * h * w)
                .map(|i| dy[i / (h * w)] / (h * w) as f64)
                .collect()
        }
        LayerOp::Flatten => dy.to_vec(),
        LayerOp::Dense {
            in_features,
            out_features,
        } => {
            let p = layer.params.as_ref().expect("dense has parameters");
            dense_backward_input(dy, &p.weight, in_features, out_features)
        }
    }
}

/// Output side of a window op; the spec has already checked that it fits.
fn out_side(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (input + 2 * padding - kernel) / stride + 1
}

/// Output side of a convolution, whose padding may differ before and after.
fn conv_out_side(input: usize, g: ConvGeometry) -> usize {
    (input + g.padding + g.padding_end - g.kernel) / g.stride + 1
}

pub fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// PyTorch's `LeakyReLU`: `v` where positive, else `negative_slope · v`.
pub fn leaky_relu(v: f64, negative_slope: f32) -> f64 {
    if v > 0.0 {
        v
    } else {
        v * negative_slope as f64
    }
}

/// Batch norm's `γ / sqrt(running_var + eps)` of one channel, in f64.
pub fn batch_norm_channel_scale(gamma: f32, var: f32, eps: f32) -> f64 {
    gamma as f64 / (var as f64 + eps as f64).sqrt()
}

/// [`batch_norm_channel_scale`] of every channel.
fn batch_norm_scale(p: &super::LayerParams, eps: f32) -> Vec<f64> {
    let r = p
        .running
        .as_ref()
        .expect("batch norm has running statistics");
    p.weight
        .iter()
        .zip(&r.var)
        .map(|(&g, &v)| batch_norm_channel_scale(g, v, eps))
        .collect()
}

/// The input pixels one average-pool window covers (clipped to the input) and its
/// divisor: the whole window, or only the real pixels when padding does not count.
pub fn avgpool_window(
    oy: usize,
    ox: usize,
    h: usize,
    w: usize,
    g: AvgPoolGeometry,
) -> (std::ops::Range<usize>, std::ops::Range<usize>, f64) {
    let (y0, x0) = (
        (oy * g.stride) as isize - g.padding as isize,
        (ox * g.stride) as isize - g.padding as isize,
    );
    let (y1, x1) = (y0 + g.kernel as isize, x0 + g.kernel as isize);
    let clip = |v: isize, side: usize| v.clamp(0, side as isize) as usize;
    let rows = clip(y0, h)..clip(y1, h);
    let cols = clip(x0, w)..clip(x1, w);
    let divisor = if g.count_include_pad {
        // PyTorch counts the padded window, clipped to input + padding.
        let padded =
            |a: isize, b: isize, side: usize| (b.min((side + g.padding) as isize) - a) as f64;
        padded(y0, y1, h) * padded(x0, x1, w)
    } else {
        (rows.len() * cols.len()) as f64
    };
    (rows, cols, divisor)
}

/// PyTorch's `AvgPool2d` (floor mode).
pub fn avgpool_forward(x: &[f64], c: usize, h: usize, w: usize, g: AvgPoolGeometry) -> Vec<f64> {
    let (oh, ow) = (
        out_side(h, g.kernel, g.stride, g.padding),
        out_side(w, g.kernel, g.stride, g.padding),
    );
    let mut y = vec![0.0; c * oh * ow];
    for ch in 0..c {
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let (rows, cols, divisor) = avgpool_window(oy, ox, h, w, g);
                let sum: f64 = rows
                    .flat_map(|iy| cols.clone().map(move |ix| plane[iy * w + ix]))
                    .sum();
                y[(ch * oh + oy) * ow + ox] = sum / divisor;
            }
        }
    }
    y
}

/// Gradient of an average pool's input: each output's gradient shared over its window.
pub fn avgpool_backward(dy: &[f64], c: usize, h: usize, w: usize, g: AvgPoolGeometry) -> Vec<f64> {
    let (oh, ow) = (
        out_side(h, g.kernel, g.stride, g.padding),
        out_side(w, g.kernel, g.stride, g.padding),
    );
    let mut dx = vec![0.0; c * h * w];
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (rows, cols, divisor) = avgpool_window(oy, ox, h, w, g);
                let d = dy[(ch * oh + oy) * ow + ox] / divisor;
                for iy in rows {
                    for ix in cols.clone() {
                        dx[(ch * h + iy) * w + ix] += d;
                    }
                }
            }
        }
    }
    dx
}

/// Cross-correlation with zero padding, PyTorch's `Conv2d`. Weight `[out, in, k, k]`.
pub fn conv2d_forward(
    x: &[f64],
    h: usize,
    w: usize,
    g: ConvGeometry,
    weight: &[f32],
    bias: &[f32],
) -> Vec<f64> {
    let (oh, ow) = (conv_out_side(h, g), conv_out_side(w, g));
    let k = g.kernel;
    let mut y = vec![0.0; g.out_channels * oh * ow];
    for oc in 0..g.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = bias[oc] as f64;
                for ic in 0..g.in_channels {
                    for ky in 0..k {
                        let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let wv = weight[((oc * g.in_channels + ic) * k + ky) * k + kx] as f64;
                            sum += wv * x[(ic * h + iy as usize) * w + ix as usize];
                        }
                    }
                }
                y[(oc * oh + oy) * ow + ox] = sum;
            }
        }
    }
    y
}

/// Gradient of a convolution's input: the transposed convolution of `dy`.
pub fn conv2d_backward_input(
    dy: &[f64],
    h: usize,
    w: usize,
    g: ConvGeometry,
    weight: &[f32],
) -> Vec<f64> {
    let (oh, ow) = (conv_out_side(h, g), conv_out_side(w, g));
    let k = g.kernel;
    let mut dx = vec![0.0; g.in_channels * h * w];
    for oc in 0..g.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let d = dy[(oc * oh + oy) * ow + ox];
                for ic in 0..g.in_channels {
                    for ky in 0..k {
                        let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let wv = weight[((oc * g.in_channels + ic) * k + ky) * k + kx] as f64;
                            dx[(ic * h + iy as usize) * w + ix as usize] += wv * d;
                        }
                    }
                }
            }
        }
    }
    dx
}

pub fn relu_forward(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

/// PyTorch's ReLU gradient: passes where the input is strictly positive.
pub fn relu_backward(x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &d)| if v > 0.0 { d } else { 0.0 })
        .collect()
}

/// Index (within the channel plane) of a pooling window's maximum; ties go to the first
/// element in row-major order, as in PyTorch.
fn window_argmax(
    plane: &[f64],
    w: usize,
    oy: usize,
    ox: usize,
    kernel: usize,
    stride: usize,
) -> usize {
    let mut best = (oy * stride) * w + ox * stride;
    for ky in 0..kernel {
        for kx in 0..kernel {
            let i = (oy * stride + ky) * w + ox * stride + kx;
            if plane[i] > plane[best] {
                best = i;
            }
        }
    }
    best
}

pub fn maxpool_forward(
    x: &[f64],
    c: usize,
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
) -> Vec<f64> {
    let (oh, ow) = (
        out_side(h, kernel, stride, 0),
        out_side(w, kernel, stride, 0),
    );
    let mut y = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                y.push(plane[window_argmax(plane, w, oy, ox, kernel, stride)]);
            }
        }
    }
    y
}

/// Routes each window's gradient to its (first) maximum; overlapping windows add up.
pub fn maxpool_backward(
    x: &[f64],
    dy: &[f64],
    c: usize,
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
) -> Vec<f64> {
    let (oh, ow) = (
        out_side(h, kernel, stride, 0),
        out_side(w, kernel, stride, 0),
    );
    let mut dx = vec![0.0; c * h * w];
    for ch in 0..c {
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let i = window_argmax(plane, w, oy, ox, kernel, stride);
                dx[ch * h * w + i] += dy[(ch * oh + oy) * ow + ox];
            }
        }
    }
    dx
}

/// `y = W x + b` with `W` as `[out, in]`, PyTorch's `Linear`.
pub fn dense_forward(
    x: &[f64],
    weight: &[f32],
    bias: &[f32],
    in_features: usize,
    out_features: usize,
) -> Vec<f64> {
    (0..out_features)
        .map(|o| {
            let row = &weight[o * in_features..(o + 1) * in_features];
            bias[o] as f64 + row.iter().zip(x).map(|(&w, &v)| w as f64 * v).sum::<f64>()
        })
        .collect()
}

pub fn dense_backward_input(
    dy: &[f64],
    weight: &[f32],
    in_features: usize,
    out_features: usize,
) -> Vec<f64> {
    (0..in_features)
        .map(|i| {
            (0..out_features)
                .map(|o| weight[o * in_features + i] as f64 * dy[o])
                .sum()
        })
        .collect()
}

pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Index of the largest value; the first one on ties.
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// `(min, max)` of a tensor, as the value-range kernels compute per layer.
pub fn value_range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Gradients of the logit of `class` with respect to every activation from index `down_to`
/// up to the logits. Entries below `down_to` are `None`: Grad-CAM never needs them.
pub fn activation_gradients(
    model: &Model,
    activations: &[Vec<f64>],
    class: usize,
    down_to: usize,
) -> Vec<Option<Vec<f64>>> {
    let last = model.layers.len();
    let mut grads: Vec<Option<Vec<f64>>> = vec![None; last + 1];
    let mut seed = vec![0.0; activations[last].len()];
    seed[class] = 1.0;
    grads[last] = Some(seed);
    for i in (down_to..last).rev() {
        let dy = grads[i + 1].as_ref().expect("filled on the previous step");
        grads[i] = Some(layer_backward(&model.layers[i], &activations[i], dy));
    }
    grads
}

/// Everything Grad-CAM computes for one image, at each stage (DESIGN.md, "Grad-CAM, exactly").
#[derive(Clone, Debug, PartialEq)]
pub struct GradCam {
    pub class: usize,
    /// Index into [`Model::conv_blocks`].
    pub block: usize,
    /// `α_k`: the mean gradient of each channel of the block's output.
    pub channel_weights: Vec<f64>,
    /// `max(0, Σ_k α_k A_k)` at the block's resolution.
    pub raw: Vec<f64>,
    /// `raw` min-max normalised.
    pub low_res: Vec<f64>,
    /// Upsampled to the input size and normalised again: the heatmap.
    pub cam: Vec<f64>,
    pub height: usize,
    pub width: usize,
}

/// Grad-CAM of `class` at conv block `block`, from a forward pass's activations.
pub fn grad_cam(model: &Model, activations: &[Vec<f64>], class: usize, block: usize) -> GradCam {
    let b = &model.conv_blocks()[block];
    let target = b.output_layer + 1;
    let grads = activation_gradients(model, activations, class, target);
    let g = grads[target].as_ref().expect("computed down to the target");
    let a = &activations[target];
    let plane = b.height * b.width;
    let channel_weights: Vec<f64> = (0..b.channels)
        .map(|k| g[k * plane..(k + 1) * plane].iter().sum::<f64>() / plane as f64)
        .collect();
    let raw: Vec<f64> = (0..plane)
        .map(|p| {
            let s: f64 = (0..b.channels)
                .map(|k| channel_weights[k] * a[k * plane + p])
                .sum();
            s.max(0.0)
        })
        .collect();
    let low_res = min_max_normalize(&raw);
    let input = model.architecture.input;
    let up = bilinear_resize(&low_res, b.height, b.width, input.height, input.width);
    GradCam {
        class,
        block,
        channel_weights,
        raw,
        low_res,
        cam: min_max_normalize(&up),
        height: b.height,
        width: b.width,
    }
}

/// `(x − min) / (max − min + 1e-7)`.
pub fn min_max_normalize(values: &[f64]) -> Vec<f64> {
    let (lo, hi) = value_range(values);
    values
        .iter()
        .map(|&v| (v - lo) / (hi - lo + CAM_EPSILON))
        .collect()
}

/// Bilinear resize with half-pixel centres (`align_corners = false`), clamping at the
/// edges — what OpenCV's `INTER_LINEAR` and PyTorch's `interpolate` do.
pub fn bilinear_resize(src: &[f64], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f64> {
    bilinear_resize_at(src, (h, w), (out_h, out_w), |o, out, inp| {
        ((o as f64 + 0.5) * inp as f64 / out as f64 - 0.5).max(0.0)
    })
}

/// Bilinear resize with `align_corners = True` (PyTorch's `UpsamplingBilinear2d`, which
/// Score-CAM uses): output pixel `o` samples source `o · (in − 1) / (out − 1)`.
pub fn bilinear_resize_align_corners(
    src: &[f64],
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f64> {
    bilinear_resize_at(src, (h, w), (out_h, out_w), |o, out, inp| {
        if out > 1 {
            o as f64 * (inp - 1) as f64 / (out - 1) as f64
        } else {
            0.0
        }
    })
}

/// Bilinear interpolation where `source(o, out, in)` says which source coordinate output
/// index `o` samples along an axis.
fn bilinear_resize_at(
    src: &[f64],
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
    source: impl Fn(usize, usize, usize) -> f64,
) -> Vec<f64> {
    let axis = |o: usize, out: usize, inp: usize| -> (usize, usize, f64) {
        let s = source(o, out, inp);
        let i0 = (s.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        (i0, i1, s - i0 as f64)
    };
    let mut out = Vec::with_capacity(out_h * out_w);
    for oy in 0..out_h {
        let (y0, y1, fy) = axis(oy, out_h, h);
        for ox in 0..out_w {
            let (x0, x1, fx) = axis(ox, out_w, w);
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}
