//! Where everything of the explanation methods lives in their buffer, and the uniform of
//! their kernels (one per conv block). Pure data: unit-tested without a device.
//!
//! The buffer starts with what comes back (`out`: logits, class, attribution, display map,
//! curves and areas, contiguous so one copy reads them), then what the kernels read (the
//! input, the sign, the blank value, IG's nodes, SmoothGrad's noise) and their scratch.

use crate::explain::{ExplainError, ExplainOptions, reference};
use crate::gpu::GpuError;
use crate::gpu::arena::{ArenaLayout, CamLayout};
use crate::gpu::params::ExplainParams;
use crate::gpu::plan::to_u32;
use crate::model::{ConvBlock, Model};

/// Pixels `rank_partials` compares per invocation (twin of `RANK_CHUNK` in
/// `shaders/explain_inputs.wgsl`): the loop stays far below llvmpipe's limit.
pub const RANK_CHUNK: usize = 4096;

/// Floats from the start of the buffer; every region is a start and a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: usize,
    pub len: usize,
}

impl Region {
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
}

/// Sizes of the model and the options that the buffer and the batches depend on.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainLayout {
    pub logits: Region,
    pub class: Region,
    pub attribution: Region,
    pub map: Region,
    /// Deletion points, insertion points, then the two areas.
    pub curves: Region,
    pub input: Region,
    pub sign: Region,
    pub blank: Region,
    /// IG's alphas, then its weights.
    pub ig: Region,
    pub noise: Region,
    pub saved: Region,
    pub eigen: Region,
    pub masks: Region,
    pub ranks: Region,
    pub total: usize,
    /// Patch positions of occlusion, down and across.
    pub occlusion_rows: usize,
    pub occlusion_cols: usize,
    pub rank_chunks: usize,
}

/// Patch positions along a side of `size` pixels, as Captum's Occlusion counts them (the
/// twin's [`reference::attribution::occlusion_offsets`]).
pub fn occlusion_positions(size: usize, window: usize, stride: usize) -> usize {
    reference::attribution::occlusion_offsets(size, window, stride).len()
}

impl ExplainLayout {
    /// The layout for `model` and `options`, or a [`crate::explain::ExplainError::BadOption`]
    /// text when an option cannot be computed.
    pub fn new(model: &Model, options: &ExplainOptions) -> Result<ExplainLayout, String> {
        let input = model.architecture.input;
        let in_len = model.input_len();
        let plane = input.height * input.width;
        let classes = model.num_classes();
        // The twin's check, so both engines refuse the same options with the same words.
        reference::check_options(options, model).map_err(|e| match e {
            ExplainError::BadOption(message) => message,
            other => other.to_string(),
        })?;
        let blocks = model.conv_blocks();
        let max_channels = blocks.iter().map(|b| b.channels).max().unwrap_or(0);
        let max_act = blocks
            .iter()
            .map(|b| b.channels * b.height * b.width)
            .max()
            .unwrap_or(0);
        let rank_chunks = plane.div_ceil(RANK_CHUNK);
        let mut next = 0;
        let mut region = |len: usize| {
            let r = Region { offset: next, len };
            next += len;
            r
        };
        let logits = region(classes);
        let class = region(1);
        let attribution = region(in_len);
        let map = region(plane);
        let curves = region(2 * (options.faithfulness_steps + 1) + 2);
        let input_region = region(in_len);
        let sign = region(1);
        // One blank value per input channel.
        let blank = region(in_len / plane);
        let ig = region(2 * options.ig_steps);
        let noise = region(options.smoothgrad_samples * in_len);
        let saved = region(max_act);
        let eigen = region(max_channels + 2 * max_channels * max_channels + max_channels);
        let masks = region(2 * max_channels);
        let ranks = region(rank_chunks * plane);
        let rows = occlusion_positions(
            input.height,
            options.occlusion_window,
            options.occlusion_stride,
        );
        let cols = occlusion_positions(
            input.width,
            options.occlusion_window,
            options.occlusion_stride,
        );
        Ok(ExplainLayout {
            logits,
            class,
            attribution,
            map,
            curves,
            input: input_region,
            sign,
            blank,
            ig,
            noise,
            saved,
            eigen,
            masks,
            ranks,
            total: next,
            occlusion_rows: rows,
            occlusion_cols: cols,
            rank_chunks,
        })
    }

    /// What one explanation reads back: logits … curves.
    pub fn out(&self) -> Region {
        Region {
            offset: self.logits.offset,
            len: self.curves.end() - self.logits.offset,
        }
    }

    pub fn occlusion_patches(&self) -> usize {
        self.occlusion_rows * self.occlusion_cols
    }
}

/// The kernels' uniform for `block` (`None`: a model without conv blocks).
pub(super) fn explain_params(
    model: &Model,
    arena: &ArenaLayout,
    cam: &CamLayout,
    layout: &ExplainLayout,
    options: &ExplainOptions,
    block: Option<&ConvBlock>,
) -> Result<ExplainParams, GpuError> {
    let input = model.architecture.input;
    let u = |v: usize| to_u32(v);
    let (act_offset, act_len, channels, height, width) = match block {
        Some(b) => {
            let slot = &arena.slots[b.output_layer + 1];
            (slot.offset, slot.len, b.channels, b.height, b.width)
        }
        None => (0, 0, 0, 0, 0),
    };
    let logits = arena.slots.last().expect("the input slot always exists");
    Ok(ExplainParams {
        input_offset: to_u32(arena.slots[0].offset)?,
        in_len: u(model.input_len())?,
        in_channels: u(input.channels)?,
        in_height: u(input.height)?,
        in_width: u(input.width)?,
        act_offset: to_u32(act_offset)?,
        act_len: u(act_len)?,
        channels: u(channels)?,
        height: u(height)?,
        width: u(width)?,
        logits_offset: to_u32(logits.offset)?,
        classes: u(model.num_classes())?,
        ig_steps: u(options.ig_steps)?,
        samples: u(options.smoothgrad_samples)?,
        occ_window: u(options.occlusion_window)?,
        occ_stride: u(options.occlusion_stride)?,
        occ_rows: u(layout.occlusion_rows)?,
        occ_cols: u(layout.occlusion_cols)?,
        faith_steps: u(options.faithfulness_steps)?,
        rank_chunks: u(layout.rank_chunks)?,
        logits_off: u(layout.logits.offset)?,
        class_off: u(layout.class.offset)?,
        attr_off: u(layout.attribution.offset)?,
        map_off: u(layout.map.offset)?,
        curve_off: u(layout.curves.offset)?,
        x_off: u(layout.input.offset)?,
        sign_off: u(layout.sign.offset)?,
        blank_off: u(layout.blank.offset)?,
        ig_off: u(layout.ig.offset)?,
        noise_off: u(layout.noise.offset)?,
        saved_off: u(layout.saved.offset)?,
        eig_off: u(layout.eigen.offset)?,
        mask_off: u(layout.masks.offset)?,
        rank_off: u(layout.ranks.offset)?,
        cam_weights: to_u32(cam.channel_weights.offset)?,
        cam_raw: to_u32(cam.raw.offset)?,
        cam_heat: to_u32(cam.heatmap.offset)?,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::train::default_architecture;

    #[test]
    fn regions_follow_each_other_and_the_output_is_contiguous() {
        let model = Model::filled(default_architecture(), || 0.0).expect("zero model");
        let options = ExplainOptions::default();
        let layout = ExplainLayout::new(&model, &options).expect("layout");
        assert_eq!(layout.logits.offset, 0);
        assert_eq!(layout.class.offset, 10);
        assert_eq!(layout.attribution.offset, 11);
        assert_eq!(layout.out().len, 10 + 1 + 784 + 784 + 2 * 29 + 2);
        // 28 pixels, window 4, stride 2: patches start at 0, 2, …, 24.
        assert_eq!(layout.occlusion_patches(), 13 * 13);
        assert_eq!(occlusion_positions(28, 5, 2), 13);
        assert_eq!(layout.ranks.end(), layout.total);
        let bad = ExplainOptions {
            occlusion_window: 29,
            ..options.clone()
        };
        assert!(ExplainLayout::new(&model, &bad).unwrap_err().contains("29"));
        let zero = ExplainOptions {
            ig_steps: 0,
            ..options
        };
        assert!(
            ExplainLayout::new(&model, &zero)
                .unwrap_err()
                .contains("ig_steps")
        );
    }
}
