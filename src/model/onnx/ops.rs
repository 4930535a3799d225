//! One ONNX layer node to one cnnviz layer: the geometry checks of Conv and MaxPool, the
//! weight layouts of Gemm and MatMul, and which Reshape is a flatten.

use super::node;
use super::proto::NodeProto;
use super::tensor::Value;
use crate::model::{
    AvgPoolGeometry, ConvGeometry, LayerOp, LayerParams, ModelError, RunningStats, Shape,
};

/// One layer of the imported chain. `hint` is a name taken from the file (PyTorch's module
/// path of the weight, e.g. `conv1`), when there is a usable one.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainLayer {
    pub op: LayerOp,
    pub params: Option<LayerParams>,
    pub has_bias: bool,
    pub hint: Option<String>,
    /// A dropout layer's probability, kept for the scene's label.
    pub dropout_p: Option<f32>,
}

impl ChainLayer {
    pub fn plain(op: LayerOp) -> ChainLayer {
        ChainLayer {
            op,
            params: None,
            has_bias: false,
            hint: None,
            dropout_p: None,
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

/// The module of an exporter's node name: the segment before the op's own, as
/// `torch.onnx.export` (`/pool2/MaxPool`, `/features/features.3/Relu`) and tf2onnx
/// (`sequential/max_pooling2d/MaxPool`) write them; `None` for a bare name.
pub fn module_of_node(name: &str) -> Option<String> {
    let segments: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
    let module = *segments.get(segments.len().checked_sub(2)?)?;
    hint(&format!("{module}.weight"))
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

/// A window's zero padding on each side, from `auto_pad` or the explicit `pads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pads {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

impl Pads {
    fn describe(&self, auto: &str) -> String {
        let list = format!(
            "[{}, {}, {}, {}]",
            self.top, self.left, self.bottom, self.right
        );
        match auto {
            "" | "NOTSET" => format!("pads {list}"),
            _ => format!("auto_pad {auto} (pads {list})"),
        }
    }
}

/// The padding `auto_pad` asks for, or the explicit `pads` (`[top, left, bottom, right]`)
/// when it is NOTSET. Returns the pads and the `auto_pad` text, for messages.
fn pads(
    node: &NodeProto,
    kernel: usize,
    stride: usize,
    sides: (usize, usize),
) -> Result<(Pads, String), ModelError> {
    let auto = node::string(node, "auto_pad").unwrap_or_default();
    let pads = match auto.as_str() {
        "" | "NOTSET" => match node::ints(node, "pads").unwrap_or_default()[..] {
            [] => Pads {
                top: 0,
                left: 0,
                bottom: 0,
                right: 0,
            },
            [t, l, b, r] => Pads {
                top: to_usize(node, "padding", t)?,
                left: to_usize(node, "padding", l)?,
                bottom: to_usize(node, "padding", b)?,
                right: to_usize(node, "padding", r)?,
            },
            ref other => {
                return Err(node::error(
                    node,
                    format!("pads {other:?} are not the 4 of a 2-D window"),
                ));
            }
        },
        "VALID" => Pads {
            top: 0,
            left: 0,
            bottom: 0,
            right: 0,
        },
        "SAME_UPPER" | "SAME_LOWER" => {
            // ONNX: output = ceil(input / stride); the odd pixel of an uneven total goes
            // after the input for SAME_UPPER (TensorFlow's `same`), before it for SAME_LOWER.
            let split = |side: usize| {
                let total =
                    ((side.div_ceil(stride).max(1) - 1) * stride + kernel).saturating_sub(side);
                let small = total / 2;
                if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            };
            let ((top, bottom), (left, right)) = (split(sides.0), split(sides.1));
            Pads {
                top,
                left,
                bottom,
                right,
            }
        }
        other => {
            return Err(node::error(
                node,
                format!("auto_pad {other} is not supported"),
            ));
        }
    };
    Ok((pads, auto))
}

/// A convolution's `(padding, padding_end)`: the same above as left, the same below as
/// right, and any extra after the input (as TensorFlow's `same` puts it).
fn conv_padding(
    node: &NodeProto,
    kernel: usize,
    stride: usize,
    sides: (usize, usize),
) -> Result<(usize, usize), ModelError> {
    let (p, auto) = pads(node, kernel, stride, sides)?;
    if p.top != p.left || p.bottom != p.right {
        return Err(node::error(
            node,
            format!(
                "{} pad rows and columns differently; cnnviz supports the same padding above as left and below as right",
                p.describe(&auto)
            ),
        ));
    }
    if p.top > p.bottom {
        return Err(node::error(
            node,
            format!(
                "{} put the extra padding above and left; cnnviz supports it only below and right (SAME_UPPER, TensorFlow's `same`)",
                p.describe(&auto)
            ),
        ));
    }
    Ok((p.top, p.bottom))
}

/// A pooling window's padding, which cnnviz supports only the same on every side.
fn pool_padding(
    node: &NodeProto,
    kernel: usize,
    stride: usize,
    sides: (usize, usize),
) -> Result<usize, ModelError> {
    let (p, auto) = pads(node, kernel, stride, sides)?;
    if [p.left, p.bottom, p.right].iter().any(|&v| v != p.top) {
        return Err(node::error(
            node,
            format!(
                "{} differ between sides; cnnviz supports only the same pooling padding on every side",
                p.describe(&auto)
            ),
        ));
    }
    Ok(p.top)
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
    let (padding, padding_end) = conv_padding(node, kh, stride, (h, w))?;
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
            padding_end,
        }),
        params: Some(LayerParams::new(weights, bias_values)),
        has_bias: bias.is_some(),
        hint: hint(weight.name),
        dropout_p: None,
    })
}

/// A pooling node's square window, stride and padding, with ceil_mode refused where it
/// would change the output (a partial last window).
fn pool_window(node: &NodeProto, input: Shape) -> Result<(usize, usize, usize), ModelError> {
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
    let padding = pool_padding(node, kernel, stride, (h, w))?;
    // ceil_mode only changes anything when the last window would hang over the edge.
    let hangs_over = |side: usize| {
        let padded = side + 2 * padding;
        padded >= kernel && !(padded - kernel).is_multiple_of(stride)
    };
    if node::int(node, "ceil_mode").unwrap_or(0) != 0 && (hangs_over(h) || hangs_over(w)) {
        return Err(node::error(
            node,
            "ceil_mode 1 with a partial last window is not supported (export with ceil_mode=False)",
        ));
    }
    Ok((kernel, stride, padding))
}

pub fn max_pool(node: &NodeProto, input: Shape) -> Result<ChainLayer, ModelError> {
    let (kernel, stride, padding) = pool_window(node, input)?;
    if padding != 0 {
        return Err(node::error(node, "padded max pooling is not supported"));
    }
    Ok(ChainLayer::plain(LayerOp::MaxPool2d { kernel, stride }))
}

/// `AveragePool`; ONNX's `count_include_pad` defaults to 0 (PyTorch's to true).
pub fn avg_pool(node: &NodeProto, input: Shape) -> Result<ChainLayer, ModelError> {
    let (kernel, stride, padding) = pool_window(node, input)?;
    if padding > kernel / 2 {
        return Err(node::error(
            node,
            format!("padding {padding} is more than half the {kernel}×{kernel} window"),
        ));
    }
    Ok(ChainLayer::plain(LayerOp::AvgPool2d(AvgPoolGeometry {
        kernel,
        stride,
        padding,
        count_include_pad: node::int(node, "count_include_pad").unwrap_or(0) != 0,
    })))
}

pub fn global_avg_pool(node: &NodeProto, input: Shape) -> Result<ChainLayer, ModelError> {
    map_dims(node, input)?;
    Ok(ChainLayer::plain(LayerOp::GlobalAvgPool))
}

/// `ReduceMean` over both spatial axes of a map (how tf2onnx writes Keras'
/// `GlobalAveragePooling2D`): a global average pool, followed by a flatten when the
/// reduced axes are dropped (`keepdims` 0).
pub fn reduce_mean(
    node: &NodeProto,
    input: Shape,
    axes: &[i64],
) -> Result<Vec<ChainLayer>, ModelError> {
    map_dims(node, input)?;
    let mut axes: Vec<i64> = axes
        .iter()
        .map(|&a| if a < 0 { a + 4 } else { a })
        .collect();
    axes.sort_unstable();
    if axes != [2, 3] {
        return Err(node::error(
            node,
            format!(
                "a mean over axes {axes:?} is not supported (only over height and width, [2, 3]: a global average pool)"
            ),
        ));
    }
    let mut layers = vec![ChainLayer::plain(LayerOp::GlobalAvgPool)];
    if node::int(node, "keepdims").unwrap_or(1) == 0 {
        layers.push(ChainLayer::plain(LayerOp::Flatten));
    }
    Ok(layers)
}

/// `LeakyRelu`; ONNX's `alpha` defaults to 0.01, as PyTorch's `negative_slope`.
pub fn leaky_relu(node: &NodeProto) -> Result<ChainLayer, ModelError> {
    let negative_slope = node::float(node, "alpha").unwrap_or(0.01);
    if !negative_slope.is_finite() {
        return Err(node::error(
            node,
            format!("alpha {negative_slope} is not finite"),
        ));
    }
    Ok(ChainLayer::plain(LayerOp::LeakyRelu { negative_slope }))
}

/// `Dropout`: drawn as a layer, the identity at inference. Opset 12 moved `ratio` and
/// `training_mode` from attributes to inputs; a constant true `training_mode` is refused.
pub fn dropout(
    node: &NodeProto,
    ratio: Option<&Value>,
    training_mode: Option<&Value>,
) -> Result<ChainLayer, ModelError> {
    let training = training_mode.is_some_and(|t| match &t.data {
        super::tensor::Data::Ints(v) => v.iter().any(|&b| b != 0),
        super::tensor::Data::Floats(v) => v.iter().any(|&b| b != 0.0),
    }) || node::int(node, "is_test") == Some(0);
    if training {
        return Err(node::error(
            node,
            "training_mode is true; export the model in eval() mode",
        ));
    }
    let p = match ratio {
        Some(r) => r.as_floats().and_then(|v| v.first().copied()),
        None => node::float(node, "ratio"),
    }
    .unwrap_or(0.5);
    if !(0.0..1.0).contains(&p) {
        return Err(node::error(node, format!("ratio {p} is outside 0..1")));
    }
    Ok(ChainLayer {
        dropout_p: Some(p),
        ..ChainLayer::plain(LayerOp::Dropout)
    })
}

/// `BatchNormalization` in inference mode: its own layer, with the running statistics.
pub fn batch_norm(
    node: &NodeProto,
    input: Shape,
    [scale, bias, mean, var]: [Constant; 4],
) -> Result<ChainLayer, ModelError> {
    if node::int(node, "training_mode").unwrap_or(0) != 0
        || node.output.iter().skip(1).any(|o| !o.is_empty())
    {
        return Err(node::error(
            node,
            "training mode (training_mode 1 or running-statistics outputs) is not supported; export the model in eval() mode",
        ));
    }
    let (channels, _, _) = input.chw();
    let eps = node::float(node, "epsilon").unwrap_or(1e-5);
    if !eps.is_finite() || eps <= 0.0 {
        return Err(node::error(node, format!("epsilon {eps} must be > 0")));
    }
    let mut values = Vec::with_capacity(4);
    for (c, what) in [
        (&scale, "scale"),
        (&bias, "bias"),
        (&mean, "mean"),
        (&var, "variance"),
    ] {
        let v = floats(node, c, what)?;
        if v.len() != channels {
            return Err(node::error(
                node,
                format!(
                    "{what} `{}` has {} values for {channels} channels",
                    c.name,
                    v.len()
                ),
            ));
        }
        values.push(v.to_vec());
    }
    let [gamma, beta, running_mean, running_var] = <[Vec<f32>; 4]>::try_from(values)
        .map_err(|_| node::error(node, "needs scale, bias, mean and variance"))?;
    Ok(ChainLayer {
        op: LayerOp::BatchNorm { channels, eps },
        params: Some(LayerParams::batch_norm(
            gamma,
            beta,
            RunningStats {
                mean: running_mean,
                var: running_var,
            },
        )),
        has_bias: true,
        hint: hint(scale.name),
        dropout_p: None,
    })
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

/// `Squeeze` of the height and width of a C×1×1 map (after a global pool) is a flatten.
pub fn squeeze(
    node: &NodeProto,
    input: Shape,
    mut axes: Vec<i64>,
) -> Result<Option<ChainLayer>, ModelError> {
    axes.sort_unstable();
    match input {
        Shape::Map {
            height: 1,
            width: 1,
            ..
        } if axes.is_empty() || axes == [2, 3] => Ok(flatten_layer(input)),
        _ => Err(node::error(
            node,
            format!(
                "squeezes axes {axes:?} of {input}; only the 1×1 height and width after a global pool can be squeezed"
            ),
        )),
    }
}

/// A dense layer reading a map flattened in H×W×C order (Keras' `Flatten` after
/// tf2onnx's transpose back to NHWC) gets its weight columns in C×H×W order, the order of
/// cnnviz's flatten, so it computes the same outputs.
pub fn reorder_hwc_columns(layer: &mut ChainLayer, (c, h, w): (usize, usize, usize)) {
    let Some(params) = layer.params.as_mut() else {
        return;
    };
    let inputs = c * h * w;
    if inputs == 0 || params.weight.len() % inputs != 0 {
        return;
    }
    let mut reordered = vec![0.0; params.weight.len()];
    for (row_out, row_in) in reordered
        .chunks_exact_mut(inputs)
        .zip(params.weight.chunks_exact(inputs))
    {
        for ch in 0..c {
            for p in 0..h * w {
                row_out[ch * h * w + p] = row_in[p * c + ch];
            }
        }
    }
    params.weight = reordered;
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
        dropout_p: None,
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
