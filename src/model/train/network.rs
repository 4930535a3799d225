//! The network as the trainer runs it: the layer plans turned into kernel calls over a
//! chunk of images, with every buffer held in a reusable [`Workspace`].

use super::TrainError;
use super::conv::{self, ConvBackwardBuffers, ConvDims, ConvForwardBuffers, ConvGrads};
use super::kernels::{self, DenseGrads, PoolDims};
use crate::model::{LayerOp, LayerParams, LayerPlan};

/// One layer with the sizes its kernels need.
#[derive(Clone, Debug)]
enum Step {
    Conv {
        dims: ConvDims,
        param: usize,
    },
    Relu,
    MaxPool(PoolDims),
    Flatten,
    Dense {
        input: usize,
        output: usize,
        param: usize,
    },
}

/// A planned network, independent of its weights: weights are passed to each call so the
/// optimiser can own them.
#[derive(Clone, Debug)]
pub struct Network {
    steps: Vec<Step>,
    /// Floats per image of the input and of every layer's output.
    act_lens: Vec<usize>,
    classes: usize,
}

impl Network {
    /// `plans` must come from [`crate::model::Architecture::plan`], which already checked
    /// every shape; this only translates them.
    pub fn new(plans: &[LayerPlan]) -> Result<Self, TrainError> {
        let mut steps = Vec::with_capacity(plans.len());
        let mut param = 0;
        for plan in plans {
            let (c, h, w) = plan.input.chw();
            let (_, oh, ow) = plan.output.chw();
            let step = match plan.op {
                LayerOp::Conv2d(g) if g.padding_end != g.padding => {
                    return Err(TrainError::Config(format!(
                        "layer `{}`: the trainer pads convolutions symmetrically",
                        plan.name
                    )));
                }
                LayerOp::Conv2d(g) => {
                    param += 1;
                    Step::Conv {
                        dims: ConvDims::new(g, h, w, oh, ow),
                        param: param - 1,
                    }
                }
                LayerOp::Relu => Step::Relu,
                LayerOp::MaxPool2d { kernel, stride } => Step::MaxPool(PoolDims {
                    channels: c,
                    height: h,
                    width: w,
                    kernel,
                    stride,
                    out_height: oh,
                    out_width: ow,
                }),
                LayerOp::Flatten => Step::Flatten,
                LayerOp::Dense {
                    in_features,
                    out_features,
                } => {
                    param += 1;
                    Step::Dense {
                        input: in_features,
                        output: out_features,
                        param: param - 1,
                    }
                }
                other => {
                    return Err(TrainError::Config(format!(
                        "layer `{}`: the trainer trains conv, relu, maxpool, flatten and dense layers, not {other:?}",
                        plan.name
                    )));
                }
            };
            steps.push(step);
        }
        let first = plans.first().map_or(0, |p| p.input.len());
        let act_lens = std::iter::once(first)
            .chain(plans.iter().map(|p| p.output.len()))
            .collect();
        let classes = plans.last().map_or(0, |p| p.output.len());
        Ok(Self {
            steps,
            act_lens,
            classes,
        })
    }

    pub fn input_len(&self) -> usize {
        self.act_lens[0]
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Zeroed parameter-shaped buffers, one per conv/dense layer (gradients, Adam moments).
    pub fn zero_params(&self) -> Vec<LayerParams> {
        self.steps
            .iter()
            .filter_map(|s| match *s {
                Step::Conv { dims, .. } => {
                    Some((dims.out_channels * dims.patch_len(), dims.out_channels))
                }
                Step::Dense { input, output, .. } => Some((input * output, output)),
                _ => None,
            })
            .map(|(w, b)| LayerParams::new(vec![0.0; w], vec![0.0; b]))
            .collect()
    }

    /// Fan-in of each conv/dense layer, in parameter order, for initialisation.
    pub fn fan_ins(&self) -> Vec<usize> {
        self.steps
            .iter()
            .filter_map(|s| match *s {
                Step::Conv { dims, .. } => Some(dims.patch_len()),
                Step::Dense { input, .. } => Some(input),
                _ => None,
            })
            .collect()
    }

    /// Runs every layer on the first `n` images of `ws.input_mut()`.
    pub fn forward(&self, params: &[LayerParams], ws: &mut Workspace, n: usize) {
        for (i, step) in self.steps.iter().enumerate() {
            let (before, after) = ws.acts.split_at_mut(i + 1);
            let input = &before[i][..n * self.act_lens[i]];
            let output = &mut after[0][..n * self.act_lens[i + 1]];
            match step {
                Step::Conv { dims, param } => {
                    let p = &params[*param];
                    let buffers = ConvForwardBuffers {
                        cols: &mut ws.cols[i],
                        scratch: &mut ws.scratch,
                        pad: &mut ws.pads[i],
                    };
                    conv::conv_forward(dims, n, input, &p.weight, &p.bias, buffers, output);
                }
                Step::Relu => kernels::relu_forward(input, output),
                Step::MaxPool(d) => {
                    let images = input
                        .chunks_exact(d.in_len())
                        .zip(output.chunks_exact_mut(d.out_len()));
                    let routes = ws.argmax[i].chunks_exact_mut(d.out_len());
                    for ((x, y), route) in images.zip(routes) {
                        kernels::maxpool_forward(d, x, y, route);
                    }
                }
                Step::Flatten => output.copy_from_slice(input),
                Step::Dense {
                    input: fi,
                    output: fo,
                    param,
                } => {
                    let p = &params[*param];
                    kernels::dense_forward(n, *fi, *fo, input, &p.weight, &p.bias, output);
                }
            }
        }
    }

    /// Forward, loss and backward for the first `n` images against `labels`. Parameter
    /// gradients are *added* to `ws.grads` (scaled by `scale`, normally one over the whole
    /// mini-batch); returns the summed (unscaled) loss. With `input_grad` the gradient with
    /// respect to the input is left in [`Workspace::input_grad`].
    pub fn forward_backward(
        &self,
        params: &[LayerParams],
        ws: &mut Workspace,
        labels: &[u8],
        scale: f32,
        input_grad: bool,
    ) -> f64 {
        let n = labels.len();
        self.forward(params, ws, n);
        let last = self.steps.len();
        let logits = &ws.acts[last][..n * self.classes];
        let loss = kernels::softmax_cross_entropy(
            logits,
            labels,
            scale,
            &mut ws.delta[..n * self.classes],
        );
        for i in (0..last).rev() {
            let want_input = i > 0 || input_grad;
            if self.backward_step(i, params, ws, n, want_input) {
                std::mem::swap(&mut ws.delta, &mut ws.delta_next);
            }
        }
        loss
    }

    /// Backward of layer `i`: reads `ws.delta` (gradient of its output) and, when
    /// `want_input`, produces the gradient of its input. Returns whether that went to
    /// `ws.delta_next` (false: element-wise layers update `ws.delta` in place).
    fn backward_step(
        &self,
        i: usize,
        params: &[LayerParams],
        ws: &mut Workspace,
        n: usize,
        want_input: bool,
    ) -> bool {
        let (in_len, out_len) = (self.act_lens[i], self.act_lens[i + 1]);
        let grad_out = &mut ws.delta[..n * out_len];
        let grad_in = &mut ws.delta_next[..n * in_len];
        match &self.steps[i] {
            Step::Relu => {
                kernels::relu_backward(&ws.acts[i + 1][..n * out_len], grad_out);
                return false;
            }
            Step::Flatten => return false,
            Step::Conv { dims, param } => {
                let g = &mut ws.grads[*param];
                let buffers = ConvBackwardBuffers {
                    cols: &ws.cols[i],
                    scratch: &mut ws.scratch,
                    grad_cols: &mut ws.grad_cols,
                    grad_pad: &mut ws.grad_pad,
                };
                let grads = ConvGrads {
                    weight: &mut g.weight,
                    bias: &mut g.bias,
                    input: want_input.then_some(grad_in),
                };
                conv::conv_backward(dims, n, grad_out, &params[*param].weight, buffers, grads);
            }
            Step::MaxPool(d) => {
                if want_input {
                    let grads = grad_out
                        .chunks_exact(d.out_len())
                        .zip(grad_in.chunks_exact_mut(d.in_len()));
                    for ((g, gi), route) in grads.zip(ws.argmax[i].chunks_exact(d.out_len())) {
                        kernels::maxpool_backward(g, route, gi);
                    }
                }
            }
            Step::Dense {
                input: fi,
                output: fo,
                param,
            } => {
                let g = &mut ws.grads[*param];
                kernels::dense_backward(
                    n,
                    *fi,
                    *fo,
                    grad_out,
                    &ws.acts[i][..n * in_len],
                    &params[*param].weight,
                    DenseGrads {
                        weight: &mut g.weight,
                        bias: &mut g.bias,
                        input: want_input.then_some(grad_in),
                    },
                )
            }
        }
        want_input
    }
}

/// Every buffer one chunk of images needs, allocated once and reused batch after batch.
pub struct Workspace {
    /// `acts[0]` is the input, `acts[i + 1]` the output of layer `i`, for `capacity` images.
    acts: Vec<Vec<f32>>,
    /// im2col matrices of conv layers (empty for others), kept for the backward pass.
    cols: Vec<Vec<f32>>,
    /// Zero-padded input image of stride-1 conv layers (empty for others); one per layer
    /// because only the interior is ever written, so the border stays zero.
    pads: Vec<Vec<f32>>,
    /// Max-pool routing (empty for other layers).
    argmax: Vec<Vec<u32>>,
    scratch: Vec<f32>,
    grad_cols: Vec<f32>,
    grad_pad: Vec<f32>,
    delta: Vec<f32>,
    delta_next: Vec<f32>,
    /// Parameter gradients accumulated by [`Network::forward_backward`].
    pub grads: Vec<LayerParams>,
}

impl Workspace {
    pub fn new(net: &Network, capacity: usize) -> Self {
        let acts = net
            .act_lens
            .iter()
            .map(|&l| vec![0.0; l * capacity])
            .collect();
        let (mut cols, mut pads, mut argmax) = (Vec::new(), Vec::new(), Vec::new());
        let (mut scratch, mut grad_cols, mut grad_pad) = (0, 0, 0);
        for step in &net.steps {
            let (c, pad, a) = match step {
                Step::Conv { dims, .. } => {
                    let q = dims.cols_per_image() * capacity;
                    scratch = scratch.max(dims.out_channels * q);
                    grad_cols = grad_cols.max(dims.patch_len() * q);
                    grad_pad = grad_pad.max(dims.padded_len());
                    (dims.patch_len() * q, dims.padded_len(), 0)
                }
                Step::MaxPool(d) => (0, 0, d.out_len() * capacity),
                _ => (0, 0, 0),
            };
            cols.push(vec![0.0; c]);
            pads.push(vec![0.0; pad]);
            argmax.push(vec![0u32; a]);
        }
        let widest = net.act_lens.iter().copied().max().unwrap_or(0) * capacity;
        Self {
            acts,
            cols,
            pads,
            argmax,
            scratch: vec![0.0; scratch],
            grad_cols: vec![0.0; grad_cols],
            grad_pad: vec![0.0; grad_pad],
            delta: vec![0.0; widest],
            delta_next: vec![0.0; widest],
            grads: net.zero_params(),
        }
    }

    /// Where the caller writes the normalised input images, image after image.
    pub fn input_mut(&mut self) -> &mut [f32] {
        &mut self.acts[0]
    }

    /// Logits of the last forward pass, `classes` per image.
    pub fn logits(&self) -> &[f32] {
        &self.acts[self.acts.len() - 1]
    }

    /// Gradient of the loss with respect to the input, after a `forward_backward` call
    /// made with `input_grad`.
    pub fn input_grad(&self, n: usize, input_len: usize) -> &[f32] {
        &self.delta[..n * input_len]
    }

    pub fn zero_grads(&mut self) {
        for g in &mut self.grads {
            g.weight.fill(0.0);
            g.bias.fill(0.0);
        }
    }
}
