//! The network on the GPU: every layer, softmax, the Grad-CAM backward pass and the view
//! kernels as hand-written WGSL compute shaders (`shaders/`, one file per kernel family),
//! recorded into one command encoder per inference.
//!
//! - [`GpuContext`] makes a headless device (the only code here that does).
//! - [`GpuNetwork`] takes a `&wgpu::Device` from its caller and creates every buffer,
//!   pipeline, uniform and bind group once; [`GpuNetwork::encode`] records an inference,
//!   [`GpuNetwork::run_blocking`] runs one and reads everything back, and
//!   [`ProbabilityReadback`] fetches the probabilities without stalling a frame.
//! - [`ArenaLayout`] / [`CamLayout`] say where every tensor lives, for the 3D view that
//!   binds the activation arena directly.
//! - [`KernelTimer`] times each kernel with timestamp queries.
//! - [`FeatureVis`] optimises inputs to excite channels or classes (feature visualisation)
//!   with the per-layer backward steps and `shaders/feature_vis.wgsl`.
//!
//! How a model becomes launches: `plan` derives the launches from the layer table in named
//! stages (kernel, uniform, workgroups per image): a kernel per layer and direction for
//! batches, or, for a one-image network (the window's), the fused path of `fused_plan`:
//! conv block kernels (conv, ReLU, pool, range partials) and walks of `shaders/fused.wgsl`
//! (one persistent workgroup per image walking the other layers, softmax, the backward
//! pass and Grad-CAM with barriers in between). `buffers` and `dispatch` create the buffers
//! and bind groups, `pipelines` holds one pipeline per WGSL entry point and puts the shared
//! uniform structs (`shaders/params.wgsl`) in front of every compute shader. Every shader
//! puts the image in `workgroup_id.y`, so the batch is only the dispatch size.
//!
//! Every kernel has a CPU twin in [`crate::model::reference`]; `tests/gpu_kernels.rs`
//! compares the two.

pub mod arena;
mod async_readback;
mod buffers;
mod context;
mod conv_gemm;
mod dispatch;
mod error;
pub mod explain;
pub mod feature_vis;
mod fused_plan;
pub mod kernel_choice;
mod layer_plan;
mod limits;
mod network;
pub mod params;
mod pipelines;
mod plan;
mod probability_readback;
mod readback;
mod request;
mod timer;
pub mod tune;
pub mod wait;

pub use arena::{ActivationSlot, ArenaLayout, CamLayout, CamRegion};
pub use async_readback::AsyncReadback;
pub use context::{GpuContext, describe_adapter};
pub use error::GpuError;
pub use feature_vis::{FeatureVis, FeatureVisSnapshot};
pub use kernel_choice::{KernelVariant, LayerChoices, LayerKernel, NetworkOptions};
pub use limits::{LLVMPIPE_LOOP_LIMIT, max_batch_for};
pub use network::GpuNetwork;
pub use pipelines::{Kernel, SHADER_PRELUDE, compute_shader_sources};
pub use probability_readback::{Probabilities, ProbabilityReadback};
pub use readback::{BatchOutput, CamOutput, ImageOutput, OutputPlan};
pub use request::{CamTarget, InferenceRequest};
pub use timer::{KernelTimer, KernelTiming, TimestampPlacement};
