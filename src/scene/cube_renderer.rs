//! [`CubeRenderer`]: the cube scene. Built once per network (pipelines, bind group, the
//! per-layer and per-tile tables); a frame is one small uniform write
//! ([`CubeRenderer::prepare`]) and one or two draws ([`CubeRenderer::draw`]) that read the
//! activation arena, the value ranges and the Grad-CAM buffer where the compute kernels
//! left them. The window draws into its surface; `offscreen` draws into a texture.
//!
//! Two [`DrawMode`]s draw the same cubes with the same formulas (see `shaders/cubes.wgsl`):
//! one instance per cube (GPUs), or one instance per channel tile whose fragment shader
//! walks the tile's cells (CPU rasterisers, where 43 000 per-cube primitives cost
//! ~150-250 ms a frame on two cores; `benches/render.rs` measures both).

use std::sync::atomic::{AtomicU32, Ordering};

use glam::{Mat4, Vec3};
use wgpu::util::DeviceExt;

use super::SceneError;
use super::camera::Camera;
use super::gpu_types::{FrameUniform, LayerUniform, NONE, TileUniform};
use super::layout::{CUBE_FOOTPRINT, MIN_HEIGHT_CELLS, SceneLayout};
use crate::colormap::ColorMap;
use crate::gpu::{GpuError, GpuNetwork};

/// Depth buffer format of every scene pass.
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
/// The default background, sRGB 0..1: a calm blue-black that lets viridis' dark purples
/// still stand out.
pub const DEFAULT_BACKGROUND: [f32; 3] = [0.071, 0.078, 0.098];
/// How long a new input's wave takes from the input to the outputs.
pub const DEFAULT_WAVE_SECONDS: f32 = 0.5;
/// Vertices of one cube instance: one triangle covering its screen rectangle, ray-cast
/// per pixel (see `shaders/cubes.wgsl`).
pub const VERTICES_PER_CUBE: u32 = 3;
/// Vertices of one tile instance: the three camera-facing faces of its box as a strip.
pub const VERTICES_PER_TILE: u32 = 9;
/// Light from the upper left front, so the three visible faces of the default view get
/// three distinct shades; ambient share of the light.
const LIGHT_DIRECTION: Vec3 = Vec3::new(-0.35, 1.0, 0.6);
const AMBIENT: f32 = 0.4;

fn color_map_coefficients(map: ColorMap) -> [[f32; 4]; 7] {
    // The CPU picks the map, so the shader makes no per-pixel choice; vec4 for alignment.
    map.coefficients().map(|[r, g, b]| [r, g, b, 0.0])
}

/// How much lighter than the background the tile plates are (sRGB units).
const PLATE_LIFT: [f32; 3] = [0.045, 0.05, 0.062];

/// How the cubes are drawn; both give the same picture (`tests/scene.rs` compares them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawMode {
    /// One instance per cube, all in one instanced draw (`draw(0..3, 0..cubes)`); the
    /// vertex shader reads each cube's value from the arena. What GPUs are built for.
    Instanced,
    /// One instance per channel tile (148 for the MNIST model); the fragment shader reads
    /// the arena along each pixel's ray through the tile's cells. On Mesa's lavapipe every
    /// vertex and triangle costs ~0.3-0.5 µs on a single thread and every 4×4 pixel block a
    /// whole fragment-shader call, so 43 000 cube instances take ~150 ms a frame on two
    /// cores; tiles take a small fraction of that. The default on CPU adapters.
    Tiles,
}

/// What the render pipelines are built for. [`RendererConfig::for_adapter`] picks, for a
/// GPU, 4× MSAA where the adapter can multisample both the colour format and the depth
/// format, and per-cube instances; for a CPU adapter (lavapipe), tiles and no MSAA:
/// multisampled targets alone cost lavapipe ~45 ms a frame at 1280×720 (clear and
/// resolve of four samples a pixel), three times the whole frame budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RendererConfig {
    pub color_format: wgpu::TextureFormat,
    /// 1 (no MSAA) or 4, supported by the adapter for `color_format` and [`DEPTH_FORMAT`].
    /// The fragment shader tests the 4 standard sample positions itself, so other counts
    /// are refused.
    pub sample_count: u32,
    pub draw_mode: DrawMode,
}

impl RendererConfig {
    pub fn for_adapter(adapter: &wgpu::Adapter, color_format: wgpu::TextureFormat) -> Self {
        let four = |format| {
            adapter
                .get_texture_format_features(format)
                .flags
                .sample_count_supported(4)
        };
        let cpu = adapter.get_info().device_type == wgpu::DeviceType::Cpu;
        let sample_count = if !cpu && four(color_format) && four(DEPTH_FORMAT) {
            4
        } else {
            1
        };
        let draw_mode = if cpu {
            DrawMode::Tiles
        } else {
            DrawMode::Instanced
        };
        RendererConfig {
            color_format,
            sample_count,
            draw_mode,
        }
    }
}

/// A new input's wave: it leaves the input at `start` (seconds, on the clock of
/// [`SceneSettings::time`]) and reaches the outputs `duration` seconds later.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wave {
    pub start: f32,
    pub duration: f32,
}

impl Wave {
    /// A wave starting now, [`DEFAULT_WAVE_SECONDS`] long.
    pub fn starting_at(start: f32) -> Wave {
        Wave {
            start,
            duration: DEFAULT_WAVE_SECONDS,
        }
    }

    /// Whether the wave is still travelling at `time` (the window keeps redrawing).
    pub fn running(&self, time: f32) -> bool {
        time < self.start + self.duration
    }
}

/// Which Grad-CAM map tints the scene. `block` must be the conv block the last inference
/// ran Grad-CAM for (the CAM buffer holds only that block's map); an index past the
/// model's blocks draws no tint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CamTint {
    /// Index into `Model::conv_blocks`.
    pub block: usize,
    /// Tint the block's output layer with the low-resolution map.
    pub layer: bool,
    /// Tint the input layer with the input-sized heatmap.
    pub input: bool,
}

/// Everything about a frame that is not the camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SceneSettings {
    /// Seconds on any clock the caller likes; only differences with [`Wave::start`] matter.
    pub time: f32,
    /// `None`: every layer shown in full (animation off, or the wave has passed).
    pub wave: Option<Wave>,
    pub color_map: ColorMap,
    pub grad_cam: Option<CamTint>,
    /// sRGB 0..1; also the colour the far end of the scene fades towards. Clear the pass
    /// with [`CubeRenderer::clear_color`] of the same value.
    pub background: [f32; 3],
    /// Strength of the distance fade, 0..1.
    pub fog: f32,
}

impl Default for SceneSettings {
    fn default() -> Self {
        SceneSettings {
            time: 0.0,
            wave: None,
            color_map: ColorMap::Viridis,
            grad_cam: None,
            background: DEFAULT_BACKGROUND,
            fog: 0.55,
        }
    }
}

/// One frame's input to [`CubeRenderer::prepare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameParams {
    pub view_proj: Mat4,
    pub eye: Vec3,
    /// Size of the scene's viewport in pixels (the fragment shader turns pixels into rays).
    pub viewport: [f32; 2],
    /// Top-left corner of that viewport in the target, in pixels: the window draws the
    /// scene only in the area its panels leave free.
    pub origin: [f32; 2],
    /// Distances from the eye where the fade starts and where it is complete.
    pub fog_range: [f32; 2],
    pub settings: SceneSettings,
}

impl FrameParams {
    /// The camera's view of a `viewport`-sized target (pixels, width and height).
    pub fn new(camera: &Camera, viewport: [f32; 2], settings: SceneSettings) -> FrameParams {
        let [w, h] = viewport;
        let aspect = if w > 0.0 && h > 0.0 { w / h } else { 1.0 };
        let d = camera.pose().distance;
        FrameParams {
            view_proj: camera.view_proj(aspect),
            eye: camera.eye(),
            viewport: [w.max(1.0), h.max(1.0)],
            origin: [0.0; 2],
            fog_range: [d * 0.8, d * 2.4],
            settings,
        }
    }

    /// The same view drawn into the part of the target whose top-left corner is `origin`.
    pub fn at(self, origin: [f32; 2]) -> FrameParams {
        FrameParams { origin, ..self }
    }

    /// The pass's viewport rectangle: x, y, width, height in pixels.
    pub fn viewport_rect(&self) -> [f32; 4] {
        [
            self.origin[0],
            self.origin[1],
            self.viewport[0],
            self.viewport[1],
        ]
    }
}

/// The cubes of one picked cell and its influences, as global instance indices
/// (see `SceneLayout::instance_of`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HighlightSet {
    /// Drawn whitish.
    pub picked: Option<u32>,
    /// Drawn brighter; every other cube is dimmed.
    pub instances: Vec<u32>,
}

/// Depth (and, with MSAA, multisampled colour) textures of one viewport size. The window
/// keeps one and calls [`SceneTargets::resize`] when the surface changes.
pub struct SceneTargets {
    depth: wgpu::TextureView,
    msaa: Option<wgpu::TextureView>,
    size: (u32, u32),
    config: RendererConfig,
}

impl SceneTargets {
    /// Zero sizes are raised to 1 (a minimised window should skip drawing instead).
    pub fn new(device: &wgpu::Device, config: RendererConfig, width: u32, height: u32) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let texture = |label: &str, format, usage| {
            device
                .create_texture(&wgpu::TextureDescriptor {
                    label: Some(label),
                    size: wgpu::Extent3d {
                        width,
                        height,
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: config.sample_count,
                    dimension: wgpu::TextureDimension::D2,
                    format,
                    usage,
                    view_formats: &[],
                })
                .create_view(&Default::default())
        };
        let attachment = wgpu::TextureUsages::RENDER_ATTACHMENT;
        SceneTargets {
            depth: texture("scene depth", DEPTH_FORMAT, attachment),
            msaa: (config.sample_count > 1)
                .then(|| texture("scene msaa colour", config.color_format, attachment)),
            size: (width, height),
            config,
        }
    }

    /// Recreates the textures if the size changed.
    pub fn resize(&mut self, device: &wgpu::Device, width: u32, height: u32) {
        if self.size != (width.max(1), height.max(1)) {
            *self = SceneTargets::new(device, self.config, width, height);
        }
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }
}

/// Where the CAM tint reads from; see [`CubeRenderer::frame_uniform`].
#[derive(Clone, Debug)]
struct CamOffsets {
    /// Activation index of each conv block's output.
    block_outputs: Vec<u32>,
    low_res: u32,
    heatmap: u32,
}

/// The instanced cube scene of one [`GpuNetwork`]; see the module docs.
pub struct CubeRenderer {
    config: RendererConfig,
    /// The per-frame uniform, bound as a read-only storage buffer: rewriting a *uniform*
    /// buffer every frame leaked about 200 KiB a frame on lavapipe (Mesa 22.3, found with
    /// `cnnviz soak`); a storage binding of the same bytes does not.
    frame: wgpu::Buffer,
    highlight: wgpu::Buffer,
    highlight_words: usize,
    bind_group: wgpu::BindGroup,
    cube_pipeline: wgpu::RenderPipeline,
    tile_pipeline: wgpu::RenderPipeline,
    plate_pipeline: wgpu::RenderPipeline,
    tile_count: u32,
    instance_count: u32,
    cam: CamOffsets,
    /// Whether the highlight set is shown, and the picked instance; set by
    /// [`CubeRenderer::set_highlight`], read by [`CubeRenderer::prepare`]. Atomics keep
    /// the renderer `Sync` for a window that shares it.
    highlight_on: AtomicU32,
    picked: AtomicU32,
}

fn to_u32(value: u64, what: &str) -> Result<u32, SceneError> {
    u32::try_from(value).map_err(|_| SceneError::TooLarge(format!("{what} {value} exceeds u32")))
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// The device can bind what the scene needs, and the sample count is one the shader knows.
fn check_device(device: &wgpu::Device, config: RendererConfig) -> Result<(), SceneError> {
    let limits = device.limits();
    if limits.max_storage_buffers_per_shader_stage < 5 {
        return Err(SceneError::Unsupported(format!(
            "the scene binds 5 storage buffers in the vertex stage; this device allows {}",
            limits.max_storage_buffers_per_shader_stage
        )));
    }
    if config.sample_count != 1 && config.sample_count != 4 {
        return Err(SceneError::Unsupported(format!(
            "MSAA with {} samples; the scene draws with 1 or 4",
            config.sample_count
        )));
    }
    Ok(())
}

/// The per-layer table the shaders index and the per-channel tiles under the cubes.
struct SceneTables {
    layers: Vec<LayerUniform>,
    tiles: Vec<TileUniform>,
    /// Real tiles (`tiles` holds a placeholder when there are none).
    tile_count: u32,
}

impl SceneTables {
    fn new(network: &GpuNetwork, layout: &SceneLayout) -> Result<SceneTables, SceneError> {
        let arena = network.layout();
        let count = layout.layers.len().max(1) as f32;
        // Each layer rises over two slots of the wave; neighbours overlap by one.
        let slot = 1.0 / (count + 1.0);
        let mut table = Vec::with_capacity(layout.layers.len());
        let mut tiles: Vec<TileUniform> = Vec::new();
        for (k, l) in layout.layers.iter().enumerate() {
            table.push(LayerUniform {
                origin: [l.origin.x, l.origin.y, l.origin.z, l.cell],
                steps: [
                    l.tile_step.x,
                    l.tile_step.y,
                    l.cell * CUBE_FOOTPRINT,
                    l.max_height,
                ],
                arena_offset: to_u32(arena.image_offset(l.activation, 0), "arena offset")?,
                range_offset: to_u32(arena.range_offset(l.activation, 0), "range offset")?,
                instance_start: l.instance_start,
                activation: l.activation as u32,
                channels: l.channels as u32,
                rows: l.rows as u32,
                cols: l.cols as u32,
                len: to_u32(l.len as u64, "layer length")?,
                min_height: MIN_HEIGHT_CELLS * l.cell,
                reveal_start: k as f32 * slot,
                reveal_end: (k as f32 + 2.0) * slot,
                tile_cols: l.tile_cols as u32,
            });
            let size = l.tile_size();
            for c in 0..l.channels {
                let o = l.tile_origin(c);
                tiles.push(TileUniform {
                    rect: [o.x, o.z, o.x + size.x, o.z + size.y],
                    layer: k as u32,
                    channel: c as u32,
                    // The plate reaches a little past the outer cubes of its tile.
                    margin: l.cell * 0.45,
                    _pad: 0,
                });
            }
        }
        // Empty storage bindings are invalid; a model always has an input layer, but the
        // renderer should not panic over one that somehow has none.
        if table.is_empty() {
            table.push(LayerUniform::default());
        }
        let tile_count = tiles.len() as u32;
        if tiles.is_empty() {
            tiles.push(TileUniform::default());
        }
        Ok(SceneTables {
            layers: table,
            tiles,
            tile_count,
        })
    }
}

/// The scene's own buffers (the arena, ranges and CAM are the network's).
struct SceneBuffers {
    frame: wgpu::Buffer,
    layers: wgpu::Buffer,
    highlight: wgpu::Buffer,
    tiles: wgpu::Buffer,
}

impl SceneBuffers {
    fn new(device: &wgpu::Device, tables: &SceneTables, highlight_words: usize) -> SceneBuffers {
        let frame = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("scene frame"),
            size: size_of::<FrameUniform>() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let layers = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("scene layers"),
            contents: bytemuck::cast_slice(&tables.layers),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let highlight = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("scene highlight mask"),
            size: highlight_words as u64 * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let tile_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("scene tiles"),
            contents: bytemuck::cast_slice(&tables.tiles),
            usage: wgpu::BufferUsages::STORAGE,
        });
        SceneBuffers {
            frame,
            layers,
            highlight,
            tiles: tile_buffer,
        }
    }
}

fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    // The tile draw reads the arena in the fragment stage, the cube draw in the vertex
    // stage.
    let storage = |binding| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("scene"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(size_of::<FrameUniform>() as u64),
                },
                count: None,
            },
            storage(1),
            storage(2),
            storage(3),
            storage(4),
            storage(5),
            storage(6),
        ],
    })
}

/// Binds the frame uniform, the network's arena, ranges and CAM, the highlight mask, the
/// tiles and the layer table, in the order `shaders/cubes.wgsl` declares them.
fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    network: &GpuNetwork,
    buffers: &SceneBuffers,
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("scene"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: buffers.frame.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: network.activation_buffer().as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: network.value_range_buffer().as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: network.cam_buffer().as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 4,
                resource: buffers.highlight.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 5,
                resource: buffers.tiles.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 6,
                resource: buffers.layers.as_entire_binding(),
            },
        ],
    })
}

/// The cube, tile and plate pipelines, sharing one shader module and layout.
struct ScenePipelines {
    cubes: wgpu::RenderPipeline,
    tiles: wgpu::RenderPipeline,
    plates: wgpu::RenderPipeline,
}

impl ScenePipelines {
    fn new(
        device: &wgpu::Device,
        bind_group_layout: &wgpu::BindGroupLayout,
        config: RendererConfig,
    ) -> ScenePipelines {
        let shader = device.create_shader_module(wgpu::include_wgsl!("../../shaders/cubes.wgsl"));
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("scene"),
            bind_group_layouts: &[Some(bind_group_layout)],
            immediate_size: 0,
        });
        // Target-dependent choices are pipeline constants, so the CPU rasteriser, which runs
        // both sides of every branch, compiles only the side it needs.
        let constants = [
            (
                "ENCODE_SRGB",
                f64::from(u8::from(!config.color_format.is_srgb())),
            ),
            ("SAMPLES", f64::from(config.sample_count)),
        ];
        let options = || wgpu::PipelineCompilationOptions {
            constants: &constants,
            zero_initialize_workgroup_memory: false,
        };
        let pipeline = |label: &str, topology, vs, fs| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some(vs),
                    compilation_options: options(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState {
                    topology,
                    strip_index_format: None,
                    front_face: wgpu::FrontFace::Ccw,
                    // Cube triangles face either way (their corners are computed), tile
                    // boxes are mirrored towards the eye (winding flips), plates are seen
                    // from above and below.
                    cull_mode: None,
                    unclipped_depth: false,
                    polygon_mode: wgpu::PolygonMode::Fill,
                    conservative: false,
                },
                depth_stencil: Some(wgpu::DepthStencilState {
                    format: DEPTH_FORMAT,
                    depth_write_enabled: Some(true),
                    depth_compare: Some(wgpu::CompareFunction::Less),
                    stencil: Default::default(),
                    bias: Default::default(),
                }),
                multisample: wgpu::MultisampleState {
                    count: config.sample_count,
                    mask: !0,
                    alpha_to_coverage_enabled: false,
                },
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some(fs),
                    compilation_options: options(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: config.color_format,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let cubes = pipeline(
            "scene cubes",
            wgpu::PrimitiveTopology::TriangleList,
            "vs_cube",
            "fs_cube",
        );
        let tiles = pipeline(
            "scene tiles",
            wgpu::PrimitiveTopology::TriangleStrip,
            "vs_tile",
            "fs_tile",
        );
        let plates = pipeline(
            "scene plates",
            wgpu::PrimitiveTopology::TriangleStrip,
            "vs_plate",
            "fs_plate",
        );
        ScenePipelines {
            cubes,
            tiles,
            plates,
        }
    }
}

/// Where the Grad-CAM maps of image 0 lie, and which layer each conv block ends at.
fn cam_offsets(network: &GpuNetwork) -> Result<CamOffsets, SceneError> {
    let cam_layout = network.cam_layout();
    Ok(CamOffsets {
        block_outputs: network
            .conv_blocks()
            .iter()
            .map(|b| b.output_layer as u32 + 1)
            .collect(),
        low_res: to_u32(cam_layout.low_res.image_offset(0), "CAM offset")?,
        heatmap: to_u32(cam_layout.heatmap.image_offset(0), "CAM offset")?,
    })
}

impl CubeRenderer {
    /// Builds every pipeline and buffer for drawing `network` laid out by `layout` (which
    /// must come from the same model: its arena table is checked against the network's).
    /// wgpu validation and out-of-memory errors come back as errors, not panics.
    pub fn new(
        device: &wgpu::Device,
        network: &GpuNetwork,
        layout: &SceneLayout,
        config: RendererConfig,
    ) -> Result<CubeRenderer, SceneError> {
        if layout.arena != *network.layout() {
            return Err(SceneError::LayoutMismatch);
        }
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let built = Self::build(device, network, layout, config);
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        let renderer = built?;
        let during = "creating the cube renderer".to_string();
        if let Some(e) = oom {
            return Err(SceneError::Gpu(GpuError::OutOfMemory {
                during,
                message: e.to_string(),
            }));
        }
        if let Some(e) = validation {
            return Err(SceneError::Gpu(GpuError::Validation {
                during,
                message: e.to_string(),
            }));
        }
        Ok(renderer)
    }

    /// The steps, in order: check the device, derive the per-layer and per-tile tables from
    /// the layout, create the buffers, bind them with the network's arena, build the three
    /// pipelines, and note where Grad-CAM lives.
    fn build(
        device: &wgpu::Device,
        network: &GpuNetwork,
        layout: &SceneLayout,
        config: RendererConfig,
    ) -> Result<CubeRenderer, SceneError> {
        check_device(device, config)?;
        let tables = SceneTables::new(network, layout)?;
        let instance_count = layout.instance_count();
        let highlight_words = (instance_count as usize).div_ceil(32).max(1);
        let buffers = SceneBuffers::new(device, &tables, highlight_words);
        let bind_group_layout = bind_group_layout(device);
        let bind_group = bind_group(device, &bind_group_layout, network, &buffers);
        let pipelines = ScenePipelines::new(device, &bind_group_layout, config);
        Ok(CubeRenderer {
            config,
            frame: buffers.frame,
            highlight: buffers.highlight,
            highlight_words,
            bind_group,
            cube_pipeline: pipelines.cubes,
            tile_pipeline: pipelines.tiles,
            plate_pipeline: pipelines.plates,
            tile_count: tables.tile_count,
            instance_count,
            cam: cam_offsets(network)?,
            highlight_on: AtomicU32::new(0),
            picked: AtomicU32::new(NONE),
        })
    }

    pub fn config(&self) -> RendererConfig {
        self.config
    }

    /// Cubes drawn per frame (equals [`SceneLayout::instance_count`]).
    pub fn instance_count(&self) -> u32 {
        self.instance_count
    }

    /// Draw calls per frame: plates and cubes, or tiles.
    pub fn draw_calls(&self) -> usize {
        match self.config.draw_mode {
            DrawMode::Instanced => 2,
            DrawMode::Tiles => 1,
        }
    }

    /// The clear colour for `background` (sRGB 0..1) on this renderer's target format
    /// (clear values are linear for an sRGB format).
    pub fn clear_color(&self, background: [f32; 3]) -> wgpu::Color {
        let [r, g, b] = if self.config.color_format.is_srgb() {
            background.map(srgb_to_linear)
        } else {
            background
        };
        wgpu::Color {
            r: r as f64,
            g: g as f64,
            b: b as f64,
            a: 1.0,
        }
    }

    /// The uniform [`CubeRenderer::prepare`] writes, for inspection and tests.
    pub fn frame_uniform(&self, params: &FrameParams) -> FrameUniform {
        let s = &params.settings;
        let light = LIGHT_DIRECTION.normalize();
        let background = s.background.map(srgb_to_linear);
        let plate = [0, 1, 2].map(|i| srgb_to_linear((s.background[i] + PLATE_LIFT[i]).min(1.0)));
        let (mut cam_activation, mut cam_heatmap) = (NONE, NONE);
        if let Some(tint) = s.grad_cam
            && let Some(&output) = self.cam.block_outputs.get(tint.block)
        {
            if tint.layer {
                cam_activation = output;
            }
            if tint.input {
                cam_heatmap = self.cam.heatmap;
            }
        }
        // Rays through NDC points on the far plane: for a perspective matrix the far plane
        // is an affine function of NDC x and y, so three points give the shader every ray.
        let inverse = params.view_proj.inverse();
        let far = |x: f32, y: f32| inverse.project_point3(Vec3::new(x, y, 1.0));
        let (centre, right, up) = (far(0.0, 0.0), far(1.0, 0.0), far(0.0, 1.0));
        let rays = if centre.is_finite() && right.is_finite() && up.is_finite() {
            [centre - params.eye, right - centre, up - centre]
        } else {
            [Vec3::ZERO; 3] // a singular matrix draws no cubes rather than garbage
        };
        let (wave_start, wave_duration) = match s.wave {
            Some(w) if w.duration > 0.0 && w.duration.is_finite() => (w.start, w.duration),
            _ => (0.0, 0.0),
        };
        FrameUniform {
            view_proj: params.view_proj.to_cols_array_2d(),
            eye: params.eye.extend(1.0).to_array(),
            ray_centre: rays[0].extend(0.0).to_array(),
            ray_dx: rays[1].extend(0.0).to_array(),
            ray_dy: rays[2].extend(0.0).to_array(),
            light: [light.x, light.y, light.z, AMBIENT],
            plate: [plate[0], plate[1], plate[2], s.fog.clamp(0.0, 1.0)],
            fog: [background[0], background[1], background[2], 1.0],
            viewport_width: params.viewport[0],
            viewport_height: params.viewport[1],
            time: s.time,
            wave_start,
            wave_duration,
            color_map: color_map_coefficients(s.color_map),
            _pad3: 0,
            cam_activation,
            cam_low_res: self.cam.low_res,
            cam_heatmap,
            highlight: self.highlight_on.load(Ordering::Relaxed),
            picked: self.picked.load(Ordering::Relaxed),
            _pad0: 0,
            fog_near: params.fog_range[0],
            fog_far: params.fog_range[1].max(params.fog_range[0] + 1e-3),
            viewport_x: params.origin[0],
            viewport_y: params.origin[1],
        }
    }

    /// Writes this frame's uniform. Call before the pass that [`CubeRenderer::draw`]s;
    /// wgpu orders the write before the next submission.
    pub fn prepare(&self, queue: &wgpu::Queue, params: &FrameParams) {
        queue.write_buffer(
            &self.frame,
            0,
            bytemuck::bytes_of(&self.frame_uniform(params)),
        );
    }

    /// Shows `set` (or nothing) from the next [`CubeRenderer::prepare`] on: the set's cubes
    /// brightened, the others dimmed, the picked one whitish. Instances past the scene are
    /// ignored.
    pub fn set_highlight(&self, queue: &wgpu::Queue, set: Option<&HighlightSet>) {
        match set {
            None => {
                self.highlight_on.store(0, Ordering::Relaxed);
                self.picked.store(NONE, Ordering::Relaxed);
            }
            Some(set) => {
                let mut mask = vec![0u32; self.highlight_words];
                for &i in set.instances.iter().chain(set.picked.iter()) {
                    if i < self.instance_count {
                        mask[(i / 32) as usize] |= 1 << (i % 32);
                    }
                }
                queue.write_buffer(&self.highlight, 0, bytemuck::cast_slice(&mask));
                self.highlight_on.store(1, Ordering::Relaxed);
                self.picked
                    .store(set.picked.unwrap_or(NONE), Ordering::Relaxed);
            }
        }
    }

    /// Records the scene into `pass`: the plates and every cube in one instanced draw, or
    /// every tile in one instanced draw. The pass must target this renderer's colour format
    /// and sample count, with a [`DEPTH_FORMAT`] depth attachment.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>) {
        pass.set_bind_group(0, &self.bind_group, &[]);
        match self.config.draw_mode {
            DrawMode::Instanced => {
                pass.set_pipeline(&self.plate_pipeline);
                pass.draw(0..4, 0..self.tile_count);
                pass.set_pipeline(&self.cube_pipeline);
                pass.draw(0..VERTICES_PER_CUBE, 0..self.instance_count);
            }
            DrawMode::Tiles => {
                pass.set_pipeline(&self.tile_pipeline);
                pass.draw(0..VERTICES_PER_TILE, 0..self.tile_count);
            }
        }
    }

    /// Begins a pass on `targets` that clears to `background` and resolves (with MSAA) or
    /// renders into `output`, and draws the scene into it.
    pub fn encode_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        targets: &SceneTargets,
        output: &wgpu::TextureView,
        background: [f32; 3],
    ) {
        self.encode_pass_in(encoder, targets, output, background, None);
    }

    /// [`CubeRenderer::encode_pass`], drawing only inside `viewport` (x, y, width, height
    /// in pixels, the [`FrameParams::viewport_rect`] given to `prepare`); the whole target
    /// is still cleared to the background.
    pub fn encode_pass_in(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        targets: &SceneTargets,
        output: &wgpu::TextureView,
        background: [f32; 3],
        viewport: Option<[f32; 4]>,
    ) {
        let (view, resolve_target, store) = match &targets.msaa {
            // The resolve is all that is kept of the multisampled image.
            Some(msaa) => (msaa, Some(output), wgpu::StoreOp::Discard),
            None => (output, None, wgpu::StoreOp::Store),
        };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("scene"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(self.clear_color(background)),
                    store,
                },
            })],
            depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                view: &targets.depth,
                depth_ops: Some(wgpu::Operations {
                    load: wgpu::LoadOp::Clear(1.0),
                    store: wgpu::StoreOp::Discard,
                }),
                stencil_ops: None,
            }),
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        if let Some([x, y, w, h]) = viewport {
            let (width, height) = targets.size();
            // wgpu rejects a viewport reaching outside the target.
            let x = x.clamp(0.0, width as f32);
            let y = y.clamp(0.0, height as f32);
            let w = w.min(width as f32 - x);
            let h = h.min(height as f32 - y);
            if w < 1.0 || h < 1.0 {
                return;
            }
            pass.set_viewport(x, y, w, h, 0.0, 1.0);
        }
        self.draw(&mut pass);
    }
}

// The window may share the renderer between threads, like the network.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CubeRenderer>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shader_colour_maps_are_the_cpu_colour_maps() {
        for map in [ColorMap::Viridis, ColorMap::Turbo] {
            let c = color_map_coefficients(map);
            for i in 0..=20 {
                let t = i as f32 / 20.0;
                let shader: Vec<f32> = (0..3)
                    .map(|ch| {
                        c.iter()
                            .rev()
                            .fold(0.0f32, |acc, k| acc * t + k[ch])
                            .clamp(0.0, 1.0)
                    })
                    .collect();
                for (a, b) in shader.iter().zip(map.rgb(t)) {
                    assert!((a - b).abs() < 1e-4, "{map:?} at {t}: {a} vs {b}");
                }
            }
        }
    }
}
