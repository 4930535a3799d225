//! The arithmetic of one unit: the numbers that make a cube's value, term by term, the way
//! CNN Explainer shows a neuron. Pure arithmetic on the model's weights and the activation
//! that feeds the unit's layer (read back from the GPU arena on click), so the window, the
//! CLI and the tests all explain a unit the same way.
//!
//! A ReLU cube is explained by the conv or dense layer before it (its pre-activation) with
//! the ReLU applied at the end; a max-pool cube by its window; a flatten cube by the cube it
//! aliases. The terms are summed in f64 in index order, so the shown sum is the exact sum
//! of the shown terms; it matches the GPU's f32 activation to rounding. Element-wise
//! layers, average pools and global average pooling have their own views
//! ([`other_layers`]).

pub mod other_layers;
mod readback;

pub use other_layers::{AvgWindow, Elementwise, ElementwiseUnit, PlaneMean};
pub use readback::{InspectedUnit, UnitReadback, UnitTag};

use crate::model::{ConvGeometry, LayerOp, Model};

/// One term `weight × input` of a weighted sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    /// Index of the input element in the source activation (C, H, W order), or `None` for
    /// a zero-padding tap of a convolution (its input is 0).
    pub source: Option<usize>,
    pub weight: f32,
    pub input: f32,
}

impl Term {
    pub fn product(&self) -> f64 {
        f64::from(self.weight) * f64::from(self.input)
    }
}

/// A weighted sum: `Σ terms + bias = pre_activation`, then maybe a ReLU.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedSum {
    /// Layer index of the conv or dense layer.
    pub layer: usize,
    /// Every term in the layer's order: conv `(in_channel, ky, kx)`, dense input order.
    pub terms: Vec<Term>,
    pub sum: f64,
    pub bias: f32,
    pub pre_activation: f64,
    /// The ReLU output, when the unit is the ReLU after the layer.
    pub relu: Option<f64>,
}

impl WeightedSum {
    /// The value the unit holds: after the ReLU when there is one.
    pub fn value(&self) -> f64 {
        self.relu.unwrap_or(self.pre_activation)
    }

    /// Indices into `terms` of the `k` largest |products|, largest first (ties: lower index).
    pub fn ranked(&self, k: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.terms.len()).collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (self.terms[a].product().abs(), self.terms[b].product().abs());
            pb.total_cmp(&pa).then(a.cmp(&b))
        });
        order.truncate(k);
        order
    }
}

/// A max-pool window and its winner.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolWindow {
    pub layer: usize,
    pub kernel: usize,
    /// `(source index, value)` of every window element, row-major.
    pub elements: Vec<(usize, f32)>,
    /// Index into `elements` of the maximum (the first on ties, as PyTorch).
    pub winner: usize,
    /// Channel, row and column of the winner in the pool's input.
    pub winner_at: (usize, usize, usize),
}

impl PoolWindow {
    pub fn value(&self) -> f32 {
        self.elements[self.winner].1
    }
}

/// What makes one unit's value.
#[derive(Clone, Debug, PartialEq)]
pub enum UnitArithmetic {
    Conv {
        sum: WeightedSum,
        geometry: ConvGeometry,
        out_channel: usize,
    },
    Dense {
        sum: WeightedSum,
    },
    Pool(PoolWindow),
    /// `y = f(x)` of the same element: leaky ReLU, sigmoid, tanh, dropout, batch norm.
    Elementwise(ElementwiseUnit),
    AvgPool(AvgWindow),
    GlobalAvgPool(PlaneMean),
    /// The input image: a value, not a computation.
    Input,
}

impl UnitArithmetic {
    /// The unit's value as the arithmetic computes it; `None` for an input pixel.
    pub fn value(&self) -> Option<f64> {
        Some(match self {
            UnitArithmetic::Conv { sum, .. } | UnitArithmetic::Dense { sum } => sum.value(),
            UnitArithmetic::Pool(window) => f64::from(window.value()),
            UnitArithmetic::Elementwise(unit) => unit.output,
            UnitArithmetic::AvgPool(window) => window.value,
            UnitArithmetic::GlobalAvgPool(mean) => mean.mean,
            UnitArithmetic::Input => return None,
        })
    }
}

/// Why a unit cannot be explained; one line each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("activation {activation} does not exist; the model has {activations}")]
    NoActivation {
        activation: usize,
        activations: usize,
    },
    #[error("element {element} is outside activation {activation} ({len} values)")]
    NoElement {
        activation: usize,
        element: usize,
        len: usize,
    },
    #[error("the source activation has {len} values; layer {layer} reads {expected}")]
    SourceLength {
        layer: usize,
        len: usize,
        expected: usize,
    },
    #[error("layer {layer} ({kind}) has no unit arithmetic view yet")]
    Unsupported { layer: usize, kind: &'static str },
}

/// The activation (arena index) whose values [`unit_arithmetic`] needs to explain
/// `element` of `activation`: the input of the layer that computed it, looking through
/// a ReLU to the conv/dense before it and through flatten. `None` for the input image.
pub fn source_activation(model: &Model, activation: usize) -> Option<usize> {
    let (layer, _) = computing_layer(model, activation)?;
    Some(layer)
}

/// The layer that computes `activation`'s values (through a ReLU straight after a conv or
/// dense layer, and through flatten), and whether a ReLU is applied after it.
fn computing_layer(model: &Model, activation: usize) -> Option<(usize, bool)> {
    let mut j = activation;
    // A flatten output is its input's values.
    while j > 0 && model.layers[j - 1].plan.op == LayerOp::Flatten {
        j -= 1;
    }
    let layer = j.checked_sub(1)?;
    if model.layers[layer].plan.op == LayerOp::Relu && layer > 0 {
        let before = &model.layers[layer - 1].plan.op;
        if matches!(before, LayerOp::Conv2d(_) | LayerOp::Dense { .. }) {
            return Some((layer - 1, true));
        }
    }
    Some((layer, false))
}

/// The arithmetic of `element` (C, H, W order) of activation `activation` (0 = input, as in
/// the arena), from `source`: the values of [`source_activation`] for the same image.
pub fn unit_arithmetic(
    model: &Model,
    activation: usize,
    element: usize,
    source: &[f32],
) -> Result<UnitArithmetic, InspectError> {
    let shapes = model.activation_shapes();
    let Some(shape) = shapes.get(activation) else {
        return Err(InspectError::NoActivation {
            activation,
            activations: shapes.len(),
        });
    };
    if element >= shape.len() {
        return Err(InspectError::NoElement {
            activation,
            element,
            len: shape.len(),
        });
    }
    let Some((layer, relu)) = computing_layer(model, activation) else {
        return Ok(UnitArithmetic::Input);
    };
    let plan = &model.layers[layer].plan;
    let expected = plan.input.len();
    if source.len() != expected {
        return Err(InspectError::SourceLength {
            layer,
            len: source.len(),
            expected,
        });
    }
    let (_, out_h, out_w) = plan.output.chw();
    let (channel, y, x) = (
        element / (out_h * out_w),
        element / out_w % out_h,
        element % out_w,
    );
    let params = model.layers[layer].params.as_ref();
    Ok(match plan.op {
        LayerOp::Conv2d(g) => {
            let p = params.expect("a conv layer has parameters");
            let (_, in_h, in_w) = plan.input.chw();
            let terms = conv_terms(g, in_h, in_w, &p.weight, source, channel, y, x);
            UnitArithmetic::Conv {
                sum: weighted_sum(layer, terms, p.bias[channel], relu),
                geometry: g,
                out_channel: channel,
            }
        }
        LayerOp::Dense { in_features, .. } => {
            let p = params.expect("a dense layer has parameters");
            let row = &p.weight[element * in_features..(element + 1) * in_features];
            let terms = row
                .iter()
                .zip(source)
                .enumerate()
                .map(|(i, (&weight, &input))| Term {
                    source: Some(i),
                    weight,
                    input,
                })
                .collect();
            UnitArithmetic::Dense {
                sum: weighted_sum(layer, terms, p.bias[element], relu),
            }
        }
        LayerOp::MaxPool2d { kernel, stride } => {
            let (_, in_h, in_w) = plan.input.chw();
            UnitArithmetic::Pool(pool_window(
                layer, kernel, stride, in_h, in_w, source, channel, y, x,
            ))
        }
        LayerOp::LeakyRelu { negative_slope } => elementwise(
            layer,
            Elementwise::LeakyRelu { negative_slope },
            source,
            element,
        ),
        LayerOp::Sigmoid => elementwise(layer, Elementwise::Sigmoid, source, element),
        LayerOp::Tanh => elementwise(layer, Elementwise::Tanh, source, element),
        LayerOp::Dropout => elementwise(layer, Elementwise::Dropout, source, element),
        LayerOp::BatchNorm { eps, .. } => {
            let function = params
                .and_then(|p| Elementwise::batch_norm(p, eps, channel))
                .ok_or_else(|| InspectError::Unsupported {
                    layer,
                    kind: model.architecture.layers[layer].kind_name(),
                })?;
            elementwise(layer, function, source, element)
        }
        LayerOp::AvgPool2d(g) => {
            let (_, in_h, in_w) = plan.input.chw();
            UnitArithmetic::AvgPool(other_layers::avg_window(
                layer, g, in_h, in_w, source, channel, y, x,
            ))
        }
        LayerOp::GlobalAvgPool => {
            let (_, in_h, in_w) = plan.input.chw();
            UnitArithmetic::GlobalAvgPool(other_layers::plane_mean(
                layer, in_h, in_w, source, channel,
            ))
        }
        // A ReLU not after a conv/dense layer (e.g. after a pool): the value is max(0, x)
        // of the same element, a weighted sum of one term with weight 1.
        LayerOp::Relu | LayerOp::Flatten => {
            let term = Term {
                source: Some(element),
                weight: 1.0,
                input: source[element],
            };
            UnitArithmetic::Dense {
                sum: weighted_sum(layer, vec![term], 0.0, plan.op == LayerOp::Relu),
            }
        }
    })
}

fn elementwise(
    layer: usize,
    function: Elementwise,
    source: &[f32],
    element: usize,
) -> UnitArithmetic {
    let input = source[element];
    UnitArithmetic::Elementwise(ElementwiseUnit {
        layer,
        output: function.apply(f64::from(input)),
        function,
        source: element,
        input,
    })
}

fn weighted_sum(layer: usize, terms: Vec<Term>, bias: f32, relu: bool) -> WeightedSum {
    let sum: f64 = terms.iter().map(Term::product).sum();
    let pre_activation = sum + f64::from(bias);
    WeightedSum {
        layer,
        terms,
        sum,
        bias,
        pre_activation,
        relu: relu.then(|| pre_activation.max(0.0)),
    }
}

/// Every tap of output `(oc, oy, ox)`: `(ic, ky, kx)` order, padding taps with input 0.
#[allow(clippy::too_many_arguments)]
fn conv_terms(
    g: ConvGeometry,
    in_h: usize,
    in_w: usize,
    weight: &[f32],
    source: &[f32],
    oc: usize,
    oy: usize,
    ox: usize,
) -> Vec<Term> {
    let k = g.kernel;
    let mut terms = Vec::with_capacity(g.in_channels * k * k);
    for ic in 0..g.in_channels {
        for ky in 0..k {
            for kx in 0..k {
                let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                let inside = iy >= 0 && ix >= 0 && (iy as usize) < in_h && (ix as usize) < in_w;
                let index = inside.then(|| (ic * in_h + iy as usize) * in_w + ix as usize);
                terms.push(Term {
                    source: index,
                    weight: weight[((oc * g.in_channels + ic) * k + ky) * k + kx],
                    input: index.map_or(0.0, |i| source[i]),
                });
            }
        }
    }
    terms
}

#[allow(clippy::too_many_arguments)]
fn pool_window(
    layer: usize,
    kernel: usize,
    stride: usize,
    in_h: usize,
    in_w: usize,
    source: &[f32],
    channel: usize,
    oy: usize,
    ox: usize,
) -> PoolWindow {
    let mut elements = Vec::with_capacity(kernel * kernel);
    for ky in 0..kernel {
        for kx in 0..kernel {
            let (iy, ix) = (oy * stride + ky, ox * stride + kx);
            let index = (channel * in_h + iy) * in_w + ix;
            elements.push((index, source[index]));
        }
    }
    let mut winner = 0;
    for (i, &(_, v)) in elements.iter().enumerate() {
        if v > elements[winner].1 {
            winner = i;
        }
    }
    let index = elements[winner].0;
    PoolWindow {
        layer,
        kernel,
        elements,
        winner,
        winner_at: (channel, index / in_w % in_h, index % in_w),
    }
}
