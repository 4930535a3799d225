//! Rust twins of the WGSL uniform and table structs, field for field. The uniform structs
//! are declared once, in `shaders/params.wgsl` (every compute shader is parsed with that
//! prelude in front, see `pipelines`); [`twins`] lists every twin's fields with their
//! offsets, and `tests/shader_validation.rs` compares them with what naga reflects from the
//! WGSL, name by name and offset by offset. Every uniform struct is a multiple of 16 bytes
//! (WGSL uniform layout rounds struct sizes up to 16), and all scalar fields are `u32`, so
//! there is no hidden padding. Offsets and lengths count `f32`s.

use bytemuck::{Pod, Zeroable};

/// `request[0]` holds this instead of a class index to mean "the image's predicted class".
/// Twin of `PREDICTED` in `shaders/softmax.wgsl` and `shaders/fused.wgsl`.
pub const PREDICTED_SENTINEL: u32 = u32::MAX;

/// One Rust twin as the field check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwinLayout {
    /// The WGSL struct's name (the same as the Rust one).
    pub name: &'static str,
    /// The WGSL file that declares it.
    pub file: &'static str,
    pub size: usize,
    /// `(field name, byte offset)` in declaration order.
    pub fields: Vec<(&'static str, usize)>,
}

/// Declares `#[repr(C)]` Pod twins and records their field names and offsets for
/// [`twins`], so a field renamed, added or moved on one side only fails the test.
macro_rules! wgsl_twins {
    ($(
        $(#[$meta:meta])*
        in $file:literal struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    )*) => {
        $(
            $(#[$meta])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
            pub struct $name {
                $($(#[$field_meta])* pub $field: $ty,)*
            }

            /// All zeros (what `#[derive(Default)]` gives `u32` fields, also for arrays).
            impl Default for $name {
                fn default() -> Self {
                    Zeroable::zeroed()
                }
            }
        )*

        /// Every twin with its fields, for the WGSL comparison in the tests.
        pub fn twins() -> Vec<TwinLayout> {
            vec![$(TwinLayout {
                name: stringify!($name),
                file: $file,
                size: size_of::<$name>(),
                fields: vec![$((stringify!($field), std::mem::offset_of!($name, $field)),)*],
            },)*]
        }
    };
}

wgsl_twins! {
    /// Twin of `ConvParams`.
    in "params.wgsl" struct ConvParams {
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

    /// Twin of `ConvBlockParams`: the uniform of `conv2d_tiled.wgsl`, a conv and what its
    /// `forward_block` entry writes after it (the other entries read only `conv`).
    in "params.wgsl" struct ConvBlockParams {
        pub conv: ConvParams,
        /// 1: the ReLU after the conv (or its batch norm) is written too (at
        /// `conv.relu_offset`).
        pub relu: u32,
        /// The fused 2×2 stride-2 max-pool's output region.
        pub pool_offset: u32,
        /// Its floats per image; 0: no pool fused.
        pub pool_len: u32,
        pub pool_height: u32,
        pub pool_width: u32,
        /// Per image and workgroup, (min, max) of the conv, batch-norm, ReLU and pool
        /// outputs it wrote ([`BLOCK_PARTIAL_FLOATS`] floats), in the value-range buffer
        /// past the ranges themselves.
        pub partials_offset: u32,
        /// Workgroups per image (partials per image).
        pub groups: u32,
        /// 1: the batch norm after the conv is written (at `affine_offset`) and the ReLU
        /// and pool read its output.
        pub affine: u32,
        pub affine_offset: u32,
        /// The batch norm's folded per-channel scale and shift in the weight buffer.
        pub scale_offset: u32,
        pub shift_offset: u32,
        pub _pad: u32,
    }

    /// Twin of `EltwiseParams`.
    in "params.wgsl" struct EltwiseParams {
        pub in_offset: u32,
        pub out_offset: u32,
        pub len: u32,
        pub _pad: u32,
    }

    /// Twin of `PointwiseParams`: leaky ReLU, sigmoid, tanh or batch norm (a per-channel
    /// scale and shift in the weight buffer), chosen by `op` ([`PointwiseOp`]).
    in "params.wgsl" struct PointwiseParams {
        pub in_offset: u32,
        pub out_offset: u32,
        pub len: u32,
        pub op: u32,
        /// Floats per channel (height × width; 1 after a dense layer).
        pub plane: u32,
        pub scale_offset: u32,
        pub shift_offset: u32,
        /// The leaky ReLU's negative slope as `f32::to_bits`.
        pub slope: u32,
    }

    /// Twin of `PoolParams`: a max, average or global average pool ([`PoolMode`]).
    in "params.wgsl" struct PoolParams {
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
        /// Zero padding on every side (average pools only).
        pub padding: u32,
        pub mode: u32,
        pub _pad0: u32,
        pub _pad1: u32,
        pub _pad2: u32,
    }

    /// Twin of `DenseParams`.
    in "params.wgsl" struct DenseParams {
        pub in_offset: u32,
        pub out_offset: u32,
        pub in_features: u32,
        pub out_features: u32,
        pub weight_offset: u32,
        pub bias_offset: u32,
        /// Images each arena region holds: the batch-tiled kernels' bound for images past
        /// the batch in their last tile (the direct kernels ignore it).
        pub max_batch: u32,
        /// The fused ReLU's other region: its output for `dense.forward_relu_tiled`, its
        /// input for `dense.backward_input_relu`; the other dense kernels ignore it.
        pub relu_offset: u32,
    }

    /// Twin of `SoftmaxParams`.
    in "params.wgsl" struct SoftmaxParams {
        pub logits_offset: u32,
        pub classes: u32,
        pub _pad0: u32,
        pub _pad1: u32,
    }

    /// Twin of `CamParams`.
    in "params.wgsl" struct CamParams {
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

    /// Twin of `NormaliseParams`.
    in "params.wgsl" struct NormaliseParams {
        pub src_offset: u32,
        pub src_stride: u32,
        pub dst_offset: u32,
        pub dst_stride: u32,
        pub len: u32,
        pub _pad0: u32,
        pub _pad1: u32,
        pub _pad2: u32,
    }

    /// Twin of `ExplainParams`.
    in "params.wgsl" struct ExplainParams {
        pub input_offset: u32,
        pub in_len: u32,
        pub in_channels: u32,
        pub in_height: u32,
        pub in_width: u32,
        pub act_offset: u32,
        pub act_len: u32,
        pub channels: u32,
        pub height: u32,
        pub width: u32,
        pub logits_offset: u32,
        pub classes: u32,
        pub ig_steps: u32,
        pub samples: u32,
        pub occ_window: u32,
        pub occ_stride: u32,
        pub occ_rows: u32,
        pub occ_cols: u32,
        pub faith_steps: u32,
        pub rank_chunks: u32,
        pub logits_off: u32,
        pub class_off: u32,
        pub attr_off: u32,
        pub map_off: u32,
        pub curve_off: u32,
        pub x_off: u32,
        pub sign_off: u32,
        pub blank_off: u32,
        pub ig_off: u32,
        pub noise_off: u32,
        pub saved_off: u32,
        pub eig_off: u32,
        pub mask_off: u32,
        pub rank_off: u32,
        pub cam_weights: u32,
        pub cam_raw: u32,
        pub cam_heat: u32,
        pub _pad0: u32,
        pub _pad1: u32,
        pub _pad2: u32,
    }

    /// Twin of `FeatureVisParams` (see `gpu::feature_vis`).
    in "params.wgsl" struct FeatureVisParams {
        pub input_offset: u32,
        pub in_len: u32,
        pub in_channels: u32,
        pub in_height: u32,
        pub in_width: u32,
        pub act_offset: u32,
        pub act_len: u32,
        pub plane: u32,
        pub images: u32,
        pub steps: u32,
        pub blur_every: u32,
        pub counter_off: u32,
        pub consts_off: u32,
        pub image_off: u32,
        pub jitter_off: u32,
        pub history_off: u32,
    }

    /// Twin of `RangeEntry` (a storage array element, so 8 bytes is fine there).
    in "value_range.wgsl" struct RangeEntry {
        pub offset: u32,
        pub len: u32,
    }

    /// Twin of `Op`: one operation of a fused walk. `head` = (kind, range slot or
    /// [`NO_RANGE`], range region offset, floats per image); `body` = the op's own params
    /// struct (one of the above), zero-padded.
    in "fused.wgsl" struct Op {
        pub head: [u32; 4],
        pub body: [u32; 16],
    }

    /// Twin of `FusedParams`: the uniform of one walk of `shaders/fused.wgsl`.
    in "fused.wgsl" struct FusedParams {
        pub count: u32,
        /// Range slots per image (the value-range buffer's stride).
        pub activations: u32,
        pub _pad0: u32,
        pub _pad1: u32,
        pub ops: [Op; FUSED_MAX_OPS],
    }
}

/// Floats of value-range partials a conv block kernel writes per image and workgroup: a
/// (min, max) pair for its conv, batch-norm, ReLU and pool outputs. Twin of
/// `PARTIAL_FLOATS` in `shaders/conv2d_tiled.wgsl` and `shaders/fused.wgsl`.
pub const BLOCK_PARTIAL_FLOATS: u32 = 8;

/// Invocations of a fused walk's workgroup. Twin of `WG` in `shaders/fused.wgsl`.
pub const FUSED_WORKGROUP: u32 = 64;

/// Ops one walk holds. Twin of `MAX_OPS` in `shaders/fused.wgsl`.
pub const FUSED_MAX_OPS: usize = 48;

/// `Op::head[1]` of an op whose output needs no value range.
pub const NO_RANGE: u32 = u32::MAX;

/// What a fused op does. Twins of the `OP_*` constants in `shaders/fused.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedOpKind {
    /// Only the value range of a region (an input, a flatten alias, an unfused layer's).
    Range = 0,
    Conv = 1,
    Relu = 2,
    Pool = 3,
    Dense = 4,
    Softmax = 5,
    GradCam = 6,
    /// The value range of a slot from the per-workgroup partials a conv block kernel
    /// wrote; body = (slot, partials offset, workgroups per image, pair 0/1/2/3).
    Partials = 7,
    /// A pointwise layer other than ReLU; body = [`PointwiseParams`].
    Pointwise = 8,
}

impl FusedOpKind {
    pub const ALL: [FusedOpKind; 9] = [
        FusedOpKind::Range,
        FusedOpKind::Conv,
        FusedOpKind::Relu,
        FusedOpKind::Pool,
        FusedOpKind::Dense,
        FusedOpKind::Softmax,
        FusedOpKind::GradCam,
        FusedOpKind::Partials,
        FusedOpKind::Pointwise,
    ];

    /// The WGSL constant's name.
    pub fn wgsl_name(self) -> &'static str {
        match self {
            FusedOpKind::Range => "OP_RANGE",
            FusedOpKind::Conv => "OP_CONV",
            FusedOpKind::Relu => "OP_RELU",
            FusedOpKind::Pool => "OP_POOL",
            FusedOpKind::Dense => "OP_DENSE",
            FusedOpKind::Softmax => "OP_SOFTMAX",
            FusedOpKind::GradCam => "OP_CAM",
            FusedOpKind::Partials => "OP_PARTIALS",
            FusedOpKind::Pointwise => "OP_POINTWISE",
        }
    }
}

/// `PointwiseParams::op`. Twins of the `POINTWISE_*` constants in `shaders/params.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointwiseOp {
    LeakyRelu = 0,
    Sigmoid = 1,
    Tanh = 2,
    /// `x · scale + shift` per channel: batch norm folded from its running statistics.
    Affine = 3,
}

impl PointwiseOp {
    pub const ALL: [PointwiseOp; 4] = [
        PointwiseOp::LeakyRelu,
        PointwiseOp::Sigmoid,
        PointwiseOp::Tanh,
        PointwiseOp::Affine,
    ];

    /// The WGSL constant's name.
    pub fn wgsl_name(self) -> &'static str {
        match self {
            PointwiseOp::LeakyRelu => "POINTWISE_LEAKY_RELU",
            PointwiseOp::Sigmoid => "POINTWISE_SIGMOID",
            PointwiseOp::Tanh => "POINTWISE_TANH",
            PointwiseOp::Affine => "POINTWISE_AFFINE",
        }
    }
}

/// `PoolParams::mode`. Twins of the `POOL_*` constants in `shaders/params.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Max = 0,
    /// Average; padded zeros do not count in the divisor.
    Average = 1,
    /// Average with PyTorch's `count_include_pad`.
    AverageWithPadding = 2,
    /// The mean of each channel's whole plane.
    GlobalAverage = 3,
}

impl PoolMode {
    pub const ALL: [PoolMode; 4] = [
        PoolMode::Max,
        PoolMode::Average,
        PoolMode::AverageWithPadding,
        PoolMode::GlobalAverage,
    ];

    /// The WGSL constant's name.
    pub fn wgsl_name(self) -> &'static str {
        match self {
            PoolMode::Max => "POOL_MAX",
            PoolMode::Average => "POOL_AVG",
            PoolMode::AverageWithPadding => "POOL_AVG_WITH_PAD",
            PoolMode::GlobalAverage => "POOL_GLOBAL_AVG",
        }
    }
}

impl Op {
    /// An op of `kind` whose body is `params` (at most 16 words).
    pub fn new<P: Pod>(kind: FusedOpKind, params: &P) -> Op {
        let words: &[u32] = bytemuck::cast_slice(bytemuck::bytes_of(params));
        let mut body = [0u32; 16];
        body[..words.len()].copy_from_slice(words);
        Op {
            head: [kind as u32, NO_RANGE, 0, 0],
            body,
        }
    }

    /// The op also reduces the value range of slot `slot`: `len` floats per image from
    /// `offset`.
    pub fn with_range(mut self, slot: u32, offset: u32, len: u32) -> Op {
        self.head[1..].copy_from_slice(&[slot, offset, len]);
        self
    }

    pub fn kind(&self) -> u32 {
        self.head[0]
    }

    /// The body read back as the params struct `P`.
    pub fn body<P: Pod>(&self) -> P {
        bytemuck::pod_read_unaligned(&bytemuck::cast_slice(&self.body)[..size_of::<P>()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_structs_are_whole_16_byte_rows() {
        for twin in twins() {
            if twin.name != "RangeEntry" {
                assert_eq!(twin.size % 16, 0, "{}", twin.name);
            }
        }
    }

    #[test]
    fn every_params_struct_fits_an_op_body() {
        let bodies = [
            size_of::<ConvParams>(),
            size_of::<EltwiseParams>(),
            size_of::<PointwiseParams>(),
            size_of::<PoolParams>(),
            size_of::<DenseParams>(),
            size_of::<SoftmaxParams>(),
            size_of::<CamParams>(),
        ];
        assert!(bodies.iter().all(|&size| size <= 64), "{bodies:?}");
        let op = Op::new(
            FusedOpKind::Dense,
            &DenseParams {
                in_features: 7,
                ..Default::default()
            },
        );
        assert_eq!(op.body::<DenseParams>().in_features, 7);
        assert_eq!(op.head, [FusedOpKind::Dense as u32, NO_RANGE, 0, 0]);
    }

    #[test]
    fn pointwise_ops_and_pool_modes_match_the_wgsl_constants() {
        let prelude = include_str!("../../shaders/params.wgsl");
        let ops = PointwiseOp::ALL.map(|op| (op.wgsl_name(), op as u32));
        let modes = PoolMode::ALL.map(|mode| (mode.wgsl_name(), mode as u32));
        for (name, value) in ops.into_iter().chain(modes) {
            let line = format!("const {name}: u32 = {value}u;");
            assert!(prelude.contains(&line), "params.wgsl lacks `{line}`");
        }
        let line = format!("const PARTIAL_FLOATS: u32 = {BLOCK_PARTIAL_FLOATS}u;");
        for (file, text) in [
            (
                "conv2d_tiled",
                include_str!("../../shaders/conv2d_tiled.wgsl"),
            ),
            ("fused", include_str!("../../shaders/fused.wgsl")),
        ] {
            assert!(text.contains(&line), "{file}.wgsl lacks `{line}`");
        }
    }
}
