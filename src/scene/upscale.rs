//! Dynamic resolution: the scene drawn into a smaller texture of its own and stretched over
//! its viewport in the frame (`shaders/upscale.wgsl`, bilinear). On a software rasteriser
//! the scene's cost is its pixel count, so a frame that misses its budget can trade
//! sharpness for time while something moves, as games do. Only the picture changes: the
//! scene's viewport in the frame (and so picking and hover) stays where it was.

use super::cube_renderer::{RendererConfig, SceneTargets};

/// The reduced-resolution scene target and the pass that stretches it over the frame.
pub struct SceneUpscaler {
    config: RendererConfig,
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    /// The reduced target: its colour texture's view, the bind group reading it, the
    /// depth (and MSAA) targets the scene pass needs, and its size.
    target: Option<ReducedTarget>,
}

struct ReducedTarget {
    view: wgpu::TextureView,
    bind_group: wgpu::BindGroup,
    targets: SceneTargets,
    size: (u32, u32),
}

impl SceneUpscaler {
    /// The pipeline draws into frames of `config.color_format`; the reduced target has the
    /// same format and sample count, so the scene renderer draws into it unchanged.
    pub fn new(device: &wgpu::Device, config: RendererConfig) -> SceneUpscaler {
        let shader = device.create_shader_module(wgpu::include_wgsl!("../../shaders/upscale.wgsl"));
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("upscale"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("upscale"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("upscale"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(config.color_format.into())],
            }),
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("upscale"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        SceneUpscaler {
            config,
            pipeline,
            layout,
            sampler,
            target: None,
        }
    }

    /// Makes the reduced target `width`×`height` (at least 1×1) if it is not already, and
    /// returns its colour view and the scene targets to draw into it with.
    pub fn target(
        &mut self,
        device: &wgpu::Device,
        width: u32,
        height: u32,
    ) -> (&wgpu::TextureView, &SceneTargets) {
        let size = (width.max(1), height.max(1));
        if self.target.as_ref().is_none_or(|t| t.size != size) {
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("reduced scene"),
                size: wgpu::Extent3d {
                    width: size.0,
                    height: size.1,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: self.config.color_format,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT
                    | wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            });
            let view = texture.create_view(&Default::default());
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("upscale"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Sampler(&self.sampler),
                    },
                ],
            });
            self.target = Some(ReducedTarget {
                view,
                bind_group,
                targets: SceneTargets::new(device, self.config, size.0, size.1),
                size,
            });
        }
        let target = self.target.as_ref().expect("made above");
        (&target.view, &target.targets)
    }

    /// Clears `output` to `background` and stretches the reduced target over `viewport`
    /// (x, y, width, height in pixels of `output`, `output_size` big). Without a reduced
    /// target (never drawn) only clears.
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        output: &wgpu::TextureView,
        output_size: [u32; 2],
        background: wgpu::Color,
        viewport: [f32; 4],
    ) {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("upscale"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: output,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(background),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        let Some(target) = &self.target else {
            return;
        };
        // wgpu rejects a viewport reaching outside the target.
        let [width, height] = output_size.map(|v| v as f32);
        let [x, y, w, h] = viewport;
        let x = x.clamp(0.0, width);
        let y = y.clamp(0.0, height);
        let (w, h) = (w.min(width - x), h.min(height - y));
        if w < 1.0 || h < 1.0 {
            return;
        }
        pass.set_viewport(x, y, w, h, 0.0, 1.0);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &target.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}
