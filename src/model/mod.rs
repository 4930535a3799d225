//! The model: its architecture, its weights, the file format, and the CPU reference twin.

pub mod arch_text;
pub mod builders;
mod error;
pub mod file;
pub mod onnx;
pub mod reference;
pub mod rng;
pub mod spec;
pub mod train;

pub use builders::default_architecture;
pub use error::ModelError;
pub use file::{
    METADATA_KEY, ModelSource, load_model, load_model_bytes, read_model_file, save_model,
    save_model_bytes,
};
pub use spec::{
    Architecture, AvgPoolGeometry, ConvGeometry, InputSpec, LayerOp, LayerPlan, LayerSpec,
    Normalization, Shape,
};

/// Weights and biases of one conv, dense or batch-norm layer, in PyTorch's layout
/// (`[out, in, k, k]`, `[out, in]`, and γ, β per channel). A layer saved without bias has
/// zeros here.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// A batch-norm layer's running statistics; `None` for every other layer.
    pub running: Option<RunningStats>,
}

impl LayerParams {
    /// The weights and biases of a conv or dense layer.
    pub fn new(weight: Vec<f32>, bias: Vec<f32>) -> LayerParams {
        LayerParams {
            weight,
            bias,
            running: None,
        }
    }

    /// Batch norm's γ (`weight`), β (`bias`) and running statistics.
    pub fn batch_norm(weight: Vec<f32>, bias: Vec<f32>, running: RunningStats) -> LayerParams {
        LayerParams {
            weight,
            bias,
            running: Some(running),
        }
    }

    /// Batch norm folded into one scale and shift per channel, computed in f64 as
    /// PyTorch's CPU inference kernel does (`alpha = γ / sqrt(var + eps)`,
    /// `beta = β - mean · alpha`); empty for a layer without running statistics.
    pub fn folded_batch_norm(&self, eps: f32) -> (Vec<f32>, Vec<f32>) {
        let Some(running) = &self.running else {
            return (Vec::new(), Vec::new());
        };
        let scale: Vec<f64> = self
            .weight
            .iter()
            .zip(&running.var)
            .map(|(&g, &v)| reference::batch_norm_channel_scale(g, v, eps))
            .collect();
        let shift = self
            .bias
            .iter()
            .zip(&running.mean)
            .zip(&scale)
            .map(|((&b, &m), &a)| (b as f64 - m as f64 * a) as f32)
            .collect();
        (scale.into_iter().map(|a| a as f32).collect(), shift)
    }
}

/// A batch-norm layer's `running_mean` and `running_var`, one value per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// One layer with resolved shapes and, for conv and dense layers, its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub plan: LayerPlan,
    pub params: Option<LayerParams>,
}

/// A conv block is a conv layer together with the element-wise layers that follow it
/// (batch norm, activations, dropout). Grad-CAM targets the block's output: the last of
/// those layers' output, or the conv's own if none follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvBlock {
    /// Index of the conv layer in [`Model::layers`].
    pub conv_layer: usize,
    /// Index of the layer whose output Grad-CAM reads (the block's last element-wise
    /// layer, or the conv itself).
    pub output_layer: usize,
    /// Channels, height and width of that output.
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Display name, e.g. `conv2`.
    pub name: String,
}

/// A validated network: every shape checked against the architecture, every weight finite.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub architecture: Architecture,
    pub layers: Vec<Layer>,
}

impl Model {
    /// A model of `architecture` whose every weight and bias is the next value of `fill`
    /// (zeros, or a seeded generator for tests and benchmarks).
    pub fn filled(
        architecture: Architecture,
        mut fill: impl FnMut() -> f32,
    ) -> Result<Model, ModelError> {
        let params = architecture
            .plan()?
            .iter()
            .filter_map(|plan| Some((plan.op, plan.op.parameter_lens()?)))
            .map(|(op, (w, b))| {
                let weight = (0..w).map(|_| fill()).collect();
                let bias = (0..b).map(|_| fill()).collect();
                match op {
                    // Variances must be positive: 1 + |fill|.
                    LayerOp::BatchNorm { channels, .. } => LayerParams::batch_norm(
                        weight,
                        bias,
                        RunningStats {
                            mean: (0..channels).map(|_| fill()).collect(),
                            var: (0..channels).map(|_| 1.0 + fill().abs()).collect(),
                        },
                    ),
                    _ => LayerParams::new(weight, bias),
                }
            })
            .collect();
        Model::from_parts(architecture, params)
    }

    /// Builds a model from an architecture and one [`LayerParams`] per conv, dense and
    /// batch-norm layer, in layer order. Used by the loader, the ONNX importer and the
    /// trainer, so all validate the same way.
    pub fn from_parts(
        architecture: Architecture,
        mut params: Vec<LayerParams>,
    ) -> Result<Model, ModelError> {
        let plans = architecture.plan()?;
        let expected: usize = plans
            .iter()
            .filter(|p| p.op.parameter_lens().is_some())
            .count();
        if params.len() != expected {
            return Err(ModelError::Inconsistent(format!(
                "{} parameter sets for {expected} conv/dense/batch-norm layers",
                params.len()
            )));
        }
        params.reverse();
        let mut layers = Vec::with_capacity(plans.len());
        for plan in plans {
            let wanted = plan.op.parameter_lens();
            let layer_params = match wanted {
                Some((w, b)) => {
                    let p = params.pop().expect("counted above");
                    if p.weight.len() != w || p.bias.len() != b {
                        return Err(ModelError::Inconsistent(format!(
                            "layer `{}`: {} weights and {} biases, expected {w} and {b}",
                            plan.name,
                            p.weight.len(),
                            p.bias.len()
                        )));
                    }
                    let empty: &[f32] = &[];
                    let (mean, var) = match (&plan.op, &p.running) {
                        (LayerOp::BatchNorm { .. }, Some(r)) => {
                            if r.mean.len() != b || r.var.len() != b {
                                return Err(ModelError::Inconsistent(format!(
                                    "layer `{}`: running statistics of {} and {} channels, expected {b}",
                                    plan.name,
                                    r.mean.len(),
                                    r.var.len()
                                )));
                            }
                            if let Some(index) = r.var.iter().position(|&v| v < 0.0) {
                                return Err(ModelError::Inconsistent(format!(
                                    "layer `{}`: running_var[{index}] is negative",
                                    plan.name
                                )));
                            }
                            (r.mean.as_slice(), r.var.as_slice())
                        }
                        (LayerOp::BatchNorm { .. }, None) => {
                            return Err(ModelError::Inconsistent(format!(
                                "layer `{}`: batch norm without running statistics",
                                plan.name
                            )));
                        }
                        _ => (empty, empty),
                    };
                    for (what, values) in [
                        ("weight", p.weight.as_slice()),
                        ("bias", &p.bias),
                        ("running_mean", mean),
                        ("running_var", var),
                    ] {
                        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                            return Err(ModelError::NonFinite {
                                name: format!("{}.{what}", plan.name),
                                index,
                            });
                        }
                    }
                    Some(p)
                }
                None => None,
            };
            layers.push(Layer {
                plan,
                params: layer_params,
            });
        }
        let model = Model {
            architecture,
            layers,
        };
        if model.parameter_count() > spec::limits::MAX_PARAMETERS {
            return Err(ModelError::TooLarge(format!(
                "{} parameters; at most {} are supported",
                model.parameter_count(),
                spec::limits::MAX_PARAMETERS
            )));
        }
        Ok(model)
    }

    pub fn input_shape(&self) -> Shape {
        let i = self.architecture.input;
        Shape::Map {
            channels: i.channels,
            height: i.height,
            width: i.width,
        }
    }

    /// Number of floats in one input image.
    pub fn input_len(&self) -> usize {
        self.input_shape().len()
    }

    pub fn num_classes(&self) -> usize {
        self.architecture.classes.len()
    }

    /// Shapes of every activation: index 0 is the input, index `i + 1` the output of layer `i`.
    pub fn activation_shapes(&self) -> Vec<Shape> {
        std::iter::once(self.input_shape())
            .chain(self.layers.iter().map(|l| l.plan.output))
            .collect()
    }

    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .filter_map(|l| l.params.as_ref())
            .map(|p| {
                let running = p.running.as_ref().map_or(0, |r| r.mean.len() + r.var.len());
                p.weight.len() + p.bias.len() + running
            })
            .sum()
    }

    /// Every conv block, first to last. Grad-CAM's default target is the last one.
    pub fn conv_blocks(&self) -> Vec<ConvBlock> {
        let mut blocks = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if let LayerOp::Conv2d(_) = layer.plan.op {
                let pointwise_after = self.layers[i + 1..]
                    .iter()
                    .take_while(|l| l.plan.op.is_pointwise())
                    .count();
                let output_layer = i + pointwise_after;
                let Shape::Map {
                    channels,
                    height,
                    width,
                } = self.layers[output_layer].plan.output
                else {
                    unreachable!("conv and relu of a map are maps")
                };
                blocks.push(ConvBlock {
                    conv_layer: i,
                    output_layer,
                    channels,
                    height,
                    width,
                    name: layer.plan.name.clone(),
                });
            }
        }
        blocks
    }

    /// Maps raw pixels (0..1, C×H×W) to what the first layer expects, channel by channel.
    pub fn normalize(&self, pixels: &[f32]) -> Vec<f32> {
        let input = self.architecture.input;
        let plane = (input.height * input.width).max(1);
        let n = &self.architecture.normalization;
        pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let (mean, std) = n.of_channel(i / plane);
                (p - mean) / std
            })
            .collect()
    }
}
