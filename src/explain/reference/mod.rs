//! The CPU reference twin of every explanation method: plain Rust, f64 inside, slow and
//! obviously right. The GPU explainer's parity tests compare against the pub functions of
//! its submodules; `cnnviz predict --reference` answers with it.
//!
//! Each function's doc comment says exactly how the reference library computes the same
//! thing, with the file and function it follows (pytorch-grad-cam 1.5.7 for the CAM
//! family, Captum 0.9 for the attribution family).

pub mod attribution;
pub mod backward;
pub mod cam;
pub mod faithfulness;
pub mod quadrature;

use super::{
    ExplainError, ExplainOptions, ExplainRequest, Explained, Explainer, Faithfulness, Family,
    Method, attribution_display_map,
};
use crate::model::reference::{argmax, forward};
use crate::model::{ConvBlock, Model};
use backward::{ReluRule, gradients, seed_sign};

/// The CPU twin as an [`Explainer`].
pub struct ReferenceExplainer {
    model: Model,
    options: ExplainOptions,
}

impl ReferenceExplainer {
    pub fn new(model: Model, options: ExplainOptions) -> ReferenceExplainer {
        ReferenceExplainer { model, options }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
}

/// What a method computes before the display map: its attribution and, for the CAM
/// family, the raw map at the block's resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodOutput {
    pub attribution: Vec<f64>,
    pub raw: Vec<f64>,
    pub raw_height: usize,
    pub raw_width: usize,
}

/// Checks options against a model's input; the message names the option.
pub fn check_options(options: &ExplainOptions, model: &Model) -> Result<(), ExplainError> {
    let input = model.architecture.input;
    let side = input.height.min(input.width);
    let bad = |what: String| Err(ExplainError::BadOption(what));
    if options.ig_steps == 0 {
        return bad("ig_steps must be at least 1".into());
    }
    if options.smoothgrad_samples == 0 {
        return bad("smoothgrad_samples must be at least 1".into());
    }
    if !(options.smoothgrad_stdev.is_finite() && options.smoothgrad_stdev >= 0.0) {
        return bad(format!(
            "smoothgrad_stdev must be a finite number ≥ 0, not {}",
            options.smoothgrad_stdev
        ));
    }
    if options.occlusion_window == 0 || options.occlusion_window > side {
        return bad(format!(
            "occlusion_window must be in 1..={side}, not {}",
            options.occlusion_window
        ));
    }
    if options.occlusion_stride == 0 || options.occlusion_stride > options.occlusion_window {
        return bad(format!(
            "occlusion_stride must be in 1..=occlusion_window ({}), not {}",
            options.occlusion_window, options.occlusion_stride
        ));
    }
    if options.faithfulness_steps == 0 {
        return bad("faithfulness_steps must be at least 1".into());
    }
    Ok(())
}

/// The conv block a request uses, checked (`None` for methods without one).
pub fn resolve_block(
    model: &Model,
    request: &ExplainRequest,
) -> Result<Option<(usize, ConvBlock)>, ExplainError> {
    if !request.method.uses_block() {
        return Ok(None);
    }
    let mut blocks = model.conv_blocks();
    if blocks.is_empty() {
        return Err(ExplainError::NoConvBlock {
            method: request.method,
        });
    }
    let index = request.block.unwrap_or(blocks.len() - 1);
    if index >= blocks.len() {
        return Err(ExplainError::BadBlock {
            block: index,
            blocks: blocks.len(),
        });
    }
    Ok(Some((index, blocks.swap_remove(index))))
}

/// The normalised value of an empty canvas (ink 0), one per input channel: with
/// per-channel normalisation each channel has its own.
pub fn blank_values(model: &Model) -> Vec<f64> {
    let n = &model.architecture.normalization;
    (0..model.architecture.input.channels)
        .map(|c| {
            let (mean, std) = n.of_channel(c);
            (0.0 - mean as f64) / std as f64
        })
        .collect()
}

/// Runs `method` for `class` (`sign` −1: counterfactual) on the normalised input `x`.
pub fn explain_method(
    model: &Model,
    options: &ExplainOptions,
    x: &[f64],
    method: Method,
    class: usize,
    sign: f64,
    block: Option<&ConvBlock>,
) -> MethodOutput {
    let input = model.architecture.input;
    let size = (input.height, input.width);
    let activations = crate::model::reference::forward_f64(model, x.to_vec());
    let attribution_only = |attribution: Vec<f64>| MethodOutput {
        attribution,
        raw: Vec::new(),
        raw_height: 0,
        raw_width: 0,
    };
    // The block's activation A and the score's gradient G, for the methods that need them.
    let at_block = |b: &ConvBlock| {
        let target = b.output_layer + 1;
        let g = gradients(model, &activations, class, sign, ReluRule::Plain, target)
            .swap_remove(target)
            .expect("computed down to the block");
        (activations[target].clone(), g, b.height * b.width)
    };
    let cam = |b: &ConvBlock, raw: Vec<f64>| MethodOutput {
        attribution: cam::cam_heatmap(&raw, b.height, b.width, size.0, size.1),
        raw,
        raw_height: b.height,
        raw_width: b.width,
    };
    match method {
        Method::Saliency => attribution_only(attribution::saliency(model, x, class, sign)),
        Method::InputXGradient => {
            attribution_only(attribution::input_x_gradient(model, x, class, sign))
        }
        Method::GuidedBackprop => {
            attribution_only(attribution::guided_backprop(model, x, class, sign))
        }
        Method::IntegratedGradients => attribution_only(attribution::integrated_gradients(
            model,
            x,
            class,
            sign,
            options.ig_steps,
        )),
        Method::SmoothGrad => {
            let noise = attribution::smoothgrad_noise(
                options.seed,
                options.smoothgrad_samples,
                x.len(),
                options.smoothgrad_stdev as f64,
            );
            attribution_only(attribution::smoothgrad(model, x, class, sign, &noise))
        }
        Method::Occlusion => attribution_only(attribution::occlusion(
            model,
            x,
            class,
            sign,
            size,
            options.occlusion_window,
            options.occlusion_stride,
        )),
        Method::GuidedGradCam => {
            let b = block.expect("checked: the method uses a block");
            let (a, g, plane) = at_block(b);
            let raw = cam::weighted_sum_raw(&cam::grad_cam_weights(&g, plane), &a, plane);
            let guided = attribution::guided_backprop(model, x, class, sign);
            attribution_only(attribution::guided_grad_cam(
                &guided,
                &raw,
                (b.height, b.width),
                size,
            ))
        }
        Method::EigenCam => {
            let b = block.expect("checked: the method uses a block");
            let a = &activations[b.output_layer + 1];
            cam(b, cam::eigen_cam_raw(a, b.height * b.width))
        }
        Method::ScoreCam => {
            let b = block.expect("checked: the method uses a block");
            let a = &activations[b.output_layer + 1];
            let masks = cam::score_cam_masks(a, b.height, b.width, size.0, size.1);
            let scores = score_cam_scores(model, x, &masks, class, sign);
            let weights = cam::score_cam_weights(&scores);
            cam(b, cam::weighted_sum_raw(&weights, a, b.height * b.width))
        }
        Method::GradCam
        | Method::GradCamPlusPlus
        | Method::HiResCam
        | Method::XGradCam
        | Method::LayerCam
        | Method::GradCamElementWise => {
            let b = block.expect("checked: the method uses a block");
            let (a, g, plane) = at_block(b);
            let raw = match method {
                Method::GradCam => {
                    cam::weighted_sum_raw(&cam::grad_cam_weights(&g, plane), &a, plane)
                }
                Method::GradCamPlusPlus => cam::weighted_sum_raw(
                    &cam::grad_cam_plus_plus_weights(&a, &g, plane),
                    &a,
                    plane,
                ),
                Method::XGradCam => {
                    cam::weighted_sum_raw(&cam::xgrad_cam_weights(&a, &g, plane), &a, plane)
                }
                Method::HiResCam => cam::hires_cam_raw(&a, &g, plane),
                Method::LayerCam => cam::layer_cam_raw(&a, &g, plane),
                _ => cam::grad_cam_element_wise_raw(&a, &g, plane),
            };
            cam(b, raw)
        }
    }
}

/// Score-CAM's scores: `sign · logit[class]` of the input times each mask (every input
/// channel times the same mask), as `ScoreCAM.get_cam_weights` runs them in batches.
pub fn score_cam_scores(
    model: &Model,
    x: &[f64],
    masks: &[Vec<f64>],
    class: usize,
    sign: f64,
) -> Vec<f64> {
    masks
        .iter()
        .map(|mask| {
            let plane = mask.len();
            let masked: Vec<f64> = x
                .iter()
                .enumerate()
                .map(|(i, v)| v * mask[i % plane])
                .collect();
            attribution::score_of(model, masked, class, sign)
        })
        .collect()
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

impl Explainer for ReferenceExplainer {
    fn explain(
        &mut self,
        input: &[f32],
        request: &ExplainRequest,
    ) -> Result<Explained, ExplainError> {
        let model = &self.model;
        check_options(&self.options, model)?;
        if input.len() != model.input_len() {
            return Err(ExplainError::InputLength {
                len: input.len(),
                expected: model.input_len(),
            });
        }
        let block = resolve_block(model, request)?;
        let logits = forward(model, input).pop().expect("the logits");
        let class = match request.class {
            None => argmax(&logits),
            Some(c) if c < model.num_classes() => c,
            Some(c) => {
                return Err(ExplainError::BadClass {
                    class: c,
                    classes: model.num_classes(),
                });
            }
        };
        let x: Vec<f64> = input.iter().map(|&v| v as f64).collect();
        let out = explain_method(
            model,
            &self.options,
            &x,
            request.method,
            class,
            seed_sign(request.counterfactual),
            block.as_ref().map(|(_, b)| b),
        );
        let attribution = to_f32(&out.attribution);
        let shape = model.architecture.input;
        let plane = shape.height * shape.width;
        let map = match request.method.family() {
            Family::Cam => attribution.clone(),
            Family::Attribution => attribution_display_map(&attribution, shape.channels, plane),
        };
        let faithfulness = request.faithfulness.then(|| {
            let (deletion, insertion) = faithfulness::faithfulness_curves(
                model,
                &x,
                &map,
                class,
                &blank_values(model),
                self.options.faithfulness_steps,
            );
            Faithfulness {
                deletion_auc: faithfulness::area_under_curve(&deletion) as f32,
                insertion_auc: faithfulness::area_under_curve(&insertion) as f32,
                deletion: to_f32(&deletion),
                insertion: to_f32(&insertion),
            }
        });
        Ok(Explained {
            method: request.method,
            class,
            counterfactual: request.counterfactual,
            block: block.map(|(i, _)| i),
            logits: to_f32(&logits),
            attribution,
            raw: to_f32(&out.raw),
            raw_height: out.raw_height,
            raw_width: out.raw_width,
            map,
            faithfulness,
        })
    }

    fn options(&self) -> &ExplainOptions {
        &self.options
    }
}
