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

/// Layer types other cnnviz work will add; until then they are refused by name.
const NOT_YET: [&str; 7] = [
    "BatchNormalization",
    "AveragePool",
    "GlobalAveragePool",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Elu",
];

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
    let input = input_spec(image)?;
    let image_name = image.name.as_deref().unwrap_or("");
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

/// `[N, C, H, W]` with N symbolic, unset or 1, and C, H, W fixed.
fn input_spec(image: &ValueInfoProto) -> Result<InputSpec, ModelError> {
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
    match dims[..] {
        [None | Some(0) | Some(1), c, h, w] => match (fixed(c), fixed(h), fixed(w)) {
            (Some(channels), Some(height), Some(width)) => Ok(InputSpec {
                channels,
                height,
                width,
            }),
            _ => Err(ModelError::Onnx(format!(
                "graph input `{name}` needs fixed channels, height and width, got {dims:?}"
            ))),
        },
        _ => Err(ModelError::Onnx(format!(
            "graph input `{name}` has dims {dims:?}; cnnviz needs [N, C, H, W] with N symbolic or 1"
        ))),
    }
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
            let dims = std::iter::once(1)
                .chain(self.activations[live[0]].dims())
                .collect();
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
        let layer = match op {
            "Conv" => Some(ops::conv(
                node,
                shape,
                self.required(node, inputs, 1, "weight")?,
                self.constant(node, inputs, 2)?,
            )?),
            "Relu" => Some(ChainLayer::plain(LayerOp::Relu)),
            "MaxPool" => Some(ops::max_pool(node, shape)?),
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
            "Gemm" => Some(ops::gemm(
                node,
                shape,
                self.required(node, inputs, 1, "weight")?,
                self.constant(node, inputs, 2)?,
            )?),
            "MatMul" => Some(ops::mat_mul(
                node,
                shape,
                self.required(node, inputs, 1, "weight")?,
            )?),
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
                None
            }
            // Identities at inference.
            "Dropout" | "Identity" => None,
            "Softmax" | "LogSoftmax" => {
                self.softmax = Some(node);
                None
            }
            other if NOT_YET.contains(&other) => {
                return Err(node::error(
                    node,
                    format!("{other} layers are not supported yet by cnnviz's ONNX import"),
                ));
            }
            other => {
                return Err(node::error(
                    node,
                    format!(
                        "operator {other} is not supported (cnnviz imports chains of Conv, Relu, MaxPool, Flatten/Reshape, Gemm, MatMul+Add, Dropout, Identity and a final Softmax)"
                    ),
                ));
            }
        };
        let output_shape = match &layer {
            Some(layer) => output_shape(node, &layer.op, shape)?,
            None => shape,
        };
        let Some(out) = node.output.first() else {
            return Err(node::error(node, "has no output"));
        };
        if let Some(layer) = layer {
            self.layers.push(layer);
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
    use crate::model::spec::window_output_side;
    let window = |channels, h, w, k, s, p| match (
        window_output_side(h, k, s, p),
        window_output_side(w, k, s, p),
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
    match (*op, input) {
        (LayerOp::Conv2d(g), Shape::Map { height, width, .. }) => {
            window(g.out_channels, height, width, g.kernel, g.stride, g.padding)
        }
        (
            LayerOp::MaxPool2d { kernel, stride },
            Shape::Map {
                channels,
                height,
                width,
            },
        ) => window(channels, height, width, kernel, stride, 0),
        (LayerOp::Flatten, _) => Ok(Shape::Vector { len: input.len() }),
        (LayerOp::Dense { out_features, .. }, _) => Ok(Shape::Vector { len: out_features }),
        _ => Ok(input),
    }
}
