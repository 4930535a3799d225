//! The batched convolution (`shaders/conv2d_gemm.wgsl`, an implicit GEMM over the pixels of
//! a block of images): its uniform, how many images one workgroup row covers, its
//! workgroup count and its loop bound, so the plan only asks this module.

use bytemuck::{Pod, Zeroable};

use super::params::ConvParams;

/// Rust twins of `M_TILE`, `OC_BLOCK` and `WEIGHT_CAP` in `shaders/conv2d_gemm.wgsl`.
pub const GEMM_M_TILE: u32 = 128;
pub const GEMM_OC_BLOCK: u32 = 16;
pub const GEMM_WEIGHT_CAP: u32 = 1024;
/// The most images one workgroup row covers: enough that a tile rarely straddles a
/// partly used block, few enough that a small batch computes few unused images.
pub const GEMM_MAX_IMAGES: u32 = 8;

/// Twin of `GemmParams` in `shaders/conv2d_gemm.wgsl`: the conv's uniform and the batch
/// blocking.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct GemmParams {
    pub conv: ConvParams,
    pub max_batch: u32,
    pub images: u32,
    pub oc_blocks: u32,
    pub _pad: u32,
}

/// Images per workgroup row for an output plane of `plane` pixels: the fewest that fill
/// whole tiles (`M_TILE / gcd(plane, M_TILE)`), at most [`GEMM_MAX_IMAGES`] and never
/// more than the arena holds.
pub fn images_per_row(plane: u32, max_batch: u32) -> u32 {
    let (mut a, mut b) = (plane.max(1), GEMM_M_TILE);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    (GEMM_M_TILE / a).clamp(1, GEMM_MAX_IMAGES.min(max_batch.max(1)))
}

/// The uniform of the gemm kernel for `conv` in an arena of `max_batch` images, and its
/// workgroups per row of images; `None` when the weights of one input channel do not fit
/// the workgroup array (a kernel larger than 15 × 15).
pub fn gemm_params(conv: &ConvParams, max_batch: u32) -> Option<(GemmParams, u32)> {
    chunk_channels(conv)?;
    let plane = conv.out_height.checked_mul(conv.out_width)?;
    let images = images_per_row(plane, max_batch);
    let tiles = plane.checked_mul(images)?.div_ceil(GEMM_M_TILE);
    let oc_blocks = conv.out_channels.div_ceil(GEMM_OC_BLOCK).max(1);
    let params = GemmParams {
        conv: *conv,
        max_batch,
        images,
        oc_blocks,
        _pad: 0,
    };
    Some((params, tiles.checked_mul(oc_blocks)?))
}

/// Input channels staged per round (the shader's `chunk`), `None` when not even one fits.
fn chunk_channels(conv: &ConvParams) -> Option<u32> {
    let taps = conv.kernel.checked_mul(conv.kernel)?.checked_mul(4)?;
    let chunk = GEMM_WEIGHT_CAP / taps.max(1);
    (chunk >= 1).then(|| chunk.min(conv.in_channels.max(1)))
}

/// Loop iterations of one invocation (see `KernelPlan::loop_iterations`): per round,
/// the outer loop, the weight staging and the taps; then the store loops.
pub fn loop_iterations(p: &GemmParams) -> u64 {
    let conv = &p.conv;
    let Some(chunk) = chunk_channels(conv) else {
        return u64::MAX;
    };
    let (chunk, k) = (u64::from(chunk), u64::from(conv.kernel));
    let in_channels = u64::from(conv.in_channels);
    let mut loops = 0;
    let mut c0 = 0;
    while c0 < in_channels {
        let count = chunk.min(in_channels - c0);
        loops += 1 + (count * k * k * 4).div_ceil(64) + count * (1 + k * (1 + k));
        c0 += chunk;
    }
    loops + 8 * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_blocks_fill_whole_tiles_where_they_can() {
        // 14 × 14 = 196 = 4 · 49: 32 images would fill whole tiles; capped at 8.
        assert_eq!(images_per_row(196, 775), 8);
        // 28 × 28 = 784 = 16 · 49: 8 images are 49 whole tiles.
        assert_eq!(images_per_row(784, 775), 8);
        // 16 × 16 fills a tile on its own.
        assert_eq!(images_per_row(256, 775), 1);
        assert_eq!(images_per_row(196, 1), 1);
        assert_eq!(images_per_row(196, 3), 3);
    }

    #[test]
    fn params_count_tiles_and_channel_blocks() {
        let conv = ConvParams {
            in_channels: 16,
            out_channels: 32,
            out_height: 14,
            out_width: 14,
            kernel: 3,
            stride: 1,
            ..Default::default()
        };
        let (p, groups) = gemm_params(&conv, 775).expect("fits");
        assert_eq!((p.images, p.oc_blocks), (8, 2));
        // 8 · 196 = 1568 pixels: 13 tiles of 128, times two channel blocks.
        assert_eq!(groups, 26);
        // 16 channels of 9 taps, four vec4s each: one round of 16 channels.
        assert_eq!(
            loop_iterations(&p),
            1 + (16 * 9 * 4u64).div_ceil(64) + 16 * 13 + 32
        );
        let huge = ConvParams { kernel: 17, ..conv };
        assert_eq!(gemm_params(&huge, 8), None);
        assert_eq!(std::mem::size_of::<GemmParams>() % 16, 0);
    }
}
