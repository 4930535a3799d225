//! Where every tensor lives on the GPU. Pure arithmetic on the model's shapes: no device,
//! so the window, the tests and the kernels' uniforms all read the same table.
//!
//! # Activation arena
//!
//! One storage buffer holds every activation of the whole batch, layer-major. Activation `j`
//! (0 = the normalised input, `i + 1` = output of layer `i`, as in `model::reference`) owns
//! a region of `max_batch * len(j)` floats starting at `max_batch * prefix(j)`, where
//! `prefix(j)` sums the per-image lengths of the regions before it; image `n` of it starts
//! at `offset(j) + n * len(j)`. A flatten or dropout layer changes no value (dropout is
//! the identity at inference), so its output aliases its input's region (zero-copy) and
//! adds nothing to the prefix; [`ActivationSlot::alias_of`] says so. The gradient arena has exactly the same layout.
//!
//! # CAM buffer
//!
//! Grad-CAM's outputs for every image, in four regions (channel weights α, raw map,
//! normalised low-resolution map, heatmap at input resolution). Each region gives every
//! image the same stride — the largest size over all conv blocks — so the offsets do not
//! change when the target block does; only the first `len` floats of a stride are written.
//!
//! # Value ranges
//!
//! `(min, max)` of every activation of every image: floats `2 * (n * activations + j)` and
//! the one after it.

use crate::model::{Model, Shape};

/// One activation tensor in the arena. Offsets and lengths count `f32`s, not bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationSlot {
    /// Start of image 0 of this activation in the arena.
    pub offset: u64,
    /// Floats per image.
    pub len: usize,
    pub shape: Shape,
    /// Name of the layer that produces it (`input` for activation 0).
    pub name: String,
    /// For a flatten or dropout output: the activation whose region it shares.
    pub alias_of: Option<usize>,
}

/// The offset table of the activation (and gradient) arena.
#[derive(Clone, Debug, PartialEq)]
pub struct ArenaLayout {
    pub max_batch: u32,
    pub slots: Vec<ActivationSlot>,
    /// Floats of one image over all distinct regions.
    pub floats_per_image: u64,
}

impl ArenaLayout {
    pub fn new(model: &Model, max_batch: u32) -> ArenaLayout {
        let shapes = model.activation_shapes();
        let mut slots: Vec<ActivationSlot> = Vec::with_capacity(shapes.len());
        let mut prefix = 0u64;
        for (j, shape) in shapes.iter().enumerate() {
            // Flatten and dropout (the identity at inference) change no value.
            let flatten = j > 0
                && matches!(
                    model.layers[j - 1].plan.op,
                    crate::model::LayerOp::Flatten | crate::model::LayerOp::Dropout
                );
            let name = if j == 0 {
                "input".to_string()
            } else {
                model.layers[j - 1].plan.name.clone()
            };
            let (offset, alias_of) = if flatten {
                let source = slots[j - 1].alias_of.unwrap_or(j - 1);
                (slots[source].offset, Some(source))
            } else {
                let offset = u64::from(max_batch) * prefix;
                prefix += shape.len() as u64;
                (offset, None)
            };
            slots.push(ActivationSlot {
                offset,
                len: shape.len(),
                shape: *shape,
                name,
                alias_of,
            });
        }
        ArenaLayout {
            max_batch,
            slots,
            floats_per_image: prefix,
        }
    }

    /// Number of activations (layers + 1).
    pub fn activations(&self) -> usize {
        self.slots.len()
    }

    /// Floats of the whole arena.
    pub fn total_floats(&self) -> u64 {
        u64::from(self.max_batch) * self.floats_per_image
    }

    /// First float of image `image` of activation `activation`.
    pub fn image_offset(&self, activation: usize, image: u32) -> u64 {
        let slot = &self.slots[activation];
        slot.offset + u64::from(image) * slot.len as u64
    }

    /// Index of the `(min, max)` pair of `activation` of `image` in the value-range buffer,
    /// in floats.
    pub fn range_offset(&self, activation: usize, image: u32) -> u64 {
        2 * (u64::from(image) * self.slots.len() as u64 + activation as u64)
    }

    /// Floats of the value-range buffer.
    pub fn range_floats(&self) -> u64 {
        2 * u64::from(self.max_batch) * self.slots.len() as u64
    }
}

/// One region of the CAM buffer: image `n` starts at `offset + n * stride` floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CamRegion {
    pub offset: u64,
    pub stride: u64,
}

impl CamRegion {
    pub fn image_offset(&self, image: u32) -> u64 {
        self.offset + u64::from(image) * self.stride
    }
}

/// The offset table of the CAM buffer (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CamLayout {
    /// `α_k`, one per channel of the target block.
    pub channel_weights: CamRegion,
    /// `max(0, Σ α_k A_k)` at the block's resolution.
    pub raw: CamRegion,
    /// `raw` min-max normalised.
    pub low_res: CamRegion,
    /// Upsampled to the input size and normalised again.
    pub heatmap: CamRegion,
    pub total_floats: u64,
}

impl CamLayout {
    pub fn new(model: &Model, max_batch: u32) -> CamLayout {
        let blocks = model.conv_blocks();
        let channels = blocks.iter().map(|b| b.channels).max().unwrap_or(0) as u64;
        let plane = blocks.iter().map(|b| b.height * b.width).max().unwrap_or(0) as u64;
        let input = model.architecture.input;
        let heat = (input.height * input.width) as u64;
        let batch = u64::from(max_batch);
        let mut next = 0u64;
        let mut region = |stride: u64| {
            let r = CamRegion {
                offset: next,
                stride,
            };
            next += batch * stride;
            r
        };
        let channel_weights = region(channels);
        let raw = region(plane);
        let low_res = region(plane);
        let heatmap = region(heat);
        CamLayout {
            channel_weights,
            raw,
            low_res,
            heatmap,
            total_floats: next,
        }
    }

    /// Floats of one image over all regions.
    pub fn floats_per_image(&self) -> u64 {
        self.channel_weights.stride + 2 * self.raw.stride + self.heatmap.stride
    }
}
