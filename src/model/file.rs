//! Reading and writing `.safetensors` model files.
//!
//! Tensor names and layouts are PyTorch's `state_dict` ones, so a file written by
//! `safetensors.torch.save_file(model.state_dict(), path, metadata={"architecture": json})`
//! loads as it is. The architecture travels as a JSON string under [`METADATA_KEY`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::{Architecture, LayerOp, LayerParams, Model, ModelError, RunningStats, spec::LayerSpec};

/// The `__metadata__` key holding the architecture JSON.
pub const METADATA_KEY: &str = "architecture";
/// Larger files are refused before being read (the committed model is well under 1 MB).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// Loads a model file: safetensors, or ONNX (by extension or content), converted.
pub fn load_model(path: &Path) -> Result<Model, ModelError> {
    ModelSource::file(path).load()
}

/// Where a model comes from: a file, and for a safetensors file without cnnviz metadata
/// (a bare PyTorch `state_dict`) the architecture given beside it (`--arch`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSource {
    pub path: PathBuf,
    /// `--arch`: the short architecture text of [`super::arch_text`], or the path of a
    /// JSON architecture file (the metadata's format, with the file's tensor names).
    pub arch: Option<String>,
}

impl ModelSource {
    pub fn file(path: &Path) -> ModelSource {
        ModelSource {
            path: path.to_path_buf(),
            arch: None,
        }
    }

    /// The one loader of every command: ONNX files are converted, safetensors files read
    /// with their metadata or with the given architecture.
    pub fn load(&self) -> Result<Model, ModelError> {
        let path = self.path.as_path();
        let bytes = read_model_file(path)?;
        if super::onnx::looks_like_onnx(path, &bytes) {
            if self.arch.is_some() {
                return Err(ModelError::ArchText(format!(
                    "{} is an ONNX file, which carries its own architecture; --arch is for safetensors state_dicts",
                    path.display()
                )));
            }
            return super::onnx::load_onnx_bytes(
                &bytes,
                &super::onnx::ImportOptions::for_path(path),
            );
        }
        match &self.arch {
            None => load_model_bytes(&bytes),
            Some(arch) => {
                let tensors = SafeTensors::deserialize(&bytes)
                    .map_err(|e| ModelError::Format(e.to_string()))?;
                let architecture = self.given_architecture(arch, &tensor_shapes(&tensors))?;
                model_from_tensors(architecture, &tensors, |name| {
                    name.ends_with(".num_batches_tracked")
                })
            }
        }
    }

    fn given_architecture(
        &self,
        arch: &str,
        tensors: &[(String, Vec<usize>)],
    ) -> Result<Architecture, ModelError> {
        let as_file = Path::new(arch);
        if as_file.is_file() {
            let text = std::fs::read_to_string(as_file).map_err(|source| ModelError::Io {
                path: as_file.to_path_buf(),
                source,
            })?;
            return serde_json::from_str(&text).map_err(|e| {
                ModelError::ArchText(format!(
                    "{}: not a JSON architecture: {e}",
                    as_file.display()
                ))
            });
        }
        let name = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_string());
        super::arch_text::ArchText::parse(arch, &name)?.bind(tensors)
    }
}

/// Every tensor's name and shape, sorted by name.
pub fn tensor_shapes(tensors: &SafeTensors) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect();
    out.sort();
    out
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
    model_from_tensors(architecture, &tensors, |_| false)
}

/// The model of `architecture` with its tensors read from `tensors`, every name, shape,
/// dtype and value checked; a tensor no layer reads is refused unless `ignored`.
fn model_from_tensors(
    architecture: Architecture,
    tensors: &SafeTensors,
    ignored: impl Fn(&str) -> bool,
) -> Result<Model, ModelError> {
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
        .filter(|n| !used.contains(n) && !ignored(n))
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
