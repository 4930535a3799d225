//! Rust twins of the WGSL uniform and table structs, field for field. Every struct is a
//! multiple of 16 bytes (WGSL uniform layout rounds struct sizes up to 16), and all fields
//! are `u32` so there is no hidden padding. Offsets and lengths count `f32`s.

use bytemuck::{Pod, Zeroable};

/// `request[0]` holds this instead of a class index to mean "the image's predicted class".
/// Twin of `PREDICTED` in `shaders/softmax.wgsl`.
pub const PREDICTED_SENTINEL: u32 = u32::MAX;

/// Twin of `ConvParams` in `shaders/conv2d.wgsl` and `shaders/conv2d_tiled.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ConvParams {
    pub in_offset: u32,
    pub out_offset: u32,
    pub in_len: u32,
    pub out_len: u32,
    pub in_channels: u32,
    pub in_height: u32,
    pub in_width: u32,
    pub out_channels: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
    pub weight_offset: u32,
    pub bias_offset: u32,
    /// First float of the fused ReLU's output region (`conv2d.forward_relu_tiled`); the
    /// other conv kernels ignore it.
    pub relu_offset: u32,
}

/// Twin of `EltwiseParams` in `shaders/relu.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct EltwiseParams {
    pub in_offset: u32,
    pub out_offset: u32,
    pub len: u32,
    pub _pad: u32,
}

/// Twin of `PoolParams` in `shaders/maxpool2d.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PoolParams {
    pub in_offset: u32,
    pub out_offset: u32,
    pub in_len: u32,
    pub out_len: u32,
    pub channels: u32,
    pub in_height: u32,
    pub in_width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel: u32,
    pub stride: u32,
    pub _pad: u32,
}

/// Twin of `DenseParams` in `shaders/dense.wgsl` and `shaders/dense_tiled.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DenseParams {
    pub in_offset: u32,
    pub out_offset: u32,
    pub in_features: u32,
    pub out_features: u32,
    pub weight_offset: u32,
    pub bias_offset: u32,
    /// Images each arena region holds: the batch-tiled kernels' bound for images past the
    /// batch in their last tile (the direct kernels ignore it).
    pub max_batch: u32,
    /// The fused ReLU's other region: its output for `dense.forward_relu_tiled`, its input
    /// for `dense.backward_input_relu`; the other dense kernels ignore it.
    pub relu_offset: u32,
}

/// Twin of `SoftmaxParams` in `shaders/softmax.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SoftmaxParams {
    pub logits_offset: u32,
    pub classes: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// Twin of `CamParams` in `shaders/grad_cam.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CamParams {
    pub act_offset: u32,
    pub act_len: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub weights_offset: u32,
    pub weights_stride: u32,
    pub raw_offset: u32,
    pub raw_stride: u32,
    pub low_offset: u32,
    pub low_stride: u32,
    pub heat_offset: u32,
    pub heat_stride: u32,
    pub _pad: u32,
}

/// Twin of `NormaliseParams` in `shaders/normalise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NormaliseParams {
    pub src_offset: u32,
    pub src_stride: u32,
    pub dst_offset: u32,
    pub dst_stride: u32,
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// Twin of `RangeEntry` in `shaders/value_range.wgsl` (a storage array element, so 8 bytes
/// is fine there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RangeEntry {
    pub offset: u32,
    pub len: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_structs_are_whole_16_byte_rows() {
        for size in [
            size_of::<ConvParams>(),
            size_of::<EltwiseParams>(),
            size_of::<PoolParams>(),
            size_of::<DenseParams>(),
            size_of::<SoftmaxParams>(),
            size_of::<CamParams>(),
            size_of::<NormaliseParams>(),
        ] {
            assert_eq!(size % 16, 0, "{size}");
        }
    }
}
