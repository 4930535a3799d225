//! The arithmetic of the layers beyond conv / dense / max pool: element-wise functions
//! (leaky ReLU, sigmoid, tanh, dropout, batch norm) as `x → f(x)` with the formula and its
//! constants, average pools as their window, its values and the divisor, and global
//! average pooling as the mean of one channel's plane. The values follow the CPU twin
//! (`model::reference`) formula for formula, in f64.

use std::ops::Range;

use crate::model::{AvgPoolGeometry, LayerParams, reference};

/// An element-wise function of one value.
#[derive(Clone, Debug, PartialEq)]
pub enum Elementwise {
    LeakyRelu {
        negative_slope: f32,
    },
    Sigmoid,
    Tanh,
    /// The identity at inference.
    Dropout,
    /// `(x − mean) / √(var + eps) · gamma + beta` with the channel's running statistics.
    BatchNorm {
        channel: usize,
        mean: f32,
        var: f32,
        eps: f32,
        gamma: f32,
        beta: f32,
    },
}

impl Elementwise {
    /// A batch-norm channel's function from the layer's parameters; `None` when the
    /// parameters lack the channel.
    pub fn batch_norm(params: &LayerParams, eps: f32, channel: usize) -> Option<Elementwise> {
        let running = params.running.as_ref()?;
        Some(Elementwise::BatchNorm {
            channel,
            mean: *running.mean.get(channel)?,
            var: *running.var.get(channel)?,
            eps,
            gamma: *params.weight.get(channel)?,
            beta: *params.bias.get(channel)?,
        })
    }

    /// `f(x)`, as the CPU twin computes it.
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Elementwise::LeakyRelu { negative_slope } => reference::leaky_relu(x, negative_slope),
            Elementwise::Sigmoid => reference::sigmoid(x),
            Elementwise::Tanh => x.tanh(),
            Elementwise::Dropout => x,
            Elementwise::BatchNorm {
                mean,
                var,
                eps,
                gamma,
                beta,
                ..
            } => {
                let scale = reference::batch_norm_channel_scale(gamma, var, eps);
                (x - f64::from(mean)) * scale + f64::from(beta)
            }
        }
    }

    /// The formula with its constants filled in, one line.
    pub fn formula(&self) -> String {
        match *self {
            Elementwise::LeakyRelu { negative_slope } => {
                format!("leaky ReLU: y = x if x > 0, else {negative_slope} · x")
            }
            Elementwise::Sigmoid => "sigmoid: y = 1 / (1 + e^(−x))".into(),
            Elementwise::Tanh => "tanh: y = (e^x − e^(−x)) / (e^x + e^(−x))".into(),
            Elementwise::Dropout => "dropout: y = x (the identity at inference)".into(),
            Elementwise::BatchNorm {
                channel,
                mean,
                var,
                eps,
                gamma,
                beta,
            } => format!(
                "batch norm, channel {channel}: y = (x − μ) / √(σ² + ε) · γ + β \
                 with μ = {mean:.5}, σ² = {var:.5}, ε = {eps}, γ = {gamma:.5}, β = {beta:.5}"
            ),
        }
    }
}

/// One element through an element-wise layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementwiseUnit {
    pub layer: usize,
    pub function: Elementwise,
    /// Index of `x` in the source activation (the same element).
    pub source: usize,
    pub input: f32,
    pub output: f64,
}

/// An average-pool window: the input pixels it covers and the divisor.
#[derive(Clone, Debug, PartialEq)]
pub struct AvgWindow {
    pub layer: usize,
    pub geometry: AvgPoolGeometry,
    /// Rows and columns of the pool's input the window covers (clipped to the input;
    /// padding lies outside and adds zeros).
    pub rows: Range<usize>,
    pub cols: Range<usize>,
    /// `(source index, value)` of every covered pixel, row-major.
    pub elements: Vec<(usize, f32)>,
    pub sum: f64,
    /// The window's area (padding included when `count_include_pad`) or the real pixels.
    pub divisor: f64,
    pub value: f64,
}

/// Global average pooling of one channel: the mean of its whole plane.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaneMean {
    pub layer: usize,
    pub channel: usize,
    /// The plane's indices in the source activation.
    pub source: Range<usize>,
    pub height: usize,
    pub width: usize,
    pub sum: f64,
    pub mean: f64,
}

/// The window of output `(channel, oy, ox)` of an average pool over a `h × w` input.
#[allow(clippy::too_many_arguments)]
pub fn avg_window(
    layer: usize,
    geometry: AvgPoolGeometry,
    h: usize,
    w: usize,
    source: &[f32],
    channel: usize,
    oy: usize,
    ox: usize,
) -> AvgWindow {
    let (rows, cols, divisor) = reference::avgpool_window(oy, ox, h, w, geometry);
    let mut elements = Vec::with_capacity(rows.len() * cols.len());
    for y in rows.clone() {
        for x in cols.clone() {
            let index = (channel * h + y) * w + x;
            elements.push((index, source[index]));
        }
    }
    let sum: f64 = elements.iter().map(|&(_, v)| f64::from(v)).sum();
    AvgWindow {
        layer,
        geometry,
        rows,
        cols,
        elements,
        sum,
        divisor,
        value: if divisor > 0.0 { sum / divisor } else { 0.0 },
    }
}

/// The mean of plane `channel` of a `h × w` source.
pub fn plane_mean(layer: usize, h: usize, w: usize, source: &[f32], channel: usize) -> PlaneMean {
    let plane = h * w;
    let range = channel * plane..(channel + 1) * plane;
    let sum: f64 = source[range.clone()].iter().map(|&v| f64::from(v)).sum();
    PlaneMean {
        layer,
        channel,
        source: range,
        height: h,
        width: w,
        sum,
        mean: sum / plane.max(1) as f64,
    }
}
