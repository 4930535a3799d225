//! Importing ONNX files (as `torch.onnx.export` or tf2onnx write them) into the same
//! validated [`Model`] the safetensors loader builds.
//!
//! - [`proto`]: the ONNX protobuf messages, decoded by `prost`;
//! - [`tensor`]: constant tensors (F32, F16, F64, INT32, INT64), size-checked;
//! - [`fold`]: the constant plumbing around a flatten;
//! - [`chain`]: the graph walk from the image input to the output, chains only;
//! - [`ops`]: each layer node to a cnnviz layer.
//!
//! The imported model goes through [`Model::from_parts`], so every check of a model file
//! (names, shapes, finite values, size caps) applies to ONNX files too.

mod chain;
mod fold;
mod node;
mod ops;
mod proto;
mod tensor;
#[cfg(test)]
mod tests;

use std::path::Path;

use prost::Message;

use super::spec::{ARCHITECTURE_FORMAT, ARCHITECTURE_VERSION};
use super::{Architecture, LayerOp, LayerSpec, Model, ModelError, Normalization};

/// The oldest default-domain opset the importer reads (what `torch.onnx.export` can still
/// write; the operators it uses have kept their meaning since).
pub const MIN_OPSET: i64 = 7;

/// ONNX files carry no preprocessing, so an imported model gets MNIST's normalisation
/// (`transforms.Normalize((0.1307,), (0.3081,))`, as in PyTorch's MNIST example and the
/// committed model): the digit models cnnviz is for were trained with it. `cnnviz convert
/// --mean --std` overrides it.
pub const DEFAULT_NORMALIZATION: Normalization = Normalization::uniform(0.1307, 0.3081);

/// What the ONNX file does not say and the model needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportOptions {
    /// The model's display name.
    pub name: String,
    pub normalization: Normalization,
}

impl ImportOptions {
    /// Named after the file (`net.onnx` → `net`), with the default normalisation.
    pub fn for_path(path: &Path) -> ImportOptions {
        ImportOptions {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "onnx".to_string()),
            normalization: DEFAULT_NORMALIZATION,
        }
    }
}

/// Whether `path`/`bytes` are an ONNX file rather than safetensors: the `.onnx` extension,
/// or content that cannot be safetensors (whose 8-byte header length is followed by `{`)
/// but starts like an ONNX model (field 1, `ir_version`, as a varint: byte 0x08).
pub fn looks_like_onnx(path: &Path, bytes: &[u8]) -> bool {
    let by_extension = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    let safetensors_like = bytes.get(8) == Some(&b'{');
    by_extension || (!safetensors_like && bytes.first() == Some(&0x08))
}

/// Parses an ONNX file and converts it to a validated model.
pub fn load_onnx_bytes(bytes: &[u8], options: &ImportOptions) -> Result<Model, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::Onnx(
            "not a valid ONNX file: the file is empty".to_string(),
        ));
    }
    let model = proto::ModelProto::decode(bytes).map_err(|e| {
        ModelError::Onnx(format!(
            "not a valid ONNX file: {}",
            e.to_string().replace('\n', " ")
        ))
    })?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version);
    match opset {
        Some(v) if v >= MIN_OPSET => {}
        Some(v) => {
            return Err(ModelError::Onnx(format!(
                "opset {v} is older than {MIN_OPSET}, the oldest cnnviz reads; export again with opset_version 11 or newer"
            )));
        }
        None => {
            return Err(ModelError::Onnx(
                "not a valid ONNX file: it imports no default-domain opset".to_string(),
            ));
        }
    }
    let Some(graph) = model.graph.as_ref() else {
        return Err(ModelError::Onnx(
            "not a valid ONNX file: it has no graph".to_string(),
        ));
    };
    let chain = chain::walk(graph)?;
    let Some(classes) = chain.layers.iter().rev().find_map(|l| match l.op {
        LayerOp::Dense { out_features, .. } => Some(out_features),
        _ => None,
    }) else {
        return Err(ModelError::Onnx(
            "the graph has no Gemm or MatMul layer to produce class scores".to_string(),
        ));
    };
    if classes > super::spec::limits::MAX_CLASSES {
        return Err(ModelError::TooLarge(format!(
            "the last dense layer has {classes} outputs; at most {} classes are supported",
            super::spec::limits::MAX_CLASSES
        )));
    }
    let specs = layer_specs(&chain.layers);
    let architecture = Architecture {
        format: ARCHITECTURE_FORMAT.to_string(),
        version: ARCHITECTURE_VERSION,
        name: options.name.clone(),
        input: chain.input,
        classes: (0..classes).map(|c| c.to_string()).collect(),
        normalization: options.normalization.clone(),
        preprocessing: None,
        layers: specs,
    };
    // Shapes first, so a mismatch is reported as the architecture's own message.
    architecture.plan()?;
    let params = chain.layers.into_iter().filter_map(|l| l.params).collect();
    Model::from_parts(architecture, params)
}

/// Layer names from the file's module paths where there are any (`conv1.weight` →
/// `conv1`), else numbered by kind (`relu2`); tensor names follow PyTorch (`conv1.weight`).
fn layer_specs(layers: &[ops::ChainLayer]) -> Vec<LayerSpec> {
    let mut used = std::collections::HashSet::new();
    let mut counts = std::collections::HashMap::new();
    let mut specs = Vec::with_capacity(layers.len());
    for layer in layers {
        let kind = match layer.op {
            LayerOp::Conv2d(_) => "conv",
            LayerOp::Relu => "relu",
            LayerOp::LeakyRelu { .. } => "leaky_relu",
            LayerOp::Sigmoid => "sigmoid",
            LayerOp::Tanh => "tanh",
            LayerOp::Dropout => "dropout",
            LayerOp::BatchNorm { .. } => "bn",
            LayerOp::MaxPool2d { .. } => "pool",
            LayerOp::AvgPool2d(_) => "avgpool",
            LayerOp::GlobalAvgPool => "gap",
            LayerOp::Flatten => "flatten",
            LayerOp::Dense { .. } => "fc",
        };
        let count = counts.entry(kind).or_insert(0usize);
        *count += 1;
        let mut name = layer
            .hint
            .clone()
            .filter(|h| !used.contains(h))
            .unwrap_or_else(|| format!("{kind}{count}"));
        while used.contains(&name) {
            name.push('_');
        }
        used.insert(name.clone());
        let weight = format!("{name}.weight");
        let bias = layer.has_bias.then(|| format!("{name}.bias"));
        specs.push(match layer.op {
            LayerOp::Conv2d(g) => LayerSpec::Conv2d {
                name,
                in_channels: g.in_channels,
                out_channels: g.out_channels,
                kernel_size: g.kernel,
                stride: g.stride,
                padding: g.padding,
                padding_end: (g.padding_end != g.padding).then_some(g.padding_end),
                weight,
                bias,
            },
            LayerOp::Relu => LayerSpec::Relu { name },
            LayerOp::LeakyRelu { negative_slope } => LayerSpec::LeakyRelu {
                name,
                negative_slope,
            },
            LayerOp::Sigmoid => LayerSpec::Sigmoid { name },
            LayerOp::Tanh => LayerSpec::Tanh { name },
            LayerOp::Dropout => LayerSpec::Dropout {
                name,
                p: layer.dropout_p.unwrap_or(0.0),
            },
            LayerOp::BatchNorm { channels, eps } => LayerSpec::BatchNorm {
                num_features: channels,
                eps,
                weight,
                bias: format!("{name}.bias"),
                running_mean: format!("{name}.running_mean"),
                running_var: format!("{name}.running_var"),
                name,
            },
            LayerOp::AvgPool2d(g) => LayerSpec::AvgPool2d {
                name,
                kernel_size: g.kernel,
                stride: g.stride,
                padding: g.padding,
                count_include_pad: g.count_include_pad,
            },
            LayerOp::GlobalAvgPool => LayerSpec::GlobalAvgPool { name },
            LayerOp::MaxPool2d { kernel, stride } => LayerSpec::MaxPool2d {
                name,
                kernel_size: kernel,
                stride,
            },
            LayerOp::Flatten => LayerSpec::Flatten { name },
            LayerOp::Dense {
                in_features,
                out_features,
            } => LayerSpec::Dense {
                name,
                in_features,
                out_features,
                weight,
                bias,
            },
        });
    }
    specs
}
