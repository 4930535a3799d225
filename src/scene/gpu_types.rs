//! Rust twins of the structs in `shaders/cubes.wgsl`, field for field and in the same
//! order. Sizes are multiples of 16 bytes (WGSL uniform layout), vectors are `[f32; 4]` at
//! 16-byte offsets, so `#[repr(C)]` adds no padding the shader does not expect.
//! `tests/scene.rs` checks every size against naga's layout of the shader.

use bytemuck::{Pod, Zeroable};

/// "None" for the `u32` fields that may name nothing (`NONE` in the shader).
pub const NONE: u32 = u32::MAX;

/// Twin of `Frame`: everything that changes per frame, written once per frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct FrameUniform {
    pub view_proj: [[f32; 4]; 4],
    /// xyz: camera position.
    pub eye: [f32; 4],
    /// The ray through NDC `(x, y)` is `ray_centre + x · ray_dx + y · ray_dy` (xyz).
    pub ray_centre: [f32; 4],
    pub ray_dx: [f32; 4],
    pub ray_dy: [f32; 4],
    /// xyz: unit vector towards the light; w: ambient share.
    pub light: [f32; 4],
    /// rgb: linear plate colour; a: fog strength.
    pub plate: [f32; 4],
    /// rgb: linear background colour (the fog's colour).
    pub fog: [f32; 4],
    /// The chosen colour map's polynomial coefficients, constant term first (rgb; a = 0).
    pub color_map: [[f32; 4]; 7],
    pub viewport_width: f32,
    pub viewport_height: f32,
    pub time: f32,
    pub wave_start: f32,
    pub wave_duration: f32,
    pub _pad3: u32,
    pub cam_activation: u32,
    pub cam_low_res: u32,
    pub cam_heatmap: u32,
    pub highlight: u32,
    pub picked: u32,
    pub _pad0: u32,
    pub fog_near: f32,
    pub fog_far: f32,
    /// Top-left corner of the scene's viewport in the target, in pixels.
    pub viewport_x: f32,
    pub viewport_y: f32,
}

/// Twin of `Layer`: one drawn activation, in a storage table written once at start-up.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct LayerUniform {
    /// xyz: minimum corner of tile 0; w: cell edge.
    pub origin: [f32; 4],
    /// x, y: tile step along world x and z; z: footprint edge; w: max height.
    pub steps: [f32; 4],
    pub arena_offset: u32,
    pub range_offset: u32,
    pub instance_start: u32,
    pub activation: u32,
    pub channels: u32,
    pub rows: u32,
    pub cols: u32,
    pub len: u32,
    pub min_height: f32,
    pub reveal_start: f32,
    pub reveal_end: f32,
    pub tile_cols: u32,
}

/// Twin of `Tile`: one channel tile (the unit of the tile draw and of the plates).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct TileUniform {
    /// x0, z0, x1, z1 of the tile's cells on the ground.
    pub rect: [f32; 4],
    pub layer: u32,
    pub channel: u32,
    /// How far the plate reaches past the cells.
    pub margin: f32,
    pub _pad: u32,
}

const _: () = assert!(size_of::<FrameUniform>() == 352);
const _: () = assert!(size_of::<LayerUniform>() == 80);
const _: () = assert!(size_of::<TileUniform>() == 32);
