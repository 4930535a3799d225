//! The model: its architecture, its weights, the file format, and the CPU reference twin.

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
    METADATA_KEY, load_model, load_model_bytes, read_model_file, save_model, save_model_bytes,
};
pub use spec::{
    Architecture, ConvGeometry, InputSpec, LayerOp, LayerPlan, LayerSpec, Normalization, Shape,
};

/// Weights and biases of one conv or dense layer, in PyTorch's layout
/// (`[out, in, k, k]` and `[out, in]`). A layer saved without bias has zeros here.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// One layer with resolved shapes and, for conv and dense layers, its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub plan: LayerPlan,
    pub params: Option<LayerParams>,
}

/// A conv block is a conv layer together with the ReLU that follows it. Grad-CAM targets
/// the block's output: the ReLU's output, or the conv's own if no ReLU follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvBlock {
    /// Index of the conv layer in [`Model::layers`].
    pub conv_layer: usize,
    /// Index of the layer whose output Grad-CAM reads (the ReLU, or the conv itself).
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
            .filter_map(|plan| plan.op.parameter_lens())
            .map(|(w, b)| LayerParams {
                weight: (0..w).map(|_| fill()).collect(),
                bias: (0..b).map(|_| fill()).collect(),
            })
            .collect();
        Model::from_parts(architecture, params)
    }

    /// Builds a model from an architecture and one [`LayerParams`] per conv/dense layer, in
    /// layer order. Used by the loader and by the trainer, so both validate the same way.
    pub fn from_parts(
        architecture: Architecture,
        mut params: Vec<LayerParams>,
    ) -> Result<Model, ModelError> {
        let plans = architecture.plan()?;
        let expected: usize = plans
            .iter()
            .filter(|p| matches!(p.op, LayerOp::Conv2d(_) | LayerOp::Dense { .. }))
            .count();
        if params.len() != expected {
            return Err(ModelError::Inconsistent(format!(
                "{} parameter sets for {expected} conv/dense layers",
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
                    for (what, values) in [("weight", &p.weight), ("bias", &p.bias)] {
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
            .map(|p| p.weight.len() + p.bias.len())
            .sum()
    }

    /// Every conv block, first to last. Grad-CAM's default target is the last one.
    pub fn conv_blocks(&self) -> Vec<ConvBlock> {
        let mut blocks = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if let LayerOp::Conv2d(_) = layer.plan.op {
                let output_layer = match self.layers.get(i + 1) {
                    Some(next) if next.plan.op == LayerOp::Relu => i + 1,
                    _ => i,
                };
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

    /// Maps raw pixels (0..1) to what the first layer expects.
    pub fn normalize(&self, pixels: &[f32]) -> Vec<f32> {
        let Normalization { mean, std } = self.architecture.normalization;
        pixels.iter().map(|&p| (p - mean) / std).collect()
    }
}
