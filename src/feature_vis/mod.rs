//! Feature visualisation: an input optimised by gradient ascent to excite one conv channel
//! (the mean of that channel of a conv block's output, i.e. its ReLU's output) or one
//! class logit ("what the network thinks a 3 looks like"). This module holds what both
//! engines share — the objectives, the options, the seeded starting images and jitter —
//! so [`reference`] (the CPU twin, f64) and [`crate::gpu::FeatureVis`] (WGSL, batched)
//! compute the same run from the same numbers.
//!
//! One step, for every image n at once (image n excites objective n):
//! 1. roll the image by this step's jitter (±`jitter` px in y and x, wrapping around, as
//!    `torch.roll`) — the usual transformation robustness, so the image does not exploit
//!    single pixels;
//! 2. forward, then the gradient of the objective back to the input (mean over the
//!    channel's plane: 1/plane on each of its units; a logit: one-hot), un-rolled;
//! 3. `x += lr · g / (mean |g| + 1e-8)`: a normalised step, so every objective, strong or
//!    dead-ish, moves at the same pace;
//! 4. `x = blank + (1 − decay)(x − blank)`: a pull back to the empty canvas, so ink stays
//!    only where the objective keeps asking for it (strokes on black, as digits are);
//! 5. every `blur_every`-th step a 3×3 Gaussian blur (1-2-1 ⊗ 1-2-1, renormalised over the
//!    taps inside the image): the frequency penalty, cheap and what makes strokes, not
//!    noise;
//! 6. clip to the input range: ink 0 to 1, i.e. `[(0 − mean)/std, (1 − mean)/std]`.
//!
//! The objective's value is recorded before each step's update (on the jittered image),
//! so `history[s][n]` is what step `s` started from.

pub mod reference;

use crate::model::rng::Rng;
use crate::model::{ConvBlock, Model};

/// What the images of one run excite; image n excites objective n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Every channel of conv block `block` (its ReLU output's channel mean).
    Channels { block: usize },
    /// Every class logit (pre-softmax).
    Classes,
}

/// The regularisers and the length of a run. Defaults chosen by looking at the sheets of
/// the committed model (`cnnviz channels --out`): strokes, not noise.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureVisOptions {
    /// Steps the run is planned for (jitter and history are made for this many).
    pub steps: usize,
    /// Mean change of a pixel per step, in normalised input units.
    pub learning_rate: f32,
    /// Largest jitter in pixels, each direction.
    pub jitter: usize,
    /// Blur after every `blur_every`-th step; 0: never.
    pub blur_every: usize,
    /// Fraction of the way back to the blank canvas each step (0: none).
    pub decay: f32,
    /// Seeds the starting images and the jitter: the same seed reproduces a run exactly.
    pub seed: u64,
}

impl Default for FeatureVisOptions {
    fn default() -> Self {
        FeatureVisOptions {
            steps: 256,
            learning_rate: 0.1,
            jitter: 2,
            blur_every: 4,
            decay: 0.02,
            seed: 0,
        }
    }
}

/// What went wrong with a feature-visualisation request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeatureVisError {
    #[error("conv block {block} does not exist; the model has {blocks} conv blocks")]
    BadBlock { block: usize, blocks: usize },
    #[error("bad feature-visualisation option: {0}")]
    BadOption(String),
    #[error(
        "the model's input has {floats} floats per image, but the feature visualisation keeps an image in GPU workgroup memory, which holds {max}"
    )]
    InputTooLarge { floats: usize, max: usize },
}

/// Where a run's objectives live: activation `activation` (as
/// [`crate::model::reference::forward`] numbers them), `count` objectives of `plane`
/// floats each at the start of its `len` floats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectiveShape {
    pub activation: usize,
    pub count: usize,
    pub plane: usize,
    pub len: usize,
}

impl Objective {
    /// The objective's activation and sizes in `model`, or why it has none.
    pub fn shape(self, model: &Model) -> Result<ObjectiveShape, FeatureVisError> {
        match self {
            Objective::Channels { block } => {
                let blocks = model.conv_blocks();
                let b: &ConvBlock = blocks.get(block).ok_or(FeatureVisError::BadBlock {
                    block,
                    blocks: blocks.len(),
                })?;
                Ok(ObjectiveShape {
                    activation: b.output_layer + 1,
                    count: b.channels,
                    plane: b.height * b.width,
                    len: b.channels * b.height * b.width,
                })
            }
            Objective::Classes => Ok(ObjectiveShape {
                activation: model.layers.len(),
                count: model.num_classes(),
                plane: 1,
                len: model.num_classes(),
            }),
        }
    }
}

/// Checks the options: a run of at least one step and a finite, positive learning rate.
pub fn check_options(options: &FeatureVisOptions) -> Result<(), FeatureVisError> {
    let bad = |what: String| Err(FeatureVisError::BadOption(what));
    if options.steps == 0 {
        return bad("steps must be at least 1".into());
    }
    if !(options.learning_rate.is_finite() && options.learning_rate > 0.0) {
        return bad(format!(
            "learning_rate must be a finite number > 0, not {}",
            options.learning_rate
        ));
    }
    if !(0.0..1.0).contains(&options.decay) {
        return bad(format!("decay must be in [0, 1), not {}", options.decay));
    }
    if options.jitter > 64 {
        return bad(format!(
            "jitter must be at most 64 px, not {}",
            options.jitter
        ));
    }
    Ok(())
}

/// The lowest and highest normalised input value of the first channel: ink 0 and ink 1.
pub fn input_range(model: &Model) -> (f32, f32) {
    let (mean, std) = model.architecture.normalization.of_channel(0);
    ((0.0 - mean) / std, (1.0 - mean) / std)
}

/// Ink of a starting pixel is uniform in `START_INK`: noise over the darker half of the
/// range. Chosen on the committed model: from a nearly blank canvas (ink < 0.1) or from
/// mid grey (0.4–0.6) some channels respond nowhere and so see no gradient at all; from
/// this noise every channel of both blocks responds somewhere and grows.
const START_INK: std::ops::Range<f32> = 0.0..0.5;

/// Image n's starting point (normalised), from its own stream of the seed: the same
/// image n whatever the batch.
pub fn start_image(model: &Model, seed: u64, n: usize) -> Vec<f32> {
    let mut rng = Rng::derive(seed, &[0, n as u64]);
    let ink: Vec<f32> = (0..model.input_len())
        .map(|_| rng.uniform(START_INK.start, START_INK.end))
        .collect();
    model.normalize(&ink)
}

/// `(dy, dx)` of every step, each in `−jitter..=jitter`, shared by every image.
pub fn jitter_offsets(options: &FeatureVisOptions) -> Vec<(i32, i32)> {
    let mut rng = Rng::derive(options.seed, &[1]);
    let span = 2 * options.jitter as u64 + 1;
    let mut draw = || rng.below(span) as i32 - options.jitter as i32;
    (0..options.steps).map(|_| (draw(), draw())).collect()
}

/// Whether step `step` (from 0) ends with a blur.
pub fn blurs_after(options: &FeatureVisOptions, step: usize) -> bool {
    options.blur_every > 0 && (step + 1).is_multiple_of(options.blur_every)
}

/// A normalised input as ink 0–255 per pixel (the mean over input channels), clipped to
/// the input range: what the sheets and the window draw.
pub fn to_ink(model: &Model, image: &[f32]) -> Vec<u8> {
    let input = model.architecture.input;
    let norm = &model.architecture.normalization;
    let plane = input.height * input.width;
    (0..plane)
        .map(|i| {
            let mean = (0..input.channels)
                .map(|c| {
                    let (mean, std) = norm.of_channel(c);
                    image[c * plane + i] * std + mean
                })
                .sum::<f32>()
                / input.channels.max(1) as f32;
            (mean.clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect()
}
