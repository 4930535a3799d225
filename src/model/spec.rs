//! The architecture description that travels in a model file's `__metadata__`, and the
//! shape inference that turns it into a checked list of layers.
//!
//! Nothing about the network is hard-coded anywhere else: the GPU kernels, the CPU twin,
//! the trainer and the scene all read layer shapes from [`LayerPlan`]s derived here.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The `format` string every cnnviz architecture carries, so a foreign JSON blob is refused.
pub const ARCHITECTURE_FORMAT: &str = "cnnviz.sequential";
/// The newest architecture version this build understands.
pub const ARCHITECTURE_VERSION: u32 = 1;

/// Caps that keep a hostile or mistaken file from asking for absurd amounts of memory.
pub mod limits {
    pub const MAX_LAYERS: usize = 64;
    pub const MAX_INPUT_SIDE: usize = 512;
    pub const MIN_INPUT_SIDE: usize = 4;
    pub const MAX_CHANNELS: usize = 4096;
    pub const MAX_KERNEL: usize = 15;
    pub const MAX_STRIDE: usize = 8;
    pub const MAX_FEATURES: usize = 1 << 20;
    pub const MAX_CLASSES: usize = 1000;
    /// Floats of all layer outputs for one image.
    pub const MAX_ACTIVATIONS_PER_IMAGE: usize = 16 << 20;
    /// Floats of all weights and biases.
    pub const MAX_PARAMETERS: usize = 64 << 20;
}

/// The sequential network as written in the file's metadata (key [`super::METADATA_KEY`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub input: InputSpec,
    pub classes: Vec<String>,
    pub normalization: Normalization,
    /// How pictures are prepared; `None`: by shape (see [`Architecture::preprocessing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Preprocessing>,
    pub layers: Vec<LayerSpec>,
}

/// Shape of one input image: 1 (grey) or 3 (RGB) channels. Drawings are grey; a
/// 3-channel model gets the grey drawing in every channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// `x_normalised = (x - mean[c]) / std[c]` with `x` in 0..1, as torchvision's
/// `Normalize`: one value for every channel, or one per channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    pub mean: ChannelValues,
    pub std: ChannelValues,
}

impl Normalization {
    /// The same mean and deviation for every channel.
    pub const fn uniform(mean: f32, std: f32) -> Normalization {
        Normalization {
            mean: ChannelValues::One(mean),
            std: ChannelValues::One(std),
        }
    }

    /// `(mean, std)` of channel `channel`.
    pub fn of_channel(&self, channel: usize) -> (f32, f32) {
        (self.mean.of_channel(channel), self.std.of_channel(channel))
    }
}

/// A normalisation value: one number for all channels, or a list with one per channel
/// (JSON `0.5` or `[0.485, 0.456, 0.406]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChannelValues {
    One(f32),
    Each(Vec<f32>),
}

impl ChannelValues {
    /// The value of channel `channel` (the last listed one past the end; the plan checks
    /// that a list has one value per input channel).
    pub fn of_channel(&self, channel: usize) -> f32 {
        match self {
            ChannelValues::One(v) => *v,
            ChannelValues::Each(values) => values
                .get(channel)
                .or(values.last())
                .copied()
                .unwrap_or(0.0),
        }
    }

    pub fn values(&self) -> &[f32] {
        match self {
            ChannelValues::One(v) => std::slice::from_ref(v),
            ChannelValues::Each(values) => values,
        }
    }
}

impl std::fmt::Display for ChannelValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelValues::One(v) => write!(f, "{v}"),
            ChannelValues::Each(values) => {
                let text: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                write!(f, "[{}]", text.join(", "))
            }
        }
    }
}

/// How a drawing or an image file becomes the model's input. Stated by the model file;
/// without it, [`Architecture::preprocessing`] picks by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocessing {
    /// MNIST's: the ink's bounding box scaled into 20×20 (of 28×28), centred on its centre
    /// of mass, scaled to the input size.
    MnistCentre,
    /// A plain resize of the whole picture to the input size.
    Resize,
}

/// One layer as the file describes it. Tensor names follow PyTorch's `state_dict`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    Conv2d {
        name: String,
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        /// Zero padding above and left of the input (and below and right unless
        /// `padding_end` says otherwise).
        padding: usize,
        /// Padding below and right of the input when it differs from `padding`: the
        /// asymmetric `same` padding of Keras / tf2onnx and of even kernels puts the
        /// extra row and column there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        padding_end: Option<usize>,
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
    },
    Relu {
        name: String,
    },
    /// `max(x, 0) + negative_slope · min(x, 0)`, PyTorch's `LeakyReLU`.
    LeakyRelu {
        name: String,
        negative_slope: f32,
    },
    Sigmoid {
        name: String,
    },
    Tanh {
        name: String,
    },
    /// Drawn in the scene; the identity at inference, as in PyTorch's `eval()` mode.
    Dropout {
        name: String,
        #[serde(default)]
        p: f32,
    },
    /// Inference-mode batch normalisation with its running statistics, per channel of a
    /// map (`BatchNorm2d`) or per feature of a vector (`BatchNorm1d`):
    /// `(x - running_mean) / sqrt(running_var + eps) · weight + bias`.
    #[serde(rename = "batchnorm")]
    BatchNorm {
        name: String,
        num_features: usize,
        eps: f32,
        weight: String,
        bias: String,
        running_mean: String,
        running_var: String,
    },
    #[serde(rename = "maxpool2d")]
    MaxPool2d {
        name: String,
        kernel_size: usize,
        stride: usize,
    },
    /// PyTorch's `AvgPool2d` (floor mode). `count_include_pad` as in PyTorch (default
    /// true); ONNX's `AveragePool` defaults to false.
    #[serde(rename = "avgpool2d")]
    AvgPool2d {
        name: String,
        kernel_size: usize,
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default = "default_true")]
        count_include_pad: bool,
    },
    /// The mean of each channel's whole plane: `AdaptiveAvgPool2d(1)` / ONNX
    /// `GlobalAveragePool`; outputs a C×1×1 map.
    GlobalAvgPool {
        name: String,
    },
    Flatten {
        name: String,
    },
    Dense {
        name: String,
        in_features: usize,
        out_features: usize,
        weight: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<String>,
    },
}

fn default_true() -> bool {
    true
}

impl LayerSpec {
    pub fn name(&self) -> &str {
        match self {
            LayerSpec::Conv2d { name, .. }
            | LayerSpec::Relu { name }
            | LayerSpec::LeakyRelu { name, .. }
            | LayerSpec::Sigmoid { name }
            | LayerSpec::Tanh { name }
            | LayerSpec::Dropout { name, .. }
            | LayerSpec::BatchNorm { name, .. }
            | LayerSpec::MaxPool2d { name, .. }
            | LayerSpec::AvgPool2d { name, .. }
            | LayerSpec::GlobalAvgPool { name }
            | LayerSpec::Flatten { name }
            | LayerSpec::Dense { name, .. } => name,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::Relu { .. } => "relu",
            LayerSpec::LeakyRelu { .. } => "leaky_relu",
            LayerSpec::Sigmoid { .. } => "sigmoid",
            LayerSpec::Tanh { .. } => "tanh",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::BatchNorm { .. } => "batchnorm",
            LayerSpec::MaxPool2d { .. } => "maxpool2d",
            LayerSpec::AvgPool2d { .. } => "avgpool2d",
            LayerSpec::GlobalAvgPool { .. } => "global_avg_pool",
            LayerSpec::Flatten { .. } => "flatten",
            LayerSpec::Dense { .. } => "dense",
        }
    }
}

/// The shape of one activation tensor for a single image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Shape {
    /// Channels × height × width, stored in that order (PyTorch's NCHW without N).
    Map {
        channels: usize,
        height: usize,
        width: usize,
    },
    /// A flat vector of features.
    Vector { len: usize },
}

impl Shape {
    pub fn len(&self) -> usize {
        match *self {
            Shape::Map {
                channels,
                height,
                width,
            } => channels * height * width,
            Shape::Vector { len } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(channels, height, width)`; a vector is `len` channels of one pixel, as the
    /// kernels and the CPU twins index it.
    pub fn chw(&self) -> (usize, usize, usize) {
        match *self {
            Shape::Map {
                channels,
                height,
                width,
            } => (channels, height, width),
            Shape::Vector { len } => (len, 1, 1),
        }
    }

    /// `[C, H, W]` or `[N]`, for messages and JSON.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Map {
                channels,
                height,
                width,
            } => vec![channels, height, width],
            Shape::Vector { len } => vec![len],
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.dims().iter().map(|d| d.to_string()).collect();
        write!(f, "{}", dims.join("×"))
    }
}

/// The operation of a layer with its geometry resolved (weights live in [`super::Model`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerOp {
    Conv2d(ConvGeometry),
    Relu,
    LeakyRelu {
        negative_slope: f32,
    },
    Sigmoid,
    Tanh,
    /// The identity at inference.
    Dropout,
    /// Per-channel affine map from running statistics; parameters: `weight` (γ), `bias`
    /// (β) and [`super::RunningStats`].
    BatchNorm {
        channels: usize,
        eps: f32,
    },
    MaxPool2d {
        kernel: usize,
        stride: usize,
    },
    AvgPool2d(AvgPoolGeometry),
    /// Mean over each channel's whole plane (its input height × width).
    GlobalAvgPool,
    Flatten,
    Dense {
        in_features: usize,
        out_features: usize,
    },
}

impl LayerOp {
    /// How many weights and biases the layer has; `None` for layers without parameters.
    pub fn parameter_lens(&self) -> Option<(usize, usize)> {
        match *self {
            LayerOp::Conv2d(g) => Some((
                g.out_channels * g.in_channels * g.kernel * g.kernel,
                g.out_channels,
            )),
            LayerOp::Dense {
                in_features,
                out_features,
            } => Some((out_features * in_features, out_features)),
            LayerOp::BatchNorm { channels, .. } => Some((channels, channels)),
            _ => None,
        }
    }

    /// Whether the op maps each element on its own (activations, dropout, batch norm):
    /// such layers after a conv belong to its block, and never change the shape.
    pub fn is_pointwise(&self) -> bool {
        matches!(
            self,
            LayerOp::Relu
                | LayerOp::LeakyRelu { .. }
                | LayerOp::Sigmoid
                | LayerOp::Tanh
                | LayerOp::Dropout
                | LayerOp::BatchNorm { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero padding above and left: input row `oy · stride + ky - padding`.
    pub padding: usize,
    /// Zero padding below and right (equal to `padding` unless asymmetric); it only
    /// changes the output size, which every kernel reads from the layer's output shape.
    pub padding_end: usize,
}

/// An average pool's window (floor mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolGeometry {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Whether padded zeros count in the divisor (PyTorch's default).
    pub count_include_pad: bool,
}

/// A layer with its input and output shapes, as every consumer of the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    pub name: String,
    pub op: LayerOp,
    pub input: Shape,
    pub output: Shape,
}

/// Output side of a convolution or pooling window with `padding` on both sides,
/// PyTorch's floor rule.
pub fn window_output_side(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Option<usize> {
    padded_window_output_side(input, kernel, stride, padding, padding)
}

/// [`window_output_side`] with different padding before and after the input.
pub fn padded_window_output_side(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    padding_end: usize,
) -> Option<usize> {
    let padded = input + padding + padding_end;
    if padded < kernel || stride == 0 {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

fn inconsistent(msg: String) -> ModelError {
    ModelError::Inconsistent(msg)
}

/// The output of a pooling window over `shape` (checked: a map, a kernel and stride in
/// range, a window that fits); `at` names the layer in errors.
fn pool_output(
    at: &str,
    shape: Shape,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Shape, ModelError> {
    use limits::{MAX_KERNEL, MAX_STRIDE};
    let Shape::Map {
        channels,
        height,
        width,
    } = shape
    else {
        return Err(inconsistent(format!(
            "{at}: needs a C×H×W input, got {shape}"
        )));
    };
    if kernel == 0 || kernel > MAX_KERNEL || stride == 0 || stride > MAX_STRIDE {
        return Err(inconsistent(format!(
            "{at}: kernel_size {kernel} / stride {stride} outside 1..={MAX_KERNEL} / 1..={MAX_STRIDE}"
        )));
    }
    let (Some(oh), Some(ow)) = (
        window_output_side(height, kernel, stride, padding),
        window_output_side(width, kernel, stride, padding),
    ) else {
        return Err(inconsistent(format!(
            "{at}: window {kernel} does not fit the {height}×{width} input"
        )));
    };
    Ok(Shape::Map {
        channels,
        height: oh,
        width: ow,
    })
}

impl Architecture {
    /// How pictures are prepared for this model: as stated, else MNIST-style centring for
    /// grey 28×28 digit models and a plain resize for every other shape.
    pub fn preprocessing(&self) -> Preprocessing {
        self.preprocessing.unwrap_or({
            let i = self.input;
            if (i.channels, i.height, i.width) == (1, 28, 28) {
                Preprocessing::MnistCentre
            } else {
                Preprocessing::Resize
            }
        })
    }

    /// Checks the description and infers every layer's shapes.
    pub fn plan(&self) -> Result<Vec<LayerPlan>, ModelError> {
        use limits::*;
        if self.format != ARCHITECTURE_FORMAT {
            return Err(ModelError::BadMetadata(format!(
                "format is \"{}\", expected \"{ARCHITECTURE_FORMAT}\"",
                self.format
            )));
        }
        if self.version == 0 || self.version > ARCHITECTURE_VERSION {
            return Err(ModelError::BadMetadata(format!(
                "architecture version {} is not supported (this build reads version {ARCHITECTURE_VERSION})",
                self.version
            )));
        }
        let InputSpec {
            channels,
            height,
            width,
        } = self.input;
        if channels != 1 && channels != 3 {
            return Err(inconsistent(format!(
                "input has {channels} channels; 1 (grey) or 3 (RGB) are supported"
            )));
        }
        for (what, side) in [("height", height), ("width", width)] {
            if !(MIN_INPUT_SIDE..=MAX_INPUT_SIDE).contains(&side) {
                return Err(ModelError::TooLarge(format!(
                    "input {what} {side} is outside {MIN_INPUT_SIDE}..={MAX_INPUT_SIDE}"
                )));
            }
        }
        let n = &self.normalization;
        for values in [&n.mean, &n.std] {
            let count = values.values().len();
            if count != 1 && count != channels {
                return Err(inconsistent(format!(
                    "normalization has {count} values for a {channels}-channel input (give 1 or {channels})"
                )));
            }
        }
        for c in 0..channels {
            let (mean, std) = n.of_channel(c);
            if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
                return Err(inconsistent(format!(
                    "normalization mean {mean} / std {std} of channel {c} must be finite with std > 0"
                )));
            }
        }
        if self.classes.len() < 2 || self.classes.len() > MAX_CLASSES {
            return Err(inconsistent(format!(
                "{} class labels; between 2 and {MAX_CLASSES} are supported",
                self.classes.len()
            )));
        }
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(ModelError::TooLarge(format!(
                "{} layers; between 1 and {MAX_LAYERS} are supported",
                self.layers.len()
            )));
        }

        let mut shape = Shape::Map {
            channels,
            height,
            width,
        };
        let mut plans = Vec::with_capacity(self.layers.len());
        let mut names = std::collections::HashSet::new();
        let mut total_activations = shape.len();
        for (index, spec) in self.layers.iter().enumerate() {
            let name = spec.name();
            let at = format!("layer {index} (`{name}`, {})", spec.kind_name());
            if name.is_empty() || !names.insert(name.to_string()) {
                return Err(inconsistent(format!(
                    "{at}: layer names must be unique and non-empty"
                )));
            }
            let (op, output) = match *spec {
                LayerSpec::Conv2d {
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride,
                    padding,
                    padding_end,
                    ..
                } => {
                    let padding_end = padding_end.unwrap_or(padding);
                    let Shape::Map {
                        channels: c,
                        height: h,
                        width: w,
                    } = shape
                    else {
                        return Err(inconsistent(format!(
                            "{at}: needs a C×H×W input, got {shape}"
                        )));
                    };
                    if in_channels != c {
                        return Err(inconsistent(format!(
                            "{at}: in_channels is {in_channels} but its input has {c} channels"
                        )));
                    }
                    if out_channels == 0 || out_channels > MAX_CHANNELS {
                        return Err(ModelError::TooLarge(format!(
                            "{at}: out_channels {out_channels} outside 1..={MAX_CHANNELS}"
                        )));
                    }
                    if kernel_size == 0 || kernel_size > MAX_KERNEL {
                        return Err(ModelError::TooLarge(format!(
                            "{at}: kernel_size {kernel_size} outside 1..={MAX_KERNEL}"
                        )));
                    }
                    if stride == 0 || stride > MAX_STRIDE {
                        return Err(inconsistent(format!(
                            "{at}: stride {stride} outside 1..={MAX_STRIDE}"
                        )));
                    }
                    if padding >= kernel_size || padding_end >= kernel_size {
                        return Err(inconsistent(format!(
                            "{at}: padding {padding} / {padding_end} must be smaller than kernel_size {kernel_size}"
                        )));
                    }
                    let (Some(oh), Some(ow)) = (
                        padded_window_output_side(h, kernel_size, stride, padding, padding_end),
                        padded_window_output_side(w, kernel_size, stride, padding, padding_end),
                    ) else {
                        return Err(inconsistent(format!(
                            "{at}: kernel {kernel_size} does not fit the {h}×{w} input with padding {padding}"
                        )));
                    };
                    (
                        LayerOp::Conv2d(ConvGeometry {
                            in_channels,
                            out_channels,
                            kernel: kernel_size,
                            stride,
                            padding,
                            padding_end,
                        }),
                        Shape::Map {
                            channels: out_channels,
                            height: oh,
                            width: ow,
                        },
                    )
                }
                LayerSpec::Relu { .. } => (LayerOp::Relu, shape),
                LayerSpec::LeakyRelu { negative_slope, .. } => {
                    if !negative_slope.is_finite() {
                        return Err(inconsistent(format!(
                            "{at}: negative_slope {negative_slope} must be finite"
                        )));
                    }
                    (LayerOp::LeakyRelu { negative_slope }, shape)
                }
                LayerSpec::Sigmoid { .. } => (LayerOp::Sigmoid, shape),
                LayerSpec::Tanh { .. } => (LayerOp::Tanh, shape),
                LayerSpec::Dropout { p, .. } => {
                    if !(0.0..1.0).contains(&p) {
                        return Err(inconsistent(format!("{at}: p {p} outside 0..1")));
                    }
                    (LayerOp::Dropout, shape)
                }
                LayerSpec::BatchNorm {
                    num_features, eps, ..
                } => {
                    let (c, _, _) = shape.chw();
                    if num_features != c {
                        return Err(inconsistent(format!(
                            "{at}: num_features is {num_features} but its input has {c} channels"
                        )));
                    }
                    if !eps.is_finite() || eps <= 0.0 {
                        return Err(inconsistent(format!(
                            "{at}: eps {eps} must be finite and > 0"
                        )));
                    }
                    (
                        LayerOp::BatchNorm {
                            channels: num_features,
                            eps,
                        },
                        shape,
                    )
                }
                LayerSpec::AvgPool2d {
                    kernel_size,
                    stride,
                    padding,
                    count_include_pad,
                    ..
                } => {
                    // PyTorch's rule: padding at most half the window.
                    if padding > kernel_size / 2 {
                        return Err(inconsistent(format!(
                            "{at}: padding {padding} must be at most half of kernel_size {kernel_size}"
                        )));
                    }
                    (
                        LayerOp::AvgPool2d(AvgPoolGeometry {
                            kernel: kernel_size,
                            stride,
                            padding,
                            count_include_pad,
                        }),
                        pool_output(&at, shape, kernel_size, stride, padding)?,
                    )
                }
                LayerSpec::GlobalAvgPool { .. } => {
                    let Shape::Map { channels, .. } = shape else {
                        return Err(inconsistent(format!(
                            "{at}: needs a C×H×W input, got {shape}"
                        )));
                    };
                    (
                        LayerOp::GlobalAvgPool,
                        Shape::Map {
                            channels,
                            height: 1,
                            width: 1,
                        },
                    )
                }
                LayerSpec::MaxPool2d {
                    kernel_size,
                    stride,
                    ..
                } => (
                    LayerOp::MaxPool2d {
                        kernel: kernel_size,
                        stride,
                    },
                    pool_output(&at, shape, kernel_size, stride, 0)?,
                ),
                LayerSpec::Flatten { .. } => (LayerOp::Flatten, Shape::Vector { len: shape.len() }),
                LayerSpec::Dense {
                    in_features,
                    out_features,
                    ..
                } => {
                    let Shape::Vector { len } = shape else {
                        return Err(inconsistent(format!(
                            "{at}: needs a flat input (put a flatten layer before it), got {shape}"
                        )));
                    };
                    if in_features != len {
                        return Err(inconsistent(format!(
                            "{at}: in_features is {in_features} but its input has {len} features"
                        )));
                    }
                    if out_features == 0 || out_features > MAX_FEATURES {
                        return Err(ModelError::TooLarge(format!(
                            "{at}: out_features {out_features} outside 1..={MAX_FEATURES}"
                        )));
                    }
                    (
                        LayerOp::Dense {
                            in_features,
                            out_features,
                        },
                        Shape::Vector { len: out_features },
                    )
                }
            };
            total_activations = total_activations.saturating_add(output.len());
            if total_activations > MAX_ACTIVATIONS_PER_IMAGE {
                return Err(ModelError::TooLarge(format!(
                    "{at}: activations exceed {MAX_ACTIVATIONS_PER_IMAGE} floats per image"
                )));
            }
            plans.push(LayerPlan {
                name: name.to_string(),
                op,
                input: shape,
                output,
            });
            shape = output;
        }
        if shape
            != (Shape::Vector {
                len: self.classes.len(),
            })
        {
            return Err(inconsistent(format!(
                "the last layer outputs {shape}, but there are {} classes (softmax needs a vector of that length)",
                self.classes.len()
            )));
        }
        Ok(plans)
    }

    /// The `(weight, bias)` tensor names and their expected shapes, in layer order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for spec in &self.layers {
            match spec {
                LayerSpec::Conv2d {
                    in_channels,
                    out_channels,
                    kernel_size,
                    weight,
                    bias,
                    ..
                } => {
                    out.push((
                        weight.clone(),
                        vec![*out_channels, *in_channels, *kernel_size, *kernel_size],
                    ));
                    if let Some(b) = bias {
                        out.push((b.clone(), vec![*out_channels]));
                    }
                }
                LayerSpec::Dense {
                    in_features,
                    out_features,
                    weight,
                    bias,
                    ..
                } => {
                    out.push((weight.clone(), vec![*out_features, *in_features]));
                    if let Some(b) = bias {
                        out.push((b.clone(), vec![*out_features]));
                    }
                }
                LayerSpec::BatchNorm {
                    num_features,
                    weight,
                    bias,
                    running_mean,
                    running_var,
                    ..
                } => {
                    for name in [weight, bias, running_mean, running_var] {
                        out.push((name.clone(), vec![*num_features]));
                    }
                }
                _ => {}
            }
        }
        out
    }
}
