//! The batched convolution (`shaders/conv2d_gemm.wgsl`, an implicit GEMM shaped for
//! CPU drivers): its uniform (the scalar head and the layer's repacked weights), its
//! workgroup count and its loop bound, so the plan only asks this module.

use bytemuck::{Pod, Zeroable};

use super::params::ConvParams;

/// Rust twins of `PIX`, `OC_BLOCK` and `WEIGHT_VEC4S` in `shaders/conv2d_gemm.wgsl`.
pub const GEMM_PIX: u32 = 14;
pub const GEMM_OC_BLOCK: u32 = 16;
pub const GEMM_WEIGHT_VEC4S: u32 = 4091;

/// Twin of the scalar head of `GemmParams` in `shaders/conv2d_gemm.wgsl`; the weights
/// follow it in the same uniform (see [`gemm_launch`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct GemmHead {
    pub conv: ConvParams,
    pub segments: u32,
    pub oc_blocks: u32,
    pub k_vec4s: u32,
    pub _pad: u32,
}

/// Bytes of the whole uniform: the head and `WEIGHT_VEC4S` vec4s (a binding must cover
/// the shader's whole struct; 64 KiB, the smallest uniform binding every device allows).
#[cfg(test)]
pub const GEMM_UNIFORM_BYTES: usize =
    std::mem::size_of::<GemmHead>() + 16 * GEMM_WEIGHT_VEC4S as usize;

/// One gemm launch: its uniform's bytes and its workgroups per image.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmLaunch {
    pub uniform: Vec<u8>,
    pub groups: u32,
}

/// The gemm launch of `conv` (its `relu_offset` already set where a ReLU is fused) with
/// weights `weight` (PyTorch layout, [out][in][ky][kx]); `None` when the repacked weights
/// do not fit the uniform (that layer runs another kernel) or do not match the shape.
pub fn gemm_launch(conv: &ConvParams, weight: &[f32]) -> Option<GemmLaunch> {
    let per_channel = conv
        .in_channels
        .checked_mul(conv.kernel.checked_mul(conv.kernel)?)?;
    let k_vec4s = per_channel.div_ceil(4);
    let vec4s = conv.out_channels.checked_mul(k_vec4s)?;
    let expected = conv.out_channels as usize * per_channel as usize;
    if vec4s > GEMM_WEIGHT_VEC4S || weight.len() != expected || per_channel == 0 {
        return None;
    }
    let segments = conv.out_width.div_ceil(GEMM_PIX);
    let oc_blocks = conv.out_channels.div_ceil(GEMM_OC_BLOCK);
    let head = GemmHead {
        conv: *conv,
        segments,
        oc_blocks,
        k_vec4s,
        _pad: 0,
    };
    let mut uniform = bytemuck::bytes_of(&head).to_vec();
    // [output channel][tap], each channel padded to whole vec4s with zeros.
    let mut packed = vec![0f32; 4 * GEMM_WEIGHT_VEC4S as usize];
    let row = 4 * k_vec4s as usize;
    for (oc, taps) in weight.chunks(per_channel as usize).enumerate() {
        packed[oc * row..oc * row + taps.len()].copy_from_slice(taps);
    }
    uniform.extend_from_slice(bytemuck::cast_slice(&packed));
    let groups = oc_blocks
        .checked_mul(conv.out_height)?
        .checked_mul(segments)?;
    Some(GemmLaunch { uniform, groups })
}

/// Loop iterations of one invocation (see `KernelPlan::loop_iterations`) from a gemm
/// launch's uniform bytes: the channel and tap loops.
pub fn loop_iterations(uniform: &[u8]) -> u64 {
    let Some(head) = uniform.get(..std::mem::size_of::<GemmHead>()) else {
        return u64::MAX;
    };
    let head: GemmHead = bytemuck::pod_read_unaligned(head);
    let k = u64::from(head.conv.kernel);
    u64::from(head.conv.in_channels) * (1 + k * (1 + k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uniform_holds_the_head_and_the_repacked_weights() {
        let conv = ConvParams {
            in_channels: 2,
            out_channels: 9,
            out_height: 14,
            out_width: 15,
            kernel: 1,
            stride: 1,
            ..Default::default()
        };
        // w[oc][ic] = oc · 10 + ic.
        let weight: Vec<f32> = (0..9)
            .flat_map(|oc| (0..2).map(move |ic| (oc * 10 + ic) as f32))
            .collect();
        let launch = gemm_launch(&conv, &weight).expect("fits");
        assert_eq!(launch.uniform.len(), GEMM_UNIFORM_BYTES);
        assert_eq!(GEMM_UNIFORM_BYTES, 65536);
        // One block of 16 channels, 14 rows of two segments (15 = 14 + 1).
        assert_eq!(launch.groups, 14 * 2);
        let head: GemmHead =
            bytemuck::pod_read_unaligned(&launch.uniform[..std::mem::size_of::<GemmHead>()]);
        assert_eq!((head.segments, head.oc_blocks, head.k_vec4s), (2, 1, 1));
        let floats: &[f32] =
            bytemuck::cast_slice(&launch.uniform[std::mem::size_of::<GemmHead>()..]);
        // Each channel's two taps, padded to a vec4.
        assert_eq!(&floats[..8], &[0.0, 1.0, 0.0, 0.0, 10.0, 11.0, 0.0, 0.0]);
        assert_eq!(&floats[32..34], &[80.0, 81.0]);
        assert_eq!(loop_iterations(&launch.uniform), 2 * 3);
        assert_eq!(gemm_launch(&conv, &weight[..5]), None);
        let huge = ConvParams {
            in_channels: 64,
            out_channels: 64,
            kernel: 3,
            ..conv
        };
        assert_eq!(gemm_launch(&huge, &vec![0.0; 64 * 64 * 9]), None);
    }
}
