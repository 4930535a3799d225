//! The overlay's GPU images: every channel of every conv block, the model input and the
//! Grad-CAM heatmap over it, written into textures by `shaders/feature_maps.wgsl` straight
//! from the network's activation arena and CAM buffer. Nothing goes through the CPU: the
//! dispatches are recorded into the frame's encoder after the inference, and egui samples
//! the textures (registered with `egui_wgpu::Renderer::register_native_texture`) in the
//! same submission.
//!
//! Each conv block gets one atlas texture holding its channels on a grid, so a block is
//! one dispatch and one texture however many channels it has; [`ChannelAtlas::uv`] says
//! where channel `c` lies. The images show image 0 of the batch (the window's only one).

use wgpu::util::DeviceExt;

use crate::colormap::ColorMap;
use crate::gpu::GpuNetwork;
use crate::model::{Normalization, Shape};

/// The texture format egui samples without conversion (gamma-encoded bytes) and that
/// WebGPU guarantees as a write-only storage texture.
pub const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Texels of black between atlas cells, so no sampler ever bleeds one channel into the
/// next.
const GUTTER: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum FeatureMapError {
    #[error("this GPU cannot write storage textures from compute shaders")]
    NoStorageTextures,
    #[error("the {what} image would be {width}×{height} texels; this GPU allows {max}")]
    TooLarge {
        what: String,
        width: usize,
        height: usize,
        max: u32,
    },
    #[error("the {0} sits beyond the 4 GiB that the image shader can address")]
    OffsetTooLarge(String),
    #[error("the model input is not an image (channels × height × width)")]
    InputNotAnImage,
}

/// Uniform of one dispatch. Rust twin of `ImageJob` in `shaders/feature_maps.wgsl`, field by
/// field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ImageJob {
    pub source: u32,
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub columns: u32,
    pub cell_x: u32,
    pub cell_y: u32,
    pub heatmap: u32,
    /// Per input channel (R, G, B; the fourth unused).
    pub mean: [f32; 4],
    pub deviation: [f32; 4],
}

/// An image egui can draw: its texture and size in texels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageTexture {
    pub id: egui::TextureId,
    pub width: usize,
    pub height: usize,
}

/// All channels of one conv block's output in one texture, `columns` cells per row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelAtlas {
    pub id: egui::TextureId,
    pub channels: usize,
    /// Size of one channel in texels.
    pub width: usize,
    pub height: usize,
    pub columns: usize,
    /// Size of the whole texture in texels.
    pub size: [usize; 2],
}

impl ChannelAtlas {
    /// Lays out `channels` planes of `width × height` on a near-square grid.
    pub fn new(id: egui::TextureId, channels: usize, width: usize, height: usize) -> Self {
        let columns = (channels as f64).sqrt().ceil().max(1.0) as usize;
        let rows = channels.div_ceil(columns).max(1);
        ChannelAtlas {
            id,
            channels,
            width,
            height,
            columns,
            size: [
                columns * (width + GUTTER) - GUTTER,
                rows * (height + GUTTER) - GUTTER,
            ],
        }
    }

    /// Top-left texel of channel `channel`.
    pub fn origin(&self, channel: usize) -> [usize; 2] {
        [
            (channel % self.columns) * (self.width + GUTTER),
            (channel / self.columns) * (self.height + GUTTER),
        ]
    }

    /// Texture coordinates of channel `channel`, for `egui::Image::uv` or `Painter::image`.
    pub fn uv(&self, channel: usize) -> egui::Rect {
        let [x, y] = self.origin(channel);
        let [w, h] = self.size.map(|s| s as f32);
        egui::Rect::from_min_size(
            egui::pos2(x as f32 / w, y as f32 / h),
            egui::vec2(self.width as f32 / w, self.height as f32 / h),
        )
    }
}

/// What the overlay needs to draw the GPU images: texture ids and geometry, no wgpu
/// objects, so the overlay can be driven (and tested) without a GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMapImages {
    /// The model's input at its H×W: grey, or in colour for a 3-channel model.
    pub input: ImageTexture,
    /// The input with the Grad-CAM heatmap blended over it.
    pub grad_cam: ImageTexture,
    /// One atlas per conv block, in `Model::conv_blocks` order.
    pub blocks: Vec<ChannelAtlas>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryPoint {
    Channels,
    ModelInput,
    GradCam,
}

impl EntryPoint {
    const ALL: [EntryPoint; 3] = [
        EntryPoint::Channels,
        EntryPoint::ModelInput,
        EntryPoint::GradCam,
    ];

    fn name(self) -> &'static str {
        match self {
            EntryPoint::Channels => "channels",
            EntryPoint::ModelInput => "model_input",
            EntryPoint::GradCam => "grad_cam",
        }
    }
}

/// One texture and the dispatch that fills it.
struct ImagePass {
    entry: EntryPoint,
    bind_group: wgpu::BindGroup,
    workgroups: u32,
    texture: wgpu::Texture,
}

/// The textures, pipelines and bind groups of the overlay's GPU images, created once per
/// network; [`FeatureMapTextures::encode`] records one refresh.
pub struct FeatureMapTextures {
    pipelines: Vec<wgpu::ComputePipeline>,
    /// The colour map in use (a uniform) and the constant table it is copied from.
    choice: wgpu::Buffer,
    choices: wgpu::Buffer,
    /// Conv blocks first, then the input, then Grad-CAM.
    passes: Vec<ImagePass>,
    images: FeatureMapImages,
}

impl FeatureMapTextures {
    /// Builds every texture for `network` (on `device`, which must be the network's) and
    /// registers them with `renderer`. `normalization` is the model's, undone to show the
    /// input as drawn.
    pub fn new(
        device: &wgpu::Device,
        network: &GpuNetwork,
        normalization: &Normalization,
        renderer: &mut egui_wgpu::Renderer,
    ) -> Result<Self, FeatureMapError> {
        let limits = device.limits();
        if limits.max_storage_textures_per_shader_stage == 0 {
            return Err(FeatureMapError::NoStorageTextures);
        }
        let layout = network.layout();
        let Shape::Map {
            channels: in_c,
            height: in_h,
            width: in_w,
        } = layout.slots[0].shape
        else {
            return Err(FeatureMapError::InputNotAnImage);
        };
        let offset = |what: &str, floats: u64| {
            u32::try_from(floats).map_err(|_| FeatureMapError::OffsetTooLarge(what.into()))
        };

        let bind_layout = bind_group_layout(device);
        let module =
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/feature_maps.wgsl"));
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("feature maps"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipelines = EntryPoint::ALL
            .iter()
            .map(|entry| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry.name()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry.name()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        let choice = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("feature maps: colour map"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let choices = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("feature maps: colour map table"),
            contents: bytemuck::cast_slice(&[0u32, 1u32]),
            usage: wgpu::BufferUsages::COPY_SRC,
        });

        let builder = PassBuilder {
            device,
            network,
            layout: &bind_layout,
            choice: &choice,
            max_side: limits.max_texture_dimension_2d,
        };
        let mut passes = Vec::new();
        let mut blocks = Vec::new();
        for block in network.conv_blocks() {
            let activation = block.output_layer + 1;
            let mut atlas = ChannelAtlas::new(
                egui::TextureId::default(),
                block.channels,
                block.width,
                block.height,
            );
            let job = ImageJob {
                source: offset(&block.name, layout.image_offset(activation, 0))?,
                width: block.width as u32,
                height: block.height as u32,
                channels: block.channels as u32,
                columns: atlas.columns as u32,
                cell_x: (block.width + GUTTER) as u32,
                cell_y: (block.height + GUTTER) as u32,
                ..Default::default()
            };
            let pass = builder.pass(
                &block.name,
                EntryPoint::Channels,
                job,
                atlas.size,
                block.channels,
            )?;
            atlas.id = register(renderer, device, &pass.texture);
            blocks.push(atlas);
            passes.push(pass);
        }
        let input_job = ImageJob {
            source: offset("input", layout.image_offset(0, 0))?,
            width: in_w as u32,
            height: in_h as u32,
            // Grey for one channel, R, G, B for three.
            channels: in_c.min(3) as u32,
            columns: 1,
            heatmap: offset(
                "Grad-CAM heatmap",
                network.cam_layout().heatmap.image_offset(0),
            )?,
            mean: [0, 1, 2, 3].map(|c| normalization.of_channel(c).0),
            deviation: [0, 1, 2, 3].map(|c| normalization.of_channel(c).1),
            ..Default::default()
        };
        let mut image = |label: &str, entry: EntryPoint| -> Result<ImageTexture, _> {
            let pass = builder.pass(label, entry, input_job, [in_w, in_h], 1)?;
            let id = register(renderer, device, &pass.texture);
            passes.push(pass);
            Ok::<_, FeatureMapError>(ImageTexture {
                id,
                width: in_w,
                height: in_h,
            })
        };
        let input = image("model input", EntryPoint::ModelInput)?;
        let grad_cam = image("Grad-CAM", EntryPoint::GradCam)?;
        Ok(FeatureMapTextures {
            pipelines,
            choice,
            choices,
            passes,
            images: FeatureMapImages {
                input,
                grad_cam,
                blocks,
            },
        })
    }

    /// Texture ids and geometry, for [`crate::ui::OverlayView`].
    pub fn images(&self) -> &FeatureMapImages {
        &self.images
    }

    /// Records the refresh of every image into `encoder`; call it after the network's
    /// `encode` in the same encoder (wgpu orders the passes). The Grad-CAM image is only
    /// meaningful after an inference that ran Grad-CAM.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, color_map: ColorMap) {
        let slot = match color_map {
            ColorMap::Viridis => 0,
            ColorMap::Turbo => 1,
        };
        // Copied in the encoder, like the network's Grad-CAM target, so the choice is
        // ordered with the dispatches and needs no queue.
        encoder.copy_buffer_to_buffer(&self.choices, slot * 4, &self.choice, 0, 4);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("overlay images"),
            timestamp_writes: None,
        });
        for image in &self.passes {
            pass.set_pipeline(&self.pipelines[image.entry as usize]);
            pass.set_bind_group(0, &image.bind_group, &[]);
            pass.dispatch_workgroups(image.workgroups, 1, 1);
        }
    }

    /// The texture of conv block `block`'s atlas (tests read it back).
    pub fn block_texture(&self, block: usize) -> Option<&wgpu::Texture> {
        self.passes
            .iter()
            .filter(|p| p.entry == EntryPoint::Channels)
            .nth(block)
            .map(|p| &p.texture)
    }

    pub fn input_texture(&self) -> &wgpu::Texture {
        &self.pass_of(EntryPoint::ModelInput).texture
    }

    pub fn grad_cam_texture(&self) -> &wgpu::Texture {
        &self.pass_of(EntryPoint::GradCam).texture
    }

    fn pass_of(&self, entry: EntryPoint) -> &ImagePass {
        self.passes
            .iter()
            .find(|p| p.entry == entry)
            .expect("new() always makes the input and Grad-CAM passes")
    }

    /// Unregisters the textures from `renderer` (before dropping this, when the renderer
    /// lives on, e.g. when a new model is loaded).
    pub fn free(&self, renderer: &mut egui_wgpu::Renderer) {
        let images = &self.images;
        for id in images
            .blocks
            .iter()
            .map(|b| b.id)
            .chain([images.input.id, images.grad_cam.id])
        {
            renderer.free_texture(&id);
        }
    }
}

/// Shared arguments of every pass's creation.
struct PassBuilder<'a> {
    device: &'a wgpu::Device,
    network: &'a GpuNetwork,
    layout: &'a wgpu::BindGroupLayout,
    choice: &'a wgpu::Buffer,
    max_side: u32,
}

impl PassBuilder<'_> {
    fn pass(
        &self,
        label: &str,
        entry: EntryPoint,
        job: ImageJob,
        [width, height]: [usize; 2],
        workgroups: usize,
    ) -> Result<ImagePass, FeatureMapError> {
        if width.max(height) > self.max_side as usize {
            return Err(FeatureMapError::TooLarge {
                what: label.into(),
                width,
                height,
                max: self.max_side,
            });
        }
        let device = self.device;
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: width as u32,
                height: height as u32,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FORMAT,
            usage: wgpu::TextureUsages::STORAGE_BINDING
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(&job),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let view = texture.create_view(&Default::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: self.layout,
            entries: &[
                buffer_entry(0, &uniform),
                buffer_entry(1, self.network.activation_buffer()),
                buffer_entry(2, self.network.cam_buffer()),
                buffer_entry(3, self.choice),
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
            ],
        });
        Ok(ImagePass {
            entry,
            bind_group,
            workgroups: workgroups.max(1) as u32,
            texture,
        })
    }
}

fn buffer_entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let buffer = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let read_only = wgpu::BufferBindingType::Storage { read_only: true };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("feature maps"),
        entries: &[
            buffer(0, wgpu::BufferBindingType::Uniform),
            buffer(1, read_only),
            buffer(2, read_only),
            buffer(3, wgpu::BufferBindingType::Storage { read_only: true }),
            wgpu::BindGroupLayoutEntry {
                binding: 4,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::WriteOnly,
                    format: FORMAT,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            },
        ],
    })
}

fn register(
    renderer: &mut egui_wgpu::Renderer,
    device: &wgpu::Device,
    texture: &wgpu::Texture,
) -> egui::TextureId {
    // Nearest: a model pixel stays a crisp square at any zoom, as in the CLI's overlays.
    let view = texture.create_view(&Default::default());
    renderer.register_native_texture(device, &view, wgpu::FilterMode::Nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlas_cells_do_not_overlap_and_fit_the_texture() {
        let atlas = ChannelAtlas::new(egui::TextureId::default(), 10, 7, 5);
        assert_eq!(atlas.columns, 4);
        assert_eq!(atlas.size, [4 * 8 - 1, 3 * 6 - 1]);
        let [x, y] = atlas.origin(9);
        assert_eq!([x, y], [8, 12]);
        assert!(x + atlas.width <= atlas.size[0] && y + atlas.height <= atlas.size[1]);
        let uv = atlas.uv(9);
        assert!(uv.max.x <= 1.0 && uv.max.y <= 1.0);
    }
}
