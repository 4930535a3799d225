//! FLOP and byte counts of each kernel launch, from the layer shapes alone, so achieved
//! GFLOP/s and GB/s can be set beside the device's peak.
//!
//! A launch is recognised by its timing label, `layer kernel` (see
//! [`crate::gpu::KernelTiming`]): the layer (or conv block) name picks the shapes, the
//! family prefix of the kernel name (`conv2d.`, `dense.`, `relu.`, `maxpool2d.`,
//! `softmax`, `grad_cam.`, `normalise`, `value_range`) picks the formula, and `backward`
//! in the name picks the direction. Variants of a kernel (`conv2d.forward_tiled`, …) are
//! costed like the kernel they replace, fused ReLUs (`…_relu_…`) add their memory traffic;
//! a name this table does not know has no cost (reported as `null`), never a wrong one.
//!
//! FLOPs count multiplies and adds of the mathematical operation (a multiply-add is 2),
//! comparisons and exponentials as 1; not index arithmetic. Bytes are the compulsory
//! traffic: every input read once, every output written once, weights once per launch
//! (not per image), 4 bytes per float.

use serde::Serialize;

use crate::model::{ConvBlock, LayerOp, Model, Shape};

const F32: u64 = 4;

/// Work of one launch for a whole batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub flops: u64,
    pub bytes: u64,
}

impl Cost {
    /// `per_image` for each of `batch` images plus `shared` bytes (weights) once.
    fn batched(batch: u64, flops: u64, bytes: u64, shared_bytes: u64) -> Cost {
        Cost {
            flops: batch * flops,
            bytes: batch * bytes + shared_bytes,
        }
    }
}

/// Conv forward FLOPs per image: 2 · Cin · k² · Hout · Wout · Cout.
pub fn conv_flops(in_channels: usize, kernel: usize, output: Shape) -> u64 {
    2 * (in_channels * kernel * kernel * output.len()) as u64
}

/// Dense FLOPs per image: 2 · in · out.
pub fn dense_flops(in_features: usize, out_features: usize) -> u64 {
    2 * (in_features * out_features) as u64
}

/// The shapes the formulas read, taken from a model once.
pub struct CostModel<'a> {
    model: &'a Model,
    blocks: Vec<ConvBlock>,
    /// Floats of every activation of one image (what the value-range kernel reads).
    activation_floats: u64,
    activations: u64,
}

impl<'a> CostModel<'a> {
    pub fn new(model: &'a Model) -> Self {
        let shapes = model.activation_shapes();
        CostModel {
            model,
            blocks: model.conv_blocks(),
            activation_floats: shapes.iter().map(|s| s.len() as u64).sum(),
            activations: shapes.len() as u64,
        }
    }

    /// The cost of the launch labelled `label` (`layer kernel`) for `batch` images.
    /// `previous` is the kernel recorded just before it, which tells the two normalise
    /// launches of a Grad-CAM apart (the one after `grad_cam.upsample` works on the
    /// input-sized heatmap, the other on the block's map).
    pub fn cost(&self, label: &str, previous: Option<&str>, batch: u32) -> Option<Cost> {
        let (owner, kernel) = label.split_once(' ')?;
        let family = kernel.split('.').next()?;
        let backward = kernel.contains("backward");
        let batch = u64::from(batch);
        match family {
            "conv2d" | "dense" => {
                let cost = self.layer_cost(owner, backward, batch)?;
                // A fused ReLU (`conv2d.forward_relu_tiled`, `dense.backward_input_relu`)
                // also writes the ReLU's output (forward) or reads the ReLU's input and
                // writes its gradient (backward). Its max() is not counted as a FLOP, so
                // the FLOPs stay those of the convolution or the matrix product.
                let layer = self.model.layers.iter().find(|l| l.plan.name == owner)?;
                let extra = match (kernel.contains("relu"), backward) {
                    (false, _) => 0,
                    (true, false) => F32 * layer.plan.output.len() as u64,
                    (true, true) => F32 * 2 * layer.plan.input.len() as u64,
                };
                Some(Cost {
                    flops: cost.flops,
                    bytes: cost.bytes + batch * extra,
                })
            }
            "relu" | "maxpool2d" | "pointwise" | "avgpool2d" => {
                self.layer_cost(owner, backward, batch)
            }
            "softmax" => {
                let c = self.model.num_classes() as u64;
                // max, subtract, exp, sum, divide; reads the logits, writes probabilities,
                // the gradient seed, the predicted and the target class.
                Some(Cost::batched(batch, 5 * c, F32 * (3 * c + 2), 0))
            }
            "grad_cam" => {
                let block = self.blocks.iter().find(|b| b.name == owner)?;
                let (k, plane) = (block.channels as u64, (block.height * block.width) as u64);
                let heat = self.heat();
                let (flops, bytes) = match kernel {
                    // α_k = mean of G_k over the plane.
                    k_name if k_name.contains("channel_weights") => {
                        (k * plane, F32 * (k * plane + k))
                    }
                    // Σ_k α_k A_k, then max(0, ·).
                    k_name if k_name.contains("weighted_map") => {
                        (2 * k * plane + plane, F32 * (k * plane + k + plane))
                    }
                    // Bilinear: two coordinates and three lerps per output pixel.
                    k_name if k_name.contains("upsample") => (10 * heat, F32 * (plane + heat)),
                    _ => return None,
                };
                Some(Cost::batched(batch, flops, bytes, 0))
            }
            "normalise" => {
                let block = self.blocks.iter().find(|b| b.name == owner)?;
                let after_upsample = previous.is_some_and(|p| p.contains("upsample"));
                let n = if after_upsample {
                    self.heat()
                } else {
                    (block.height * block.width) as u64
                };
                // min, max, then (x − min) / (max − min + ε): 3 per element.
                Some(Cost::batched(batch, 3 * n, F32 * 2 * n, 0))
            }
            "value_range" => Some(Cost::batched(
                batch,
                2 * self.activation_floats,
                F32 * (self.activation_floats + 2 * self.activations),
                0,
            )),
            _ => None,
        }
    }

    fn heat(&self) -> u64 {
        let input = self.model.architecture.input;
        (input.height * input.width) as u64
    }

    fn layer_cost(&self, name: &str, backward: bool, batch: u64) -> Option<Cost> {
        let layer = self.model.layers.iter().find(|l| l.plan.name == name)?;
        let (input, output) = (
            layer.plan.input.len() as u64,
            layer.plan.output.len() as u64,
        );
        let weights = layer
            .params
            .as_ref()
            .map(|p| (p.weight.len() + p.bias.len()) as u64)
            .unwrap_or(0);
        let cost = match (layer.plan.op, backward) {
            // Forward reads x and writes y; backward reads dy and writes dx.
            (LayerOp::Conv2d(g), _) => Cost::batched(
                batch,
                conv_flops(g.in_channels, g.kernel, layer.plan.output),
                F32 * (input + output),
                F32 * weights,
            ),
            (
                LayerOp::Dense {
                    in_features,
                    out_features,
                },
                _,
            ) => Cost::batched(
                batch,
                dense_flops(in_features, out_features),
                F32 * (input + output),
                F32 * weights,
            ),
            (LayerOp::Relu, false) => Cost::batched(batch, output, F32 * (input + output), 0),
            // Reads x and dy, writes dx.
            (LayerOp::Relu, true) => Cost::batched(batch, output, F32 * (2 * input + output), 0),
            (LayerOp::MaxPool2d { kernel, .. }, false) => Cost::batched(
                batch,
                (kernel * kernel) as u64 * output,
                F32 * (input + output),
                0,
            ),
            // Reads x (to find each window's max) and dy, writes dx.
            (LayerOp::MaxPool2d { kernel, .. }, true) => Cost::batched(
                batch,
                (kernel * kernel) as u64 * output,
                F32 * (2 * input + output),
                0,
            ),
            // Element-wise maps: one operation per element (a few for sigmoid, tanh).
            (op, false) if op.is_pointwise() => {
                Cost::batched(batch, output, F32 * (input + output), F32 * weights)
            }
            // Reads x and dy, writes dx.
            (op, true) if op.is_pointwise() => {
                Cost::batched(batch, output, F32 * (2 * input + output), F32 * weights)
            }
            (LayerOp::AvgPool2d(g), _) => Cost::batched(
                batch,
                (g.kernel * g.kernel) as u64 * output,
                F32 * (input + output),
                0,
            ),
            (LayerOp::GlobalAvgPool, _) => Cost::batched(batch, input, F32 * (input + output), 0),
            (LayerOp::Flatten, _) => return None,
            (_, _) => return None,
        };
        Some(cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::model::train::default_architecture;

    fn zero_model() -> Model {
        Model::filled(default_architecture(), || 0.0).expect("zero parameters fit")
    }

    #[test]
    fn formulas_follow_the_layer_shapes() {
        let model = zero_model();
        let costs = CostModel::new(&model);
        // conv2: 16 → 32 channels, 3×3, 14×14 output.
        let conv2 = costs.cost("conv2 conv2d.forward", None, 2).expect("cost");
        assert_eq!(conv2.flops, 2 * 2 * 16 * 9 * 14 * 14 * 32);
        let tiled = costs
            .cost("conv2 conv2d.forward_tiled", None, 2)
            .expect("cost");
        assert_eq!(tiled, conv2);
        let back = costs
            .cost("conv2 conv2d.backward_input", None, 1)
            .expect("cost");
        assert_eq!(back.flops, 2 * 16 * 9 * 14 * 14 * 32);
        let fc1 = costs.cost("fc1 dense.forward", None, 64).expect("cost");
        assert_eq!(fc1.flops, 64 * 2 * 1568 * 64);
        assert_eq!(fc1.bytes, 4 * (64 * (1568 + 64) + 1568 * 64 + 64));
        // The two normalise launches of a Grad-CAM differ in size.
        let low = costs.cost("conv2 normalise.main", Some("grad_cam.weighted_map"), 1);
        let high = costs.cost("conv2 normalise.main", Some("grad_cam.upsample"), 1);
        assert_eq!(low.map(|c| c.flops), Some(3 * 14 * 14));
        assert_eq!(high.map(|c| c.flops), Some(3 * 28 * 28));
        assert_eq!(costs.cost("conv2 winograd.forward", None, 1), None);
        assert_eq!(costs.cost("nosuchlayer conv2d.forward", None, 1), None);
        assert_eq!(costs.cost("no-space", None, 1), None);
    }

    #[test]
    fn the_new_layer_kernels_are_costed_by_their_layer() {
        use crate::model::builders::{avgpool, batch_norm, conv, global_avg_pool, relu};
        use crate::model::spec::LayerSpec;
        let mut architecture = default_architecture();
        architecture.layers = vec![
            conv("conv1", 1, 4, 3, 1, 1),
            batch_norm("bn1", 4),
            relu("relu1"),
            avgpool("avg1", 2, 2, 0),
            global_avg_pool("gap"),
            LayerSpec::Flatten {
                name: "flatten".into(),
            },
        ];
        architecture.classes.truncate(4);
        let model = Model::filled(architecture, || 0.5).expect("model");
        let costs = CostModel::new(&model);
        // 4 × 28 × 28 elements; γ and β are read too.
        let bn = costs.cost("bn1 pointwise.forward", None, 1).expect("cost");
        assert_eq!(bn.flops, 4 * 28 * 28);
        assert_eq!(bn.bytes, 4 * (2 * 4 * 28 * 28 + 8));
        let avg = costs
            .cost("avg1 avgpool2d.backward", None, 1)
            .expect("cost");
        assert_eq!(avg.flops, 4 * 4 * 14 * 14);
        let gap = costs.cost("gap avgpool2d.forward", None, 1).expect("cost");
        assert_eq!(gap.flops, 4 * 14 * 14);
    }
}
