//! Walks an ONNX graph from its image input to its output and turns it into a chain of
//! cnnviz layers, refusing with the node's name anything that is not a chain.
//!
//! ONNX lists nodes in topological order. Every value is either a constant (initializers,
//! `Constant` nodes and what [`fold`] computes from them) or an activation. A chain has
//! exactly one live activation at a time: each layer node reads the current one and makes
//! the next; a node reading an older activation is a branch, one reading two is a merge.

use std::collections::HashMap;

use super::fold;
use super::node;
use super::ops::{self, ChainLayer, Constant};
use super::proto::{GraphProto, NodeProto, ValueInfoProto, data_type};
use super::tensor::{self, Value};
use crate::model::{InputSpec, LayerOp, ModelError, Shape};

/// ONNX's permutation from NHWC (Keras' layout) to NCHW, which tf2onnx puts right after
/// the image input, and back, which it puts before the flatten.
const TO_NCHW: [i64; 4] = [0, 3, 1, 2];
const TO_NHWC: [i64; 4] = [0, 2, 3, 1];

/// In which order the current activation's elements are laid out. cnnviz computes in
/// C×H×W; a map in H×W×C order (between a tf2onnx graph's last transpose and its flatten)
/// only changes the order in which the flatten lists the features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Chw,
    Hwc,
}

/// Arithmetic that, given two activations, is a residual connection (`x + f(x)`).
const MERGES: [&str; 4] = ["Add", "Sum", "Mul", "Sub"];

/// What [`walk`] found: the image input and the layers, first to last.
pub struct Chain {
    pub input: InputSpec,
    pub layers: Vec<ChainLayer>,
}

struct Walk<'g> {
    constants: HashMap<&'g str, Value>,
    /// Every activation seen so far, with its shape (one image).
    activations: HashMap<&'g str, Shape>,
    current: &'g str,
    layers: Vec<ChainLayer>,
    /// The output of the node that made the last layer (a MatMul's bias must come next).
    last_layer_output: Option<&'g str>,
    /// The final Softmax/LogSoftmax, once seen: nothing may follow it.
    softmax: Option<&'g NodeProto>,
    /// The layout of the current activation.
    layout: Layout,
    /// The C×H×W of a map flattened in H×W×C order: the next dense layer's weight columns
    /// are reordered to C×H×W, so it computes the same logits on cnnviz's flatten.
    hwc_flattened: Option<(usize, usize, usize)>,
}

pub fn walk(graph: &GraphProto) -> Result<Chain, ModelError> {
    let mut constants = HashMap::new();
    for init in &graph.initializer {
        let name = init.name.as_deref().unwrap_or("");
        let value = tensor::decode(init, &format!("initializer `{name}`"))?;
        constants.insert(name, value);
    }
    // Old exporters also list initializers as graph inputs; those are not images.
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !constants.contains_key(i.name.as_deref().unwrap_or("")))
        .collect();
    let [image] = inputs[..] else {
        return Err(ModelError::Onnx(format!(
            "the graph has {} inputs ({}); cnnviz needs exactly one, the image",
            inputs.len(),
            value_names(&inputs)
        )));
    };
    let outputs: Vec<&ValueInfoProto> = graph.output.iter().collect();
    let [output] = outputs[..] else {
        return Err(ModelError::Onnx(format!(
            "the graph has {} outputs ({}); cnnviz needs exactly one, the class scores",
            outputs.len(),
            value_names(&outputs)
        )));
    };
    let image_name = image.name.as_deref().unwrap_or("");
    // A Keras / tf2onnx graph takes N×H×W×C and transposes it to N×C×H×W first thing.
    let nhwc = graph
        .node
        .iter()
        .find(|n| n.input.iter().any(|i| i == image_name))
        .is_some_and(|n| {
            node::op(n) == "Transpose" && node::ints(n, "perm") == Some(TO_NCHW.to_vec())
        });
    let input = input_spec(image, nhwc)?;
    let mut walk = Walk {
        constants,
        activations: HashMap::from([(
            image_name,
            Shape::Map {
                channels: input.channels,
                height: input.height,
                width: input.width,
            },
        )]),
        current: image_name,
        layers: Vec::new(),
        last_layer_output: None,
        softmax: None,
        layout: if nhwc { Layout::Hwc } else { Layout::Chw },
        hwc_flattened: None,
    };
    for node in &graph.node {
        walk.step(node)?;
    }
    let output_name = output.name.as_deref().unwrap_or("");
    if output_name != walk.current {
        return Err(ModelError::Onnx(format!(
            "the graph output `{output_name}` is not the end of the chain of layers from the input (that ends at `{}`)",
            walk.current
        )));
    }
    if walk.layers.is_empty() {
        return Err(ModelError::Onnx("the graph has no layers".to_string()));
    }
    Ok(Chain {
        input,
        layers: walk.layers,
    })
}

fn value_names(values: &[&ValueInfoProto]) -> String {
    values
        .iter()
        .map(|v| format!("`{}`", v.name.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[N, C, H, W]` (`nhwc`: `[N, H, W, C]`) with N symbolic, unset or 1, and C, H, W fixed.
fn input_spec(image: &ValueInfoProto, nhwc: bool) -> Result<InputSpec, ModelError> {
    let name = image.name.as_deref().unwrap_or("");
    let tensor = image.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let Some(tensor) = tensor else {
        return Err(ModelError::Onnx(format!(
            "graph input `{name}` is not a tensor"
        )));
    };
    let elem = tensor.elem_type.unwrap_or(0);
    if elem != data_type::FLOAT && elem != data_type::FLOAT16 {
        return Err(ModelError::Onnx(format!(
            "graph input `{name}` has ONNX data type {elem}; cnnviz feeds float images"
        )));
    }
    let dims: Vec<Option<i64>> = tensor
        .shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    let fixed = |d: Option<i64>| d.and_then(|d| usize::try_from(d).ok()).filter(|&d| d > 0);
    let layout = if nhwc { "[N, H, W, C]" } else { "[N, C, H, W]" };
    let [None | Some(0) | Some(1), a, b, c] = dims[..] else {
        return Err(ModelError::Onnx(format!(
            "graph input `{name}` has dims {dims:?}; cnnviz needs {layout} with N symbolic or 1"
        )));
    };
    let (c, h, w) = if nhwc { (c, a, b) } else { (a, b, c) };
    let (Some(channels), Some(height), Some(width)) = (fixed(c), fixed(h), fixed(w)) else {
        return Err(ModelError::Onnx(format!(
            "graph input `{name}` needs fixed channels, height and width, got {dims:?} ({layout})"
        )));
    };
    use crate::model::spec::limits::{MAX_INPUT_SIDE, MIN_INPUT_SIDE};
    if channels != 1 && channels != 3 {
        return Err(ModelError::Onnx(format!(
            "graph input `{name}` has {channels} channels (dims {dims:?}, {layout}); cnnviz reads 1 (grey) or 3 (RGB)"
        )));
    }
    if ![height, width]
        .iter()
        .all(|s| (MIN_INPUT_SIDE..=MAX_INPUT_SIDE).contains(s))
    {
        return Err(ModelError::Onnx(format!(
            "graph input `{name}` is {height}×{width}; cnnviz reads sides from {MIN_INPUT_SIDE} to {MAX_INPUT_SIDE}"
        )));
    }
    Ok(InputSpec {
        channels,
        height,
        width,
    })
}

impl<'g> Walk<'g> {
    fn step(&mut self, node: &'g NodeProto) -> Result<(), ModelError> {
        node::refuse_attribute_references(node)?;
        let op = node::op(node);
        if let Some(domain) = node
            .domain
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "ai.onnx")
        {
            return Err(node::error(
                node,
                format!("operators of domain \"{domain}\" are not supported"),
            ));
        }
        let inputs = node::inputs(node);
        let mut live = Vec::new();
        for &name in &inputs {
            if name.is_empty() || self.constants.contains_key(name) {
                continue;
            }
            if !self.activations.contains_key(name) {
                return Err(node::error(
                    node,
                    format!(
                        "input `{name}` is not made by any earlier node, initializer or graph input"
                    ),
                ));
            }
            live.push(name);
        }

        // `Shape` of an activation only reads its dims: plumbing, not a branch.
        if op == "Shape" && live.len() == 1 {
            let mut dims: Vec<usize> = std::iter::once(1)
                .chain(self.activations[live[0]].dims())
                .collect();
            if live[0] == self.current && self.layout == Layout::Hwc && dims.len() == 4 {
                dims[1..].rotate_left(1);
            }
            let value = Value {
                dims,
                data: tensor::Data::Ints(vec![]),
            };
            return self.fold(node, &[&value]);
        }
        if live.is_empty() {
            if fold::FOLDABLE.contains(&op) {
                let values: Vec<Value> = inputs
                    .iter()
                    .filter(|n| !n.is_empty())
                    .map(|n| self.constants[n].clone())
                    .collect();
                let refs: Vec<&Value> = values.iter().collect();
                return self.fold(node, &refs);
            }
            return Err(node::error(
                node,
                "does not read the image or any layer's output; only constant plumbing (Constant, Shape, Gather, Unsqueeze, Concat, Cast) may do that",
            ));
        }
        if live.len() > 1 {
            let why = if MERGES.contains(&op) {
                "residual connections are not supported: cnnviz draws a chain of layers"
            } else {
                "it reads two layers' outputs; cnnviz draws a chain of layers"
            };
            return Err(node::error(node, why));
        }
        if live[0] != self.current {
            return Err(node::error(
                node,
                format!(
                    "reads `{}`, which an earlier layer already feeds on: branches are not supported, cnnviz draws a chain of layers",
                    live[0]
                ),
            ));
        }
        if inputs.first() != Some(&live[0]) && !MERGES.contains(&op) {
            return Err(node::error(
                node,
                "its first input must be the previous layer's output",
            ));
        }
        if let Some(softmax) = self.softmax {
            return Err(node::error(
                node,
                format!(
                    "follows {} ({}); a Softmax or LogSoftmax is supported only as the last node",
                    node::label(softmax),
                    node::op(softmax)
                ),
            ));
        }
        self.layer(node, op, &inputs)
    }

    /// Keras' layout changes: NHWC → NCHW (after the input) and NCHW → NHWC (before the
    /// flatten) are followed; any other transpose is refused.
    fn transpose(&mut self, node: &NodeProto, shape: Shape) -> Result<(), ModelError> {
        let perm = node::ints(node, "perm").unwrap_or_default();
        self.layout = match (self.layout, &perm[..], shape) {
            (Layout::Hwc, p, Shape::Map { .. }) if p == TO_NCHW => Layout::Chw,
            (Layout::Chw, p, Shape::Map { .. }) if p == TO_NHWC && self.hwc_flattened.is_none() => {
                Layout::Hwc
            }
            _ => {
                return Err(node::error(
                    node,
                    format!(
                        "perm {perm:?} is not supported: cnnviz follows only the NHWC/NCHW transposes around a Keras model's layers ([0, 3, 1, 2] after the input, [0, 2, 3, 1] before the flatten)"
                    ),
                ));
            }
        };
        Ok(())
    }

    /// The `axes` of a Squeeze or ReduceMean: an attribute, or the second input since
    /// opsets 13 / 18; empty when absent.
    fn axes(&self, node: &NodeProto, inputs: &[&'g str]) -> Result<Vec<i64>, ModelError> {
        if let Some(axes) = node::ints(node, "axes") {
            return Ok(axes);
        }
        match self.constant(node, inputs, 1)? {
            Some(c) => c
                .value
                .as_ints()
                .map(<[i64]>::to_vec)
                .ok_or_else(|| node::error(node, "its axes are not an integer tensor")),
            None => Ok(Vec::new()),
        }
    }

    /// Axes of the current activation as N×C×H×W axes (an H×W×C map's 1, 2, 3 are 2, 3, 1).
    fn nchw_axes(&self, axes: &[i64]) -> Vec<i64> {
        axes.iter()
            .map(|&a| if a < 0 { a + 4 } else { a })
            .map(|a| match (self.layout, a) {
                (Layout::Hwc, 1) => 2,
                (Layout::Hwc, 2) => 3,
                (Layout::Hwc, 3) => 1,
                _ => a,
            })
            .collect()
    }

    fn fold(&mut self, node: &'g NodeProto, inputs: &[&Value]) -> Result<(), ModelError> {
        let value = fold::evaluate(node, inputs)?;
        let Some(out) = node.output.first() else {
            return Err(node::error(node, "has no output"));
        };
        self.constants.insert(out, value);
        Ok(())
    }

    /// The constant input `index` of `node`, if it has one.
    fn constant(
        &self,
        node: &NodeProto,
        inputs: &[&'g str],
        index: usize,
    ) -> Result<Option<Constant<'_>>, ModelError> {
        let Some(&name) = inputs.get(index).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match self.constants.get(name) {
            Some(value) => Ok(Some(Constant { name, value })),
            None => Err(node::error(
                node,
                format!(
                    "input `{name}` must be a constant (weights are read from initializers or Constant nodes)"
                ),
            )),
        }
    }

    fn required(
        &self,
        node: &NodeProto,
        inputs: &[&'g str],
        index: usize,
        what: &str,
    ) -> Result<Constant<'_>, ModelError> {
        self.constant(node, inputs, index)?
            .ok_or_else(|| node::error(node, format!("has no {what}")))
    }

    fn layer(
        &mut self,
        node: &'g NodeProto,
        op: &str,
        inputs: &[&'g str],
    ) -> Result<(), ModelError> {
        let shape = self.activations[self.current];
        let layers = match op {
            "Transpose" => {
                self.transpose(node, shape)?;
                Vec::new()
            }
            // Element-wise: the same in either layout.
            "Relu" => vec![ChainLayer::plain(LayerOp::Relu)],
            "LeakyRelu" => vec![ops::leaky_relu(node)?],
            "Sigmoid" => vec![ChainLayer::plain(LayerOp::Sigmoid)],
            "Tanh" => vec![ChainLayer::plain(LayerOp::Tanh)],
            "Dropout" => {
                let ratio = self.constant(node, inputs, 1)?.map(|c| c.value.clone());
                let training = self.constant(node, inputs, 2)?.map(|c| c.value.clone());
                vec![ops::dropout(node, ratio.as_ref(), training.as_ref())?]
            }
            "Identity" => Vec::new(),
            "Softmax" | "LogSoftmax" => {
                self.softmax = Some(node);
                Vec::new()
            }
            "Flatten" | "Reshape" | "Squeeze" => {
                let flatten = match op {
                    "Flatten" => ops::flatten(node, shape)?,
                    "Reshape" => {
                        let target = self.required(node, inputs, 1, "target shape")?;
                        let Some(target) = target.value.as_ints() else {
                            return Err(node::error(
                                node,
                                "its target shape is not an integer tensor",
                            ));
                        };
                        ops::reshape(node, shape, target)?
                    }
                    _ => {
                        let axes = self.axes(node, inputs)?;
                        ops::squeeze(node, shape, self.nchw_axes(&axes))?
                    }
                };
                if flatten.is_some() && self.layout == Layout::Hwc {
                    // The features come out in H×W×C order (Keras' Flatten).
                    self.hwc_flattened = Some(shape.chw());
                    self.layout = Layout::Chw;
                }
                flatten.into_iter().collect()
            }
            "ReduceMean" => {
                let axes = self.axes(node, inputs)?;
                let layers = ops::reduce_mean(node, shape, &self.nchw_axes(&axes))?;
                // A 1×1 map lists its channels in the same order in either layout.
                self.layout = Layout::Chw;
                layers
            }
            _ if self.layout == Layout::Hwc => {
                return Err(node::error(
                    node,
                    "runs on an N×H×W×C tensor; cnnviz computes in N×C×H×W (tf2onnx transposes to it before such layers)",
                ));
            }
            "Conv" => vec![ops::conv(
                node,
                shape,
                self.required(node, inputs, 1, "weight")?,
                self.constant(node, inputs, 2)?,
            )?],
            "MaxPool" => vec![ops::max_pool(node, shape)?],
            "AveragePool" => vec![ops::avg_pool(node, shape)?],
            "GlobalAveragePool" => vec![ops::global_avg_pool(node, shape)?],
            "BatchNormalization" => {
                if self.hwc_flattened.is_some() {
                    return Err(node::error(
                        node,
                        "batch norm of features flattened in H×W×C order is not supported",
                    ));
                }
                let mut params = Vec::with_capacity(4);
                for (index, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
                    params.push(self.required(node, inputs, index, what)?);
                }
                let Ok(params) = <[Constant; 4]>::try_from(params) else {
                    unreachable!("four pushed above")
                };
                vec![ops::batch_norm(node, shape, params)?]
            }
            "Gemm" | "MatMul" => {
                let weight = self.required(node, inputs, 1, "weight")?;
                let mut layer = if op == "Gemm" {
                    ops::gemm(node, shape, weight, self.constant(node, inputs, 2)?)?
                } else {
                    ops::mat_mul(node, shape, weight)?
                };
                if let Some(chw) = self.hwc_flattened.take() {
                    ops::reorder_hwc_columns(&mut layer, chw);
                }
                vec![layer]
            }
            "Add" => {
                // The bias of the MatMul (or bias-less Gemm) right before: `x @ W + b`.
                let other = usize::from(inputs.first() == Some(&self.current));
                let (name, bias) = {
                    let bias = self.required(node, inputs, other, "bias")?;
                    (bias.name.to_string(), bias.value.clone())
                };
                let right_after_dense = self.last_layer_output == Some(self.current);
                let Some(last) = self.layers.last_mut().filter(|l| {
                    matches!(l.op, LayerOp::Dense { .. }) && !l.has_bias && right_after_dense
                }) else {
                    return Err(node::error(
                        node,
                        "adding a constant is supported only as the bias of the MatMul or Gemm right before it",
                    ));
                };
                ops::set_bias(
                    node,
                    last,
                    Constant {
                        name: &name,
                        value: &bias,
                    },
                )?;
                Vec::new()
            }
            other => {
                return Err(node::error(
                    node,
                    format!(
                        "operator {other} is not supported (cnnviz imports chains of Conv, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool, Dropout, Flatten/Reshape, Gemm, MatMul+Add and a final Softmax)"
                    ),
                ));
            }
        };
        let mut output_shape = shape;
        for layer in &layers {
            output_shape = self::output_shape(node, &layer.op, output_shape)?;
        }
        let Some(out) = node.output.first() else {
            return Err(node::error(node, "has no output"));
        };
        if !layers.is_empty() {
            // A layer without weights takes its module's name from the node's
            // (`/pool2/MaxPool` → `pool2`), so the window names it as the source did.
            let module = node.name.as_deref().and_then(ops::module_of_node);
            self.layers.extend(layers.into_iter().map(|mut layer| {
                if layer.hint.is_none() {
                    layer.hint = module.clone();
                }
                layer
            }));
            self.last_layer_output = Some(out);
        }
        // Other outputs (Dropout's mask, MaxPool's indices) are activations nobody may read.
        for extra in node.output.iter().skip(1) {
            self.activations.insert(extra, output_shape);
        }
        self.activations.insert(out, output_shape);
        self.current = out;
        Ok(())
    }
}

/// The shape a layer makes, for the `Shape` plumbing and the next node's checks (the
/// architecture's own shape inference checks everything again afterwards).
fn output_shape(node: &NodeProto, op: &LayerOp, input: Shape) -> Result<Shape, ModelError> {
    use crate::model::spec::padded_window_output_side;
    let Shape::Map {
        channels,
        height,
        width,
    } = input
    else {
        return Ok(match *op {
            LayerOp::Dense { out_features, .. } => Shape::Vector { len: out_features },
            _ => input,
        });
    };
    let window = |channels, k, s, p, pe| match (
        padded_window_output_side(height, k, s, p, pe),
        padded_window_output_side(width, k, s, p, pe),
    ) {
        (Some(height), Some(width)) => Ok(Shape::Map {
            channels,
            height,
            width,
        }),
        _ => Err(node::error(
            node,
            format!("its {k}×{k} window does not fit the {input} input"),
        )),
    };
    match *op {
        LayerOp::Conv2d(g) => window(g.out_channels, g.kernel, g.stride, g.padding, g.padding_end),
        LayerOp::MaxPool2d { kernel, stride } => window(channels, kernel, stride, 0, 0),
        LayerOp::AvgPool2d(g) => window(channels, g.kernel, g.stride, g.padding, g.padding),
        LayerOp::GlobalAvgPool => Ok(Shape::Map {
            channels,
            height: 1,
            width: 1,
        }),
        LayerOp::Flatten => Ok(Shape::Vector { len: input.len() }),
        LayerOp::Dense { out_features, .. } => Ok(Shape::Vector { len: out_features }),
        _ => Ok(input),
    }
}
