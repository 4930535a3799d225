//! One ONNX layer node to one cnnviz layer: the geometry checks of Conv and MaxPool, the
//! weight layouts of Gemm and MatMul, and which Reshape is a flatten.

use super::node;
use super::proto::NodeProto;
use super::tensor::Value;
use crate::model::{ConvGeometry, LayerOp, LayerParams, ModelError, Shape};

/// One layer of the imported chain. `hint` is a name taken from the file (PyTorch's module
/// path of the weight, e.g. `conv1`), when there is a usable one.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainLayer {
    pub op: LayerOp,
    pub params: Option<LayerParams>,
    pub has_bias: bool,
    pub hint: Option<String>,
}

impl ChainLayer {
    pub fn plain(op: LayerOp) -> ChainLayer {
        ChainLayer {
            op,
            params: None,
            has_bias: false,
            hint: None,
        }
    }
}

/// A constant input of a layer node, with the initializer's name for naming the layer.
pub struct Constant<'a> {
    pub name: &'a str,
    pub value: &'a Value,
}

fn floats<'a>(node: &NodeProto, c: &'a Constant, what: &str) -> Result<&'a [f32], ModelError> {
    c.value.as_floats().ok_or_else(|| {
        node::error(
            node,
            format!("its {what} `{}` is not a float tensor", c.name),
        )
    })
}

/// `conv1.weight` → `conv1`: PyTorch's module path, when the weight has one.
fn hint(weight: &str) -> Option<String> {
    let stem = weight.strip_suffix(".weight")?;
    let plain = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    plain.then(|| stem.to_string())
}

fn map_dims(node: &NodeProto, input: Shape) -> Result<(usize, usize, usize), ModelError> {
    match input {
        Shape::Map {
            channels,
            height,
            width,
        } => Ok((channels, height, width)),
        Shape::Vector { len } => Err(node::error(
            node,
            format!("needs a C×H×W input but gets a flat vector of {len}"),
        )),
    }
}

/// The one value every entry of `values` must share, or why not.
fn all_equal(node: &NodeProto, what: &str, values: &[i64]) -> Result<Option<i64>, ModelError> {
    match values.split_first() {
        None => Ok(None),
        Some((first, rest)) if rest.iter().all(|v| v == first) => Ok(Some(*first)),
        _ => Err(node::error(
            node,
            format!(
                "{what} {values:?} differ between sides; cnnviz supports only the same {what} on every side"
            ),
        )),
    }
}

fn to_usize(node: &NodeProto, what: &str, v: i64) -> Result<usize, ModelError> {
    usize::try_from(v).map_err(|_| node::error(node, format!("{what} {v} is negative")))
}

/// Padding for `auto_pad`, or the explicit `pads` when it is NOTSET.
fn padding(
    node: &NodeProto,
    kernel: usize,
    stride: usize,
    sides: (usize, usize),
) -> Result<usize, ModelError> {
    let auto = node::string(node, "auto_pad").unwrap_or_default();
    match auto.as_str() {
        "" | "NOTSET" => {
            let pads = node::ints(node, "pads").unwrap_or_default();
            let p = all_equal(node, "pads", &pads)?.unwrap_or(0);
            to_usize(node, "padding", p)
        }
        "VALID" => Ok(0),
        "SAME_UPPER" | "SAME_LOWER" => {
            // ONNX: output = ceil(input / stride); the total padding must split evenly.
            let total = |side: usize| {
                ((side.div_ceil(stride).max(1) - 1) * stride + kernel).saturating_sub(side)
            };
            let (th, tw) = (total(sides.0), total(sides.1));
            if th != tw || th % 2 != 0 {
                return Err(node::error(
                    node,
                    format!(
                        "auto_pad {auto} needs uneven padding ({th} rows, {tw} columns in all); cnnviz supports only the same padding on every side"
                    ),
                ));
            }
            Ok(th / 2)
        }
        other => Err(node::error(
            node,
            format!("auto_pad {other} is not supported"),
        )),
    }
}

fn unit_dilations(node: &NodeProto) -> Result<(), ModelError> {
    let dilations = node::ints(node, "dilations").unwrap_or_default();
    if dilations.iter().any(|&d| d != 1) {
        return Err(node::error(
            node,
            format!("dilations {dilations:?} are not supported (only 1)"),
        ));
    }
    Ok(())
}

fn square(node: &NodeProto, what: &str, values: &[i64]) -> Result<Option<usize>, ModelError> {
    match values {
        [] => Ok(None),
        [a, b] if a == b => Ok(Some(to_usize(node, what, *a)?)),
        _ => Err(node::error(
            node,
            format!("{what} {values:?} is not square; cnnviz supports only square 2-D windows"),
        )),
    }
}

pub fn conv(
    node: &NodeProto,
    input: Shape,
    weight: Constant,
    bias: Option<Constant>,
) -> Result<ChainLayer, ModelError> {
    let (c, h, w) = map_dims(node, input)?;
    let group = node::int(node, "group").unwrap_or(1);
    if group != 1 {
        return Err(node::error(
            node,
            format!("grouped convolution (group {group}) is not supported"),
        ));
    }
    unit_dilations(node)?;
    let dims = &weight.value.dims;
    let [out_channels, in_channels, kh, kw] = dims[..] else {
        return Err(node::error(
            node,
            format!(
                "weight `{}` has dims {dims:?}; a 2-D convolution needs 4",
                weight.name
            ),
        ));
    };
    if kh != kw {
        return Err(node::error(
            node,
            format!("kernel {kh}×{kw} is not square; cnnviz supports only square kernels"),
        ));
    }
    if in_channels != c {
        return Err(node::error(
            node,
            format!(
                "weight `{}` expects {in_channels} input channels but its input has {c}",
                weight.name
            ),
        ));
    }
    let kernel_attr = node::ints(node, "kernel_shape").unwrap_or_default();
    if square(node, "kernel_shape", &kernel_attr)?.is_some_and(|k| k != kh) {
        return Err(node::error(
            node,
            format!("kernel_shape {kernel_attr:?} does not match weight dims {dims:?}"),
        ));
    }
    let strides = node::ints(node, "strides").unwrap_or_default();
    let stride = to_usize(
        node,
        "stride",
        all_equal(node, "strides", &strides)?.unwrap_or(1),
    )?;
    if stride == 0 {
        return Err(node::error(node, "stride 0"));
    }
    let padding = padding(node, kh, stride, (h, w))?;
    let weights = floats(node, &weight, "weight")?.to_vec();
    let bias_values = match &bias {
        Some(b) => {
            let values = floats(node, b, "bias")?;
            if values.len() != out_channels {
                return Err(node::error(
                    node,
                    format!(
                        "bias `{}` has {} values for {out_channels} output channels",
                        b.name,
                        values.len()
                    ),
                ));
            }
            values.to_vec()
        }
        None => vec![0.0; out_channels],
    };
    Ok(ChainLayer {
        op: LayerOp::Conv2d(ConvGeometry {
            in_channels,
            out_channels,
            kernel: kh,
            stride,
            padding,
            padding_end: padding,
        }),
        params: Some(LayerParams::new(weights, bias_values)),
        has_bias: bias.is_some(),
        hint: hint(weight.name),
    })
}

pub fn max_pool(node: &NodeProto, input: Shape) -> Result<ChainLayer, ModelError> {
    let (_, h, w) = map_dims(node, input)?;
    unit_dilations(node)?;
    let kernel_attr = node::ints(node, "kernel_shape").unwrap_or_default();
    let kernel = square(node, "kernel_shape", &kernel_attr)?
        .ok_or_else(|| node::error(node, "has no kernel_shape"))?;
    let strides = node::ints(node, "strides").unwrap_or_default();
    let stride = to_usize(
        node,
        "stride",
        all_equal(node, "strides", &strides)?.unwrap_or(1),
    )?;
    if stride == 0 || kernel == 0 {
        return Err(node::error(node, "kernel and stride must be positive"));
    }
    if padding(node, kernel, stride, (h, w))? != 0 {
        return Err(node::error(node, "padded max pooling is not supported"));
    }
    // ceil_mode only changes anything when the last window would hang over the edge.
    let hangs_over = |side: usize| side >= kernel && !(side - kernel).is_multiple_of(stride);
    if node::int(node, "ceil_mode").unwrap_or(0) != 0 && (hangs_over(h) || hangs_over(w)) {
        return Err(node::error(
            node,
            "ceil_mode 1 with a partial last window is not supported",
        ));
    }
    Ok(ChainLayer::plain(LayerOp::MaxPool2d { kernel, stride }))
}

/// `Flatten` with axis 1 (the default): everything but the batch dimension into a vector.
pub fn flatten(node: &NodeProto, input: Shape) -> Result<Option<ChainLayer>, ModelError> {
    let rank: i64 = if matches!(input, Shape::Map { .. }) {
        4
    } else {
        2
    };
    let axis = node::int(node, "axis").unwrap_or(1);
    if axis != 1 && axis + rank != 1 {
        return Err(node::error(
            node,
            format!(
                "flattening from axis {axis} is not supported (only axis 1: keep the batch, flatten the rest)"
            ),
        ));
    }
    Ok(flatten_layer(input))
}

/// A flatten of a map; nothing for an input that is already flat.
fn flatten_layer(input: Shape) -> Option<ChainLayer> {
    matches!(input, Shape::Map { .. }).then(|| ChainLayer::plain(LayerOp::Flatten))
}

/// `Reshape` to `[N, -1]` (or `[N, C·H·W]`) is a flatten; any other target is refused.
pub fn reshape(
    node: &NodeProto,
    input: Shape,
    target: &[i64],
) -> Result<Option<ChainLayer>, ModelError> {
    let len = input.len() as i64;
    let flat = match target {
        // 0 copies the batch dimension; the batch is 1 per image here.
        [batch, rest] => {
            matches!(*batch, 0 | 1) && (*rest == -1 || *rest == len) || *batch == -1 && *rest == len
        }
        _ => false,
    };
    if !flat {
        return Err(node::error(
            node,
            format!("reshapes {input} to {target:?}; only a flatten to [N, -1] is supported"),
        ));
    }
    Ok(flatten_layer(input))
}

fn vector_len(node: &NodeProto, input: Shape) -> Result<usize, ModelError> {
    match input {
        Shape::Vector { len } => Ok(len),
        Shape::Map { .. } => Err(node::error(
            node,
            format!("needs a flat input but gets {input} (flatten before it)"),
        )),
    }
}

/// Row-major `[rows, cols]` to `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// A dense layer from a `[in, out]` (`transposed`: `[out, in]`) matrix and an optional bias.
fn dense(
    node: &NodeProto,
    input: Shape,
    weight: Constant,
    transposed: bool,
    bias: Option<Constant>,
) -> Result<ChainLayer, ModelError> {
    let len = vector_len(node, input)?;
    let dims = &weight.value.dims;
    let [a, b] = dims[..] else {
        return Err(node::error(
            node,
            format!(
                "weight `{}` has dims {dims:?}; a dense layer needs 2",
                weight.name
            ),
        ));
    };
    let (in_features, out_features) = if transposed { (b, a) } else { (a, b) };
    if in_features != len {
        return Err(node::error(
            node,
            format!(
                "weight `{}` expects {in_features} input features but its input has {len}",
                weight.name
            ),
        ));
    }
    let values = floats(node, &weight, "weight")?;
    let weight_values = if transposed {
        values.to_vec()
    } else {
        transpose(values, in_features, out_features)
    };
    let mut layer = ChainLayer {
        op: LayerOp::Dense {
            in_features,
            out_features,
        },
        params: Some(LayerParams::new(weight_values, vec![0.0; out_features])),
        has_bias: false,
        hint: hint(weight.name),
    };
    if let Some(b) = bias {
        set_bias(node, &mut layer, b)?;
    }
    Ok(layer)
}

/// Gives a dense layer its bias: `[out]`, `[1, out]`, or one value broadcast.
pub fn set_bias(
    node: &NodeProto,
    layer: &mut ChainLayer,
    bias: Constant,
) -> Result<(), ModelError> {
    let values = floats(node, &bias, "bias")?;
    let Some(params) = layer.params.as_mut() else {
        return Err(node::error(node, "has no layer to add a bias to"));
    };
    let out = params.bias.len();
    let broadcast_ok = bias.value.dims.iter().filter(|&&d| d != 1).count() <= 1;
    params.bias = match values.len() {
        n if n == out && broadcast_ok => values.to_vec(),
        1 => vec![values[0]; out],
        n => {
            return Err(node::error(
                node,
                format!(
                    "bias `{}` has {n} values (dims {:?}) for {out} outputs",
                    bias.name, bias.value.dims
                ),
            ));
        }
    };
    layer.has_bias = true;
    Ok(())
}

pub fn gemm(
    node: &NodeProto,
    input: Shape,
    weight: Constant,
    bias: Option<Constant>,
) -> Result<ChainLayer, ModelError> {
    if node::int(node, "transA").unwrap_or(0) != 0 {
        return Err(node::error(node, "transA 1 is not supported"));
    }
    let alpha = node::float(node, "alpha").unwrap_or(1.0);
    let beta = node::float(node, "beta").unwrap_or(1.0);
    if alpha != 1.0 || (bias.is_some() && beta != 1.0) {
        return Err(node::error(
            node,
            format!("alpha {alpha} / beta {beta} are not supported (only 1)"),
        ));
    }
    let transposed = node::int(node, "transB").unwrap_or(0) != 0;
    dense(node, input, weight, transposed, bias)
}

pub fn mat_mul(node: &NodeProto, input: Shape, weight: Constant) -> Result<ChainLayer, ModelError> {
    dense(node, input, weight, false, None)
}
