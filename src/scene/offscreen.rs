//! The scene rendered into a texture and read back: `cnnviz render`, README screenshots,
//! tests and the render benchmark. The pass itself is [`CubeRenderer::encode_pass`], the
//! same one the window records into its surface; only the target and the readback live
//! here.

use super::SceneError;
use super::camera::Camera;
use super::cube_renderer::{
    CubeRenderer, FrameParams, RendererConfig, SceneSettings, SceneTargets,
};
use crate::gpu::{GpuNetwork, InferenceRequest};

/// A colour texture with its depth/MSAA targets and a readback buffer, made once for a
/// size and reused frame after frame (the benchmark renders into one repeatedly).
pub struct OffscreenTarget {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    targets: SceneTargets,
    readback: wgpu::Buffer,
    width: u32,
    height: u32,
    /// Bytes per row in the readback buffer: `4 * width` rounded up to 256, as wgpu
    /// requires for texture-to-buffer copies.
    padded_row: u32,
    swap_red_blue: bool,
}

impl OffscreenTarget {
    /// A `width × height` target for `renderer`'s format, which must be one of the 8-bit
    /// RGBA or BGRA formats (what an [`image::RgbaImage`] can hold).
    pub fn new(
        device: &wgpu::Device,
        renderer: &CubeRenderer,
        width: u32,
        height: u32,
    ) -> Result<OffscreenTarget, SceneError> {
        OffscreenTarget::for_config(device, renderer.config(), width, height)
    }

    /// A target for renderers made with `config` (the headless viewer makes its target
    /// before its renderer exists).
    pub fn for_config(
        device: &wgpu::Device,
        config: RendererConfig,
        width: u32,
        height: u32,
    ) -> Result<OffscreenTarget, SceneError> {
        let max = device.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(SceneError::BadSize { width, height, max });
        }
        let format = config.color_format;
        let swap_red_blue = match format {
            wgpu::TextureFormat::Rgba8Unorm | wgpu::TextureFormat::Rgba8UnormSrgb => false,
            wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb => true,
            other => {
                return Err(SceneError::Unsupported(format!(
                    "offscreen rendering reads back 8-bit RGBA or BGRA, not {other:?}"
                )));
            }
        };
        let padded_row = (4 * width).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
            * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("offscreen scene"),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("offscreen readback"),
            size: u64::from(padded_row) * u64::from(height),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(OffscreenTarget {
            texture,
            view,
            targets: SceneTargets::new(device, config, width, height),
            readback,
            width,
            height,
            padded_row,
            swap_red_blue,
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The colour texture, for passes other than the scene's (the overlay).
    pub fn view(&self) -> &wgpu::TextureView {
        &self.view
    }

    /// Width and height in pixels, for [`FrameParams::new`].
    pub fn viewport(&self) -> [f32; 2] {
        [self.width as f32, self.height as f32]
    }

    /// Records the scene pass into `encoder` (after [`CubeRenderer::prepare`]).
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        renderer: &CubeRenderer,
        background: [f32; 3],
    ) {
        renderer.encode_pass(encoder, &self.targets, &self.view, background);
    }

    /// Prepares, records and submits one frame without waiting for it; with `inference`,
    /// the network's kernels are recorded first in the same encoder, so the cubes show
    /// what they just computed (the inputs must already be written).
    pub fn render(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        renderer: &CubeRenderer,
        params: &FrameParams,
        inference: Option<(&GpuNetwork, &InferenceRequest)>,
    ) -> Result<wgpu::SubmissionIndex, SceneError> {
        renderer.prepare(queue, params);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("offscreen scene"),
        });
        if let Some((network, request)) = inference {
            network.encode(&mut encoder, request)?;
        }
        self.encode(&mut encoder, renderer, params.settings.background);
        Ok(queue.submit([encoder.finish()]))
    }

    /// Copies the texture into the readback buffer, waits, and returns the picture.
    pub fn read(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
    ) -> Result<image::RgbaImage, SceneError> {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("offscreen readback"),
        });
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &self.readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.padded_row),
                    rows_per_image: Some(self.height),
                },
            },
            wgpu::Extent3d {
                width: self.width,
                height: self.height,
                depth_or_array_layers: 1,
            },
        );
        queue.submit([encoder.finish()]);

        let mapped = crate::gpu::wait::map_read(device, &self.readback, 0..self.readback.size())?;
        let row = 4 * self.width as usize;
        let mut pixels = Vec::with_capacity(row * self.height as usize);
        for line in mapped.chunks_exact(self.padded_row as usize) {
            pixels.extend_from_slice(&line[..row]);
        }
        if self.swap_red_blue {
            for px in pixels.chunks_exact_mut(4) {
                px.swap(0, 2);
            }
        }
        image::RgbaImage::from_raw(self.width, self.height, pixels).ok_or_else(|| {
            SceneError::Unsupported("the readback did not hold a whole picture".to_string())
        })
    }
}

/// Renders one frame of the scene, headless, and returns it. With `inference`, the
/// network's kernels run in the same submission first (write the inputs beforehand with
/// [`GpuNetwork::write_inputs`]); without, the cubes show what the last inference left in
/// the arena. `settings.wave` is honoured as given, so pass `None` for the final picture.
#[allow(clippy::too_many_arguments)] // the brief's signature: device, queue, what, view, size, how
pub fn render_offscreen(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    network: &GpuNetwork,
    renderer: &CubeRenderer,
    camera: &Camera,
    width: u32,
    height: u32,
    settings: &SceneSettings,
    inference: Option<&InferenceRequest>,
) -> Result<image::RgbaImage, SceneError> {
    let target = OffscreenTarget::new(device, renderer, width, height)?;
    let params = FrameParams::new(camera, target.viewport(), *settings);
    target.render(
        device,
        queue,
        renderer,
        &params,
        inference.map(|request| (network, request)),
    )?;
    target.read(device, queue)
}
