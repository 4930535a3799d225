//! Which implementation runs each conv and dense layer: the direct kernels
//! (`conv2d.wgsl`, `dense.wgsl`: one invocation or workgroup per output, the simplest
//! twins of the CPU code), the tiled ones (`conv2d_tiled.wgsl`, `dense_tiled.wgsl`:
//! register-blocked, staged in workgroup memory, ReLU fused where one follows) or, for
//! convolutions, the batched implicit GEMM (`conv2d_gemm.wgsl`, see `conv_gemm`).
//!
//! The default, [`KernelVariant::Auto`], is the measured choice. A one-image network (the
//! window's) runs the fused interactive path (a conv block kernel per conv block, then
//! persistent-workgroup walks for the rest: 4 dispatches for the shipped model instead of
//! 17; BENCHMARKS.md, "Fused interactive path"). Larger batches ask the autotuner
//! (`super::tune`), which times every candidate of each layer shape on the adapter and
//! caches the fastest on disk; a network built without a cached choice falls back to a
//! rule (the tiled kernel wherever the layer fits it, the direct one elsewhere, except
//! dense layers of a one-image network, which keep the direct reduction).
//! `CNNVIZ_KERNELS=direct|tiled|gemm|auto|fused` or [`NetworkOptions::kernels`] forces a
//! variant so tests and benchmarks can compare them.

use super::GpuError;

/// Rust twins of `TILE`, `OC_BLOCK`, `INPUT_CAP` and `WEIGHT_CAP` in
/// `shaders/conv2d_tiled.wgsl`.
pub const CONV_TILE: u32 = 16;
pub const CONV_OC_BLOCK: u32 = 8;
pub const CONV_INPUT_CAP: u32 = 2048;
pub const CONV_WEIGHT_CAP: u32 = 512;

/// Rust twins of `IMAGES`, `K_CHUNK` and `OUTPUTS` in `shaders/dense_tiled.wgsl`.
pub const DENSE_IMAGES: u32 = 8;
pub const DENSE_K_CHUNK: u32 = 128;
pub const DENSE_OUTPUTS: u32 = 256;

/// The environment variable that overrides [`NetworkOptions::default`].
pub const KERNELS_ENV: &str = "CNNVIZ_KERNELS";

/// Which conv and dense kernels a [`super::GpuNetwork`] records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KernelVariant {
    /// One invocation per output (conv) or one workgroup per output (dense), no fusion.
    Direct,
    /// The tiled kernels wherever a layer fits them (ReLU fused), direct elsewhere.
    Tiled,
    /// The batched implicit-GEMM convolution wherever a layer fits it, the tiled dense
    /// kernels, direct elsewhere.
    Gemm,
    /// The measured best: the fused path for a one-image network (the window's), the
    /// tuner's cached choice per layer for batches (see the module docs).
    #[default]
    Auto,
    /// The fused walks of `shaders/fused.wgsl` (one persistent workgroup per image walks
    /// the layers with barriers in between: two dispatches for forward + Grad-CAM where
    /// every layer fits), the other variants' direct or tiled kernels for layers too long
    /// for one walk.
    Fused,
}

impl KernelVariant {
    pub const ALL: [KernelVariant; 5] = [
        KernelVariant::Direct,
        KernelVariant::Tiled,
        KernelVariant::Gemm,
        KernelVariant::Auto,
        KernelVariant::Fused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KernelVariant::Direct => "direct",
            KernelVariant::Tiled => "tiled",
            KernelVariant::Gemm => "gemm",
            KernelVariant::Auto => "auto",
            KernelVariant::Fused => "fused",
        }
    }

    /// The kernel a conv or dense layer gets under this variant when nothing was measured
    /// (`Auto`: the rule in the module docs, decided by the plan).
    pub fn layer_kernel(self) -> Option<LayerKernel> {
        match self {
            KernelVariant::Direct => Some(LayerKernel::Direct),
            KernelVariant::Tiled => Some(LayerKernel::Tiled),
            KernelVariant::Gemm => Some(LayerKernel::Gemm),
            KernelVariant::Auto | KernelVariant::Fused => None,
        }
    }

    /// `CNNVIZ_KERNELS` when set (an unknown value is an error naming the choices), else
    /// `None`.
    pub fn from_env() -> Result<Option<KernelVariant>, GpuError> {
        match std::env::var(KERNELS_ENV) {
            Ok(value) => value.parse().map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(value)) => Err(GpuError::BadKernelVariant(
                value.to_string_lossy().into_owned(),
            )),
        }
    }

    /// Whether the tiled kernels are wanted where a layer fits them.
    pub(super) fn prefers_tiled(self) -> bool {
        match self {
            KernelVariant::Direct => false,
            KernelVariant::Tiled
            | KernelVariant::Gemm
            | KernelVariant::Auto
            | KernelVariant::Fused => true,
        }
    }

    /// Whether a network of `max_batch` images runs the fused path (`Auto`: a conv block
    /// kernel per conv, walks for the rest; `Fused`: walks only). A one-image network (the
    /// window's) does under `Auto`; batches keep a kernel per layer (BENCHMARKS.md, "Fused
    /// interactive path").
    pub(super) fn fuses(self, max_batch: u32) -> bool {
        match self {
            KernelVariant::Fused => true,
            KernelVariant::Auto => max_batch == 1,
            KernelVariant::Direct | KernelVariant::Tiled | KernelVariant::Gemm => false,
        }
    }
}

/// The implementation one conv or dense layer runs (what the tuner chooses per layer).
/// A layer that does not fit the kernel asked for runs the direct one; `Gemm` on a dense
/// layer means its tiled (batch-blocked) kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKernel {
    Direct,
    Tiled,
    Gemm,
}

impl LayerKernel {
    pub const ALL: [LayerKernel; 3] = [LayerKernel::Direct, LayerKernel::Tiled, LayerKernel::Gemm];

    pub fn name(self) -> &'static str {
        match self {
            LayerKernel::Direct => "direct",
            LayerKernel::Tiled => "tiled",
            LayerKernel::Gemm => "gemm",
        }
    }

    /// The network-wide variant that gives every layer this kernel (the tuner builds one
    /// candidate network per variant and reads each layer's time from it).
    pub fn variant(self) -> KernelVariant {
        match self {
            LayerKernel::Direct => KernelVariant::Direct,
            LayerKernel::Tiled => KernelVariant::Tiled,
            LayerKernel::Gemm => KernelVariant::Gemm,
        }
    }
}

/// Per layer of a model (indexed like `Model::layers`), the kernel to run; `None` (or a
/// missing entry) leaves the layer to the network's [`KernelVariant`].
pub type LayerChoices = Vec<Option<LayerKernel>>;

impl std::str::FromStr for KernelVariant {
    type Err = GpuError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KernelVariant::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| GpuError::BadKernelVariant(s.to_string()))
    }
}

impl std::fmt::Display for KernelVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How [`super::GpuNetwork::with_options`] builds a network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// `None`: `CNNVIZ_KERNELS` if set, else [`KernelVariant::Auto`].
    pub kernels: Option<KernelVariant>,
}

impl NetworkOptions {
    /// Options that force `kernels` whatever the environment says.
    pub fn with_kernels(kernels: KernelVariant) -> Self {
        NetworkOptions {
            kernels: Some(kernels),
        }
    }

    /// The variant these options pick, the environment consulted when they leave it open.
    pub fn resolve(&self) -> Result<KernelVariant, GpuError> {
        match self.kernels {
            Some(kernels) => Ok(kernels),
            None => Ok(KernelVariant::from_env()?.unwrap_or_default()),
        }
    }
}

/// Input channels `conv2d_tiled.wgsl` stages per round for a conv of this shape (its
/// `chunk_channels`), or `None` when not even one channel's patch and weights fit the
/// workgroup arrays (a large kernel or stride): such a layer runs the direct kernel.
pub fn conv_chunk_channels(in_channels: u32, kernel: u32, stride: u32) -> Option<u32> {
    let side = (CONV_TILE - 1).checked_mul(stride)?.checked_add(kernel)?;
    let patch = side.checked_mul(side)?;
    let taps = kernel.checked_mul(kernel)?.checked_mul(CONV_OC_BLOCK / 4)?;
    let chunk = (CONV_INPUT_CAP / patch.max(1)).min(CONV_WEIGHT_CAP / taps.max(1));
    (chunk >= 1).then(|| chunk.min(in_channels.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_by_name_and_reject_anything_else() {
        for variant in KernelVariant::ALL {
            assert_eq!(variant.name().parse::<KernelVariant>().ok(), Some(variant));
        }
        assert_eq!(
            " Tiled ".parse::<KernelVariant>().ok(),
            Some(KernelVariant::Tiled)
        );
        let error = "tile".parse::<KernelVariant>().err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("tile") && e.contains("direct")),
            "{error:?}"
        );
    }

    #[test]
    fn conv_chunks_fill_the_workgroup_arrays() {
        // 3×3 stride 1: an 18×18 patch per channel (2048 / 324 = 6 channels) and 18 vec4s
        // of weights per channel (512 / 18 = 28): six channels a round.
        assert_eq!(conv_chunk_channels(16, 3, 1), Some(6));
        assert_eq!(conv_chunk_channels(1, 3, 1), Some(1));
        // 5×5 stride 2: a 35×35 patch, one channel a round.
        assert_eq!(conv_chunk_channels(7, 5, 2), Some(1));
        // A 7×7 stride-4 window needs a 67×67 patch: more than the input array holds.
        assert_eq!(conv_chunk_channels(3, 7, 4), None);
        assert_eq!(conv_chunk_channels(3, u32::MAX, 1), None);
    }
}
