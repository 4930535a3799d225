//! cnnviz's sequential model file rebuilt in burn: the architecture JSON from the safetensors
//! `__metadata__["architecture"]`, PyTorch weight layouts (conv `[out, in, kh, kw]`, dense
//! `[out, in]`, flatten order C, H, W), and Grad-CAM exactly as DESIGN.md defines it.

use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::{conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

/// Added to the range before dividing, as DESIGN.md and pytorch-grad-cam do.
const NORMALISE_EPSILON: f32 = 1e-7;

enum Layer {
    Conv {
        weight: Tensor<4>,
        bias: Tensor<1>,
        stride: usize,
        padding: usize,
    },
    Relu,
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    Flatten,
    Dense {
        /// `[in, out]`: the file's `[out, in]` transposed once at load.
        weight_t: Tensor<2>,
        bias: Tensor<2>,
    },
}

/// What flows between layers: feature maps before the flatten, vectors after it.
enum Activation {
    Maps(Tensor<4>),
    Vectors(Tensor<2>),
}

pub struct Network {
    layers: Vec<Layer>,
    /// Layers `..=cam_layer` produce the Grad-CAM target: the last conv block's ReLU output
    /// (or the last conv itself when no ReLU follows it).
    cam_layer: usize,
    /// (channels, height, width) of one input image.
    pub input: [usize; 3],
    pub classes: usize,
    mean: f32,
    std: f32,
}

/// The tensors of one Grad-CAM pass (batch 1), still on the device.
pub struct GradCam {
    pub logits: Tensor<2>,
    pub probabilities: Tensor<2>,
    /// max(0, Σ_k α_k A_k) at the target layer's resolution, before any normalisation.
    pub raw: Tensor<4>,
    /// The raw map min-max normalised, bilinearly resized to the input size (half-pixel
    /// centres), normalised again.
    pub heatmap: Tensor<4>,
}

impl Network {
    /// Loads and checks a cnnviz model file; every shape is checked here so the forward
    /// pass cannot meet an inconsistent layer.
    pub fn load(path: &std::path::Path, device: &Device) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bad = |what: String| format!("{}: {what}", path.display());
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("architecture"))
            .ok_or_else(|| bad("no __metadata__[\"architecture\"]".into()))?;
        let arch: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if arch["format"] != "cnnviz.sequential" {
            return Err(bad(format!(
                "architecture format {} is not cnnviz.sequential",
                arch["format"]
            )));
        }
        let int = |v: &Value, key: &str| -> Result<usize, String> {
            v[key]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| bad(format!("`{key}` missing or not a whole number in {v}")))
        };
        let float = |v: &Value, key: &str| -> Result<f32, String> {
            v[key]
                .as_f64()
                .map(|n| n as f32)
                .ok_or_else(|| bad(format!("`{key}` missing or not a number")))
        };
        let tensor = |name: &Value, shape: &[usize]| -> Result<Vec<f32>, String> {
            let name = name
                .as_str()
                .ok_or_else(|| bad(format!("tensor name {name} is not a string")))?;
            let view = tensors
                .tensor(name)
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                    view.dtype(),
                    view.shape()
                )));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let upload = |values: Vec<f32>, shape: &[usize]| TensorData::new(values, shape.to_vec());

        let input = &arch["input"];
        let input = [
            int(input, "channels")?,
            int(input, "height")?,
            int(input, "width")?,
        ];
        let classes = arch["classes"].as_array().map_or(0, Vec::len);
        let norm = &arch["normalization"];
        let (mean, std) = (float(norm, "mean")?, float(norm, "std")?);
        let specs = arch["layers"]
            .as_array()
            .ok_or_else(|| bad("no `layers` list".into()))?;

        // Walk the shapes as cnnviz's spec does: Some((c, h, w)) before the flatten, then
        // the vector length.
        let mut maps = Some(input);
        let mut features = 0usize;
        let mut layers = Vec::with_capacity(specs.len());
        for spec in specs {
            let kind = spec["type"].as_str().unwrap_or("");
            let layer = match (kind, maps) {
                ("conv2d", Some([c, h, w])) => {
                    let (cin, cout, k) = (
                        int(spec, "in_channels")?,
                        int(spec, "out_channels")?,
                        int(spec, "kernel_size")?,
                    );
                    let (stride, padding) = (int(spec, "stride")?, int(spec, "padding")?);
                    if cin != c
                        || k == 0
                        || stride == 0
                        || h + 2 * padding < k
                        || w + 2 * padding < k
                    {
                        return Err(bad(format!(
                            "conv2d {spec} does not fit its input {c}×{h}×{w}"
                        )));
                    }
                    let wshape = [cout, cin, k, k];
                    let weight = Tensor::from_data(
                        upload(tensor(&spec["weight"], &wshape)?, &wshape),
                        device,
                    );
                    let bias = match &spec["bias"] {
                        Value::Null => vec![0.0; cout],
                        name => tensor(name, &[cout])?,
                    };
                    maps = Some([
                        cout,
                        (h + 2 * padding - k) / stride + 1,
                        (w + 2 * padding - k) / stride + 1,
                    ]);
                    Layer::Conv {
                        weight,
                        bias: Tensor::from_data(upload(bias, &[cout]), device),
                        stride,
                        padding,
                    }
                }
                ("maxpool2d", Some([c, h, w])) => {
                    let (kernel, stride) = (int(spec, "kernel_size")?, int(spec, "stride")?);
                    if kernel == 0 || stride == 0 || h < kernel || w < kernel {
                        return Err(bad(format!(
                            "maxpool2d {spec} does not fit its input {c}×{h}×{w}"
                        )));
                    }
                    maps = Some([c, (h - kernel) / stride + 1, (w - kernel) / stride + 1]);
                    Layer::MaxPool { kernel, stride }
                }
                ("flatten", Some([c, h, w])) => {
                    maps = None;
                    features = c * h * w;
                    Layer::Flatten
                }
                ("dense", None) => {
                    let (fin, fout) = (int(spec, "in_features")?, int(spec, "out_features")?);
                    if fin != features {
                        return Err(bad(format!(
                            "dense {spec} takes {fin} features, gets {features}"
                        )));
                    }
                    let weight: Tensor<2> = Tensor::from_data(
                        upload(tensor(&spec["weight"], &[fout, fin])?, &[fout, fin]),
                        device,
                    );
                    let bias = match &spec["bias"] {
                        Value::Null => vec![0.0; fout],
                        name => tensor(name, &[fout])?,
                    };
                    features = fout;
                    Layer::Dense {
                        weight_t: weight.transpose(),
                        bias: Tensor::from_data(upload(bias, &[1, fout]), device),
                    }
                }
                ("relu", _) => Layer::Relu,
                _ => {
                    return Err(bad(format!(
                        "layer {spec} is not supported here (or not where it is)"
                    )));
                }
            };
            layers.push(layer);
        }
        if maps.is_some() || features != classes || classes == 0 {
            return Err(bad(format!(
                "the network ends with {features} outputs for {classes} classes"
            )));
        }
        let last_conv = layers
            .iter()
            .rposition(|l| matches!(l, Layer::Conv { .. }))
            .ok_or_else(|| bad("no conv2d layer to explain".into()))?;
        let cam_layer = match layers.get(last_conv + 1) {
            Some(Layer::Relu) => last_conv + 1,
            _ => last_conv,
        };
        Ok(Self {
            layers,
            cam_layer,
            input,
            classes,
            mean,
            std,
        })
    }

    /// A batch of 0..1 images as the network's normalised input tensor.
    pub fn input_tensor(&self, pixels: &[f32], device: &Device) -> Tensor<4> {
        let [c, h, w] = self.input;
        let batch = pixels.len() / (c * h * w);
        let normalised: Vec<f32> = pixels.iter().map(|p| (p - self.mean) / self.std).collect();
        Tensor::from_data(TensorData::new(normalised, vec![batch, c, h, w]), device)
    }

    /// Logits of a batch (no autodiff).
    pub fn logits(&self, x: Tensor<4>) -> Result<Tensor<2>, String> {
        vectors(run(&self.layers, Activation::Maps(x))?)
    }

    /// Class probabilities of a batch.
    pub fn probabilities(&self, x: Tensor<4>) -> Result<Tensor<2>, String> {
        Ok(softmax(self.logits(x)?, 1))
    }

    /// Forward + Grad-CAM of one image (batch 1) for its predicted class. The forward to the
    /// target layer runs without autodiff; the target activation A becomes the autodiff leaf,
    /// so backward of the predicted logit (max over classes, whose gradient routes to the
    /// argmax) yields G = d logit_c / d A with no host round trip for the class.
    pub fn grad_cam(&self, x: Tensor<4>) -> Result<GradCam, String> {
        let (body, head) = self.layers.split_at(self.cam_layer + 1);
        let a = maps(run(body, Activation::Maps(x))?)?;
        let leaf = a.clone().autodiff().require_grad();
        let logits = vectors(run(head, Activation::Maps(leaf.clone()))?)?;
        let grads = logits.clone().max_dim(1).backward();
        let g = leaf
            .grad(&grads)
            .ok_or("the backward pass left no gradient at the Grad-CAM layer")?;
        let logits = logits.inner();
        let alpha = g.mean_dim(3).mean_dim(2); // [1, K, 1, 1]
        let raw = relu((a * alpha).sum_dim(1)); // [1, 1, h, w]
        let [_, h, w] = self.input;
        let upsampled = interpolate(
            min_max(raw.clone()),
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([h, w]),
        );
        Ok(GradCam {
            probabilities: softmax(logits.clone(), 1),
            logits,
            raw,
            heatmap: min_max(upsampled),
        })
    }
}

/// (x − min) / (max − min + ε) over the whole tensor.
fn min_max(x: Tensor<4>) -> Tensor<4> {
    let min = x.clone().min().reshape([1, 1, 1, 1]);
    let max = x.clone().max().reshape([1, 1, 1, 1]);
    (x - min.clone()) / (max - min).add_scalar(NORMALISE_EPSILON)
}

fn run(layers: &[Layer], mut x: Activation) -> Result<Activation, String> {
    for layer in layers {
        x = match (layer, x) {
            (
                Layer::Conv {
                    weight,
                    bias,
                    stride,
                    padding,
                },
                Activation::Maps(t),
            ) => Activation::Maps(conv2d(
                t,
                weight.clone(),
                Some(bias.clone()),
                ConvOptions::new([*stride; 2], [*padding; 2], [1, 1], 1),
            )),
            (Layer::Relu, Activation::Maps(t)) => Activation::Maps(relu(t)),
            (Layer::Relu, Activation::Vectors(t)) => Activation::Vectors(relu(t)),
            (Layer::MaxPool { kernel, stride }, Activation::Maps(t)) => {
                Activation::Maps(max_pool2d(
                    t,
                    MaxPoolOptions::new([*kernel; 2]).with_stride([*stride; 2]),
                ))
            }
            (Layer::Flatten, Activation::Maps(t)) => Activation::Vectors(t.flatten(1, 3)),
            (Layer::Dense { weight_t, bias }, Activation::Vectors(t)) => {
                Activation::Vectors(t.matmul(weight_t.clone()) + bias.clone())
            }
            _ => return Err("a layer met an activation of the wrong rank".into()),
        };
    }
    Ok(x)
}

fn maps(x: Activation) -> Result<Tensor<4>, String> {
    match x {
        Activation::Maps(t) => Ok(t),
        Activation::Vectors(_) => Err("expected feature maps".into()),
    }
}

fn vectors(x: Activation) -> Result<Tensor<2>, String> {
    match x {
        Activation::Vectors(t) => Ok(t),
        Activation::Maps(_) => {
            Err("expected vectors (the network does not end in a dense layer)".into())
        }
    }
}
