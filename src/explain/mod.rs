//! Explanation methods: which ones exist, what a request asks for and what an answer holds.
//!
//! Two engines answer the same [`ExplainRequest`] through the [`Explainer`] trait:
//! - the CPU reference twin (`reference`, f64, slow and obviously right), which the tests
//!   and `cnnviz predict --reference` use;
//! - the GPU explainer (`crate::gpu::explain`), every method in WGSL, which the window, the
//!   CLI and the benchmarks use.
//!
//! Each method's exact definition is in `docs/explain.md` and in the doc comment of its CPU
//! twin: pytorch-grad-cam 1.5.x for the CAM family, Captum 0.9 for the attribution family.
//! The display map and the deletion/insertion curves are cnnviz's own; they are defined
//! here because both engines must compute them the same way.

pub mod reference;

use std::fmt;

use crate::gpu::GpuError;

/// Every explanation method cnnviz computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    // CAM family (pytorch-grad-cam): a map at the target conv block, upsampled.
    GradCam,
    GradCamPlusPlus,
    HiResCam,
    XGradCam,
    LayerCam,
    GradCamElementWise,
    EigenCam,
    ScoreCam,
    // Attribution family (Captum): one value per input element.
    Saliency,
    InputXGradient,
    GuidedBackprop,
    GuidedGradCam,
    IntegratedGradients,
    SmoothGrad,
    Occlusion,
}

/// Which reference library a method follows, and so what [`Explained::attribution`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// pytorch-grad-cam: a normalised heatmap at the input's height × width.
    Cam,
    /// Captum: an attribution per input element (channels × height × width), unnormalised.
    Attribution,
}

/// How a method gets its numbers; the window uses it to order work and label cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// One forward pass, no backward (EigenCAM).
    Forward,
    /// One forward and one backward pass, like Grad-CAM.
    Backward,
    /// A batch of forward (and maybe backward) passes.
    Batched,
}

impl Method {
    pub const ALL: [Method; 15] = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::HiResCam,
        Method::XGradCam,
        Method::LayerCam,
        Method::GradCamElementWise,
        Method::EigenCam,
        Method::ScoreCam,
        Method::Saliency,
        Method::InputXGradient,
        Method::GuidedBackprop,
        Method::GuidedGradCam,
        Method::IntegratedGradients,
        Method::SmoothGrad,
        Method::Occlusion,
    ];

    /// The name on the command line and in JSON (`--method gradcam++`).
    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam++",
            Method::HiResCam => "hirescam",
            Method::XGradCam => "xgradcam",
            Method::LayerCam => "layercam",
            Method::GradCamElementWise => "gradcam-elementwise",
            Method::EigenCam => "eigencam",
            Method::ScoreCam => "scorecam",
            Method::Saliency => "saliency",
            Method::InputXGradient => "input-x-gradient",
            Method::GuidedBackprop => "guided-backprop",
            Method::GuidedGradCam => "guided-gradcam",
            Method::IntegratedGradients => "integrated-gradients",
            Method::SmoothGrad => "smoothgrad",
            Method::Occlusion => "occlusion",
        }
    }

    /// The name people know it by, for the window.
    pub fn label(self) -> &'static str {
        match self {
            Method::GradCam => "Grad-CAM",
            Method::GradCamPlusPlus => "Grad-CAM++",
            Method::HiResCam => "HiResCAM",
            Method::XGradCam => "XGrad-CAM",
            Method::LayerCam => "LayerCAM",
            Method::GradCamElementWise => "Grad-CAM element-wise",
            Method::EigenCam => "EigenCAM",
            Method::ScoreCam => "Score-CAM",
            Method::Saliency => "Saliency",
            Method::InputXGradient => "Input × gradient",
            Method::GuidedBackprop => "Guided backprop",
            Method::GuidedGradCam => "Guided Grad-CAM",
            Method::IntegratedGradients => "Integrated Gradients",
            Method::SmoothGrad => "SmoothGrad",
            Method::Occlusion => "Occlusion",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Method::GradCam
            | Method::GradCamPlusPlus
            | Method::HiResCam
            | Method::XGradCam
            | Method::LayerCam
            | Method::GradCamElementWise
            | Method::EigenCam
            | Method::ScoreCam => Family::Cam,
            _ => Family::Attribution,
        }
    }

    pub fn cost(self) -> Cost {
        match self {
            Method::EigenCam => Cost::Forward,
            Method::ScoreCam
            | Method::IntegratedGradients
            | Method::SmoothGrad
            | Method::Occlusion => Cost::Batched,
            _ => Cost::Backward,
        }
    }

    /// Whether the method reads a target conv block (and so needs a model with one).
    pub fn uses_block(self) -> bool {
        self.family() == Family::Cam || self == Method::GuidedGradCam
    }

    /// Whether the method depends on the target class (EigenCAM does not).
    pub fn uses_class(self) -> bool {
        self != Method::EigenCam
    }

    /// Parses a CLI / JSON name; the error lists every name.
    pub fn parse(name: &str) -> Result<Method, ExplainError> {
        let lower = name.trim().to_ascii_lowercase();
        Method::ALL
            .into_iter()
            .find(|m| m.name() == lower)
            .ok_or_else(|| ExplainError::UnknownMethod(name.to_string()))
    }

    /// Every name, comma-separated, for help and error texts.
    pub fn names() -> String {
        Method::ALL.map(Method::name).join(", ")
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Settings that stay fixed for an engine's life (a GPU explainer sizes its buffers from
/// them). Defaults are the ones the window and the CLI use.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainOptions {
    /// Integrated Gradients: Gauss–Legendre steps (Captum's default method), zero baseline.
    pub ig_steps: usize,
    /// SmoothGrad: noisy copies of the input.
    pub smoothgrad_samples: usize,
    /// SmoothGrad: standard deviation of the Gaussian noise, in the model's (normalised)
    /// input units.
    pub smoothgrad_stdev: f32,
    /// Seed of SmoothGrad's noise: the same seed gives the same map on both engines.
    pub seed: u64,
    /// Occlusion: side of the square patch, in input pixels.
    pub occlusion_window: usize,
    /// Occlusion: step between patch positions, in input pixels.
    pub occlusion_stride: usize,
    /// Deletion/insertion: the curves have `faithfulness_steps + 1` points.
    pub faithfulness_steps: usize,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            ig_steps: 32,
            smoothgrad_samples: 16,
            smoothgrad_stdev: 0.5,
            seed: 0x5eed,
            occlusion_window: 4,
            occlusion_stride: 2,
            faithfulness_steps: 28,
        }
    }
}

/// One explanation to compute for one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExplainRequest {
    pub method: Method,
    /// The class whose logit is explained; `None`: the predicted class.
    pub class: Option<usize>,
    /// Explain the negated logit: what speaks against the class (the counterfactual map of
    /// the Grad-CAM paper, for every method).
    pub counterfactual: bool,
    /// Index into `Model::conv_blocks`; `None`: the last block (pytorch-grad-cam's usual
    /// target). Ignored by methods that do not use a block.
    pub block: Option<usize>,
    /// Also compute the deletion and insertion curves.
    pub faithfulness: bool,
}

impl ExplainRequest {
    /// The method for the predicted class at the last block, with its faithfulness scores.
    pub fn new(method: Method) -> ExplainRequest {
        ExplainRequest {
            method,
            class: None,
            counterfactual: false,
            block: None,
            faithfulness: true,
        }
    }
}

/// Deletion and insertion curves (cnnviz's definition, the same on both engines):
///
/// - order: the input pixels sorted by [`Explained::map`], largest first, ties by pixel
///   index (a stable sort);
/// - step `s` of `steps` (`s = 0..=steps`) touches the first `floor(s · P / steps)` pixels
///   of that order, `P = height · width`, all channels of each pixel;
/// - deletion sets them to the blank canvas (ink 0, i.e. `(0 − mean) / std`), starting from
///   the input; insertion starts from the blank canvas and puts back their input values;
/// - each point is the softmax probability of the explained class;
/// - the area under a curve is the trapezoid rule over `s / steps` in 0..1.
///
/// A faithful map has a low deletion area (the probability falls fast) and a high insertion
/// area. All `2 · (steps + 1)` inputs run as one batched forward pass on the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Faithfulness {
    pub deletion: Vec<f32>,
    pub insertion: Vec<f32>,
    pub deletion_auc: f32,
    pub insertion_auc: f32,
}

/// What an engine answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    pub method: Method,
    /// The class explained (the predicted one when the request said `None`).
    pub class: usize,
    pub counterfactual: bool,
    /// The conv block used, for methods that use one.
    pub block: Option<usize>,
    /// The logits of the input.
    pub logits: Vec<f32>,
    /// What the reference library returns for this method: for the CAM family the
    /// normalised heatmap (height × width, 0..1), for the attribution family the
    /// attribution of every input element (channels × height × width, any sign).
    pub attribution: Vec<f32>,
    /// CAM family: the map at the block's resolution after its ReLU and before any
    /// normalisation (`raw_height × raw_width`); empty for the attribution family.
    pub raw: Vec<f32>,
    pub raw_height: usize,
    pub raw_width: usize,
    /// What the window draws and deletion/insertion order by: height × width in 0..1.
    /// CAM family: the heatmap itself. Attribution family: the largest |attribution| over
    /// channels at each pixel divided by its maximum over the image (all zeros when the
    /// attribution is zero everywhere).
    pub map: Vec<f32>,
    pub faithfulness: Option<Faithfulness>,
}

/// An engine that explains one input at a time. Inputs are normalised model inputs
/// (`Model::input_len` floats), as `GpuNetwork::write_inputs` takes them.
pub trait Explainer: Send {
    fn explain(
        &mut self,
        input: &[f32],
        request: &ExplainRequest,
    ) -> Result<Explained, ExplainError>;

    /// The options this engine was built with.
    fn options(&self) -> &ExplainOptions;
}

/// Everything that can go wrong asking for an explanation; each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("unknown explanation method {0:?}; the methods are: {names}", names = Method::names())]
    UnknownMethod(String),
    #[error("{method} needs a conv block, and this model has none")]
    NoConvBlock { method: Method },
    #[error("conv block {block} does not exist; the model has {blocks} conv blocks")]
    BadBlock { block: usize, blocks: usize },
    #[error("class {class} does not exist; the model has {classes} classes")]
    BadClass { class: usize, classes: usize },
    #[error("the input has {len} floats; the model takes {expected}")]
    InputLength { len: usize, expected: usize },
    #[error("bad explanation option: {0}")]
    BadOption(String),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// The display map of an attribution: per pixel the largest |value| over channels, divided
/// by the image's maximum (see [`Explained::map`]).
pub fn attribution_display_map(attribution: &[f32], channels: usize, plane: usize) -> Vec<f32> {
    let per_pixel: Vec<f32> = (0..plane)
        .map(|p| {
            (0..channels)
                .map(|c| attribution[c * plane + p].abs())
                .fold(0.0, f32::max)
        })
        .collect();
    let max = per_pixel.iter().cloned().fold(0.0, f32::max);
    if max > 0.0 && max.is_finite() {
        per_pixel.into_iter().map(|v| v / max).collect()
    } else {
        vec![0.0; plane]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_parses_from_its_name_and_names_are_unique() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()).unwrap(), m);
        }
        let mut names: Vec<_> = Method::ALL.map(Method::name).to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Method::ALL.len());
        let err = Method::parse("gradcam+++").unwrap_err().to_string();
        assert!(
            err.contains("gradcam++") && err.contains("occlusion"),
            "{err}"
        );
    }

    #[test]
    fn the_display_map_takes_the_largest_magnitude_over_channels() {
        // Two channels of a 2-pixel image.
        let map = attribution_display_map(&[1.0, -4.0, -2.0, 1.0], 2, 2);
        assert_eq!(map, vec![0.5, 1.0]);
        assert_eq!(attribution_display_map(&[0.0, 0.0], 1, 2), vec![0.0, 0.0]);
    }
}
