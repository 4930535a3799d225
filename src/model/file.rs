//! Reading and writing `.safetensors` model files.
//!
//! Tensor names and layouts are PyTorch's `state_dict` ones, so a file written by
//! `safetensors.torch.save_file(model.state_dict(), path, metadata={"architecture": json})`
//! loads as it is. The architecture travels as a JSON string under [`METADATA_KEY`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::{Architecture, LayerOp, LayerParams, Model, ModelError, RunningStats, spec::LayerSpec};

/// The `__metadata__` key holding the architecture JSON.
pub const METADATA_KEY: &str = "architecture";
/// Larger files are refused before being read (the committed model is well under 1 MB).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// Loads a model file: safetensors, or ONNX (by extension or content), converted.
pub fn load_model(path: &Path) -> Result<Model, ModelError> {
    let bytes = read_model_file(path)?;
    // One loader for every command: ONNX files are converted here.
    if super::onnx::looks_like_onnx(path, &bytes) {
        return super::onnx::load_onnx_bytes(&bytes, &super::onnx::ImportOptions::for_path(path));
    }
    load_model_bytes(&bytes)
}

/// The bytes of a model file, refused before reading when larger than [`MAX_FILE_BYTES`].
pub fn read_model_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ModelError::FileTooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(io)
}

/// Parses and validates a model from the bytes of a safetensors file.
pub fn load_model_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format(e.to_string()))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| ModelError::Format(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or(ModelError::MissingMetadata { key: METADATA_KEY })?;
    let architecture: Architecture =
        serde_json::from_str(json).map_err(|e| ModelError::BadMetadata(e.to_string()))?;
    // Shapes first: a tensor check against an inconsistent architecture would mislead.
    architecture.plan()?;

    let expected = architecture.expected_tensors();
    let mut used = HashSet::new();
    for (name, shape) in &expected {
        if !used.insert(name.as_str()) {
            return Err(ModelError::Inconsistent(format!(
                "tensor `{name}` is named by more than one layer"
            )));
        }
        let view = tensors
            .tensor(name)
            .map_err(|_| ModelError::MissingTensor(name.clone()))?;
        if view.dtype() != Dtype::F32 {
            return Err(ModelError::Dtype {
                name: name.clone(),
                found: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != shape.as_slice() {
            return Err(ModelError::TensorShape {
                name: name.clone(),
                found: view.shape().to_vec(),
                expected: shape.clone(),
            });
        }
    }
    let mut extra: Vec<&str> = tensors
        .names()
        .into_iter()
        .filter(|n| !used.contains(n))
        .collect();
    extra.sort_unstable();
    if let Some(name) = extra.first() {
        return Err(ModelError::ExtraTensor(name.to_string()));
    }

    let read = |name: &str| -> Result<Vec<f32>, ModelError> {
        let view = tensors
            .tensor(name)
            .map_err(|_| ModelError::MissingTensor(name.to_string()))?;
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                name: name.to_string(),
                index,
            });
        }
        Ok(values)
    };
    let mut params = Vec::new();
    for spec in &architecture.layers {
        let (weight, bias, out) = match spec {
            LayerSpec::Conv2d {
                weight,
                bias,
                out_channels,
                ..
            } => (weight, bias, *out_channels),
            LayerSpec::Dense {
                weight,
                bias,
                out_features,
                ..
            } => (weight, bias, *out_features),
            LayerSpec::BatchNorm {
                weight,
                bias,
                running_mean,
                running_var,
                ..
            } => {
                params.push(LayerParams::batch_norm(
                    read(weight)?,
                    read(bias)?,
                    RunningStats {
                        mean: read(running_mean)?,
                        var: read(running_var)?,
                    },
                ));
                continue;
            }
            _ => continue,
        };
        let bias = match bias {
            Some(b) => read(b)?,
            None => vec![0.0; out],
        };
        params.push(LayerParams::new(read(weight)?, bias));
    }
    Model::from_parts(architecture, params)
}

/// Serialises a model to safetensors bytes (F32, little-endian, PyTorch layouts).
pub fn save_model_bytes(model: &Model) -> Result<Vec<u8>, ModelError> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut layers = model.layers.iter().filter(|l| l.params.is_some());
    for spec in &model.architecture.layers {
        if !matches!(
            spec,
            LayerSpec::Conv2d { .. } | LayerSpec::Dense { .. } | LayerSpec::BatchNorm { .. }
        ) {
            continue;
        }
        let layer = layers
            .next()
            .expect("one parameter set per conv/dense/batch-norm layer");
        let params = layer.params.as_ref().expect("filtered above");
        let weight_shape = match layer.plan.op {
            LayerOp::Conv2d(g) => vec![g.out_channels, g.in_channels, g.kernel, g.kernel],
            LayerOp::Dense {
                in_features,
                out_features,
            } => vec![out_features, in_features],
            _ => vec![params.weight.len()],
        };
        let mut push = |name: &String, shape: Vec<usize>, values: &[f32]| {
            owned.push((name.clone(), shape, f32_bytes(values)));
        };
        match (spec, &params.running) {
            (
                LayerSpec::BatchNorm {
                    weight,
                    bias,
                    running_mean,
                    running_var,
                    ..
                },
                Some(running),
            ) => {
                for (name, values) in [
                    (weight, &params.weight),
                    (bias, &params.bias),
                    (running_mean, &running.mean),
                    (running_var, &running.var),
                ] {
                    push(name, vec![values.len()], values);
                }
            }
            (LayerSpec::Conv2d { weight, bias, .. } | LayerSpec::Dense { weight, bias, .. }, _) => {
                push(weight, weight_shape, &params.weight);
                if let Some(bias) = bias {
                    push(bias, vec![params.bias.len()], &params.bias);
                }
            }
            _ => unreachable!("a validated batch norm has running statistics"),
        }
    }
    let views = owned
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelError::Format(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let json = serde_json::to_string(&model.architecture)
        .map_err(|e| ModelError::BadMetadata(e.to_string()))?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| ModelError::Format(e.to_string()))
}

/// Writes the model atomically: a crash mid-write never leaves a half file at `path`.
pub fn save_model(model: &Model, path: &Path) -> Result<(), ModelError> {
    let bytes = save_model_bytes(model)?;
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("safetensors.partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
