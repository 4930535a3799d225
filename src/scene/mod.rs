//! The 3D layer scene: every activation of every layer as one cube, drawn instanced
//! straight from the activation arena the compute kernels wrote (no trip through the CPU).
//! Flatten outputs alias the map before them and are not drawn (see `layout`).
//!
//! - [`SceneLayout`] (`layout`): where every cube, board and label goes — pure arithmetic
//!   from the model and the arena table, shared by the renderer, the picker and the overlay.
//! - [`Camera`] (`camera`): orbit, pan, zoom with smooth damping.
//! - [`CubeRenderer`] (`cube_renderer`, `shaders/cubes.wgsl`): pipelines and buffers built
//!   once; per frame [`CubeRenderer::prepare`] writes one small uniform and
//!   [`CubeRenderer::draw`] records one instanced draw for the whole network (one instance
//!   per cube on GPUs, per channel tile on CPU rasterisers: [`DrawMode`]).
//! - `picking`: ray cast, receptive fields, strongest dense weights, highlight sets, and
//!   the hovered value fetched asynchronously.
//! - `offscreen`: the same pass into a texture, read back as an image.
//! - [`SceneUpscaler`] (`upscale`): dynamic resolution, the scene drawn smaller and
//!   stretched over its viewport while a frame misses its budget.
//!
//! The window's frame, in one encoder: `network.encode` (when the input changed),
//! `renderer.prepare`, `renderer.encode_pass` (or `draw` into its own pass), the egui pass,
//! submit.

mod camera;
mod cube_renderer;
pub mod feature_maps;
pub mod gpu_types;
mod layout;
mod offscreen;
mod picking;
mod upscale;

pub use camera::{
    Camera, CameraPose, CameraStep, FOV_Y_DEGREES, HOME_PITCH, HOME_YAW, MAX_PITCH, MIN_PITCH, Ray,
};
pub use cube_renderer::{
    CamTint, CubeRenderer, DEFAULT_BACKGROUND, DEFAULT_WAVE_SECONDS, DEPTH_FORMAT, DrawMode,
    FrameParams, HighlightSet, RendererConfig, SceneSettings, SceneTargets, VERTICES_PER_CUBE,
    VERTICES_PER_TILE, Wave,
};
pub use feature_maps::{FeatureMapImages, FeatureMapTextures};
pub use layout::{
    CUBE_FOOTPRINT, LabelKind, LayerKind, LayerPlacement, MAX_CUBES, MAX_CUBES_PER_LAYER,
    MIN_HEIGHT_CELLS, SceneLabel, SceneLayout,
};
pub use offscreen::{OffscreenTarget, render_offscreen};
pub use picking::{
    CellRegion, DEFAULT_TOP_K, HoveredValue, Pick, ValueReadback, influence, receptive_field,
    strongest_inputs,
};
pub use upscale::SceneUpscaler;

use crate::gpu::GpuError;

/// What can go wrong building or drawing the scene.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error("the scene layout was made for a different model or batch than this GPU network")]
    LayoutMismatch,
    #[error(
        "a {width}×{height} picture cannot be rendered: each side must be 1..={max} on this device"
    )]
    BadSize { width: u32, height: u32, max: u32 },
    #[error("this device cannot draw the scene: {0}")]
    Unsupported(String),
    #[error("the scene is too large: {0}")]
    TooLarge(String),
    #[error("activation {activation} has no element {element}")]
    NoSuchCell { activation: usize, element: usize },
}
