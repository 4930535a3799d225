//! The window's GPU: one device shared by the compute network, the cube scene and egui, and
//! a surface that survives resizes, minimising and lost or outdated swapchains.

use std::sync::Arc;

use anyhow::Context;
use winit::window::Window;

use super::gpu::ViewerGpu;

/// Instance, the device the viewer draws with, and the window's surface.
pub struct WindowGpu {
    pub instance: wgpu::Instance,
    pub gpu: ViewerGpu,
    pub surface: wgpu::Surface<'static>,
    pub config: wgpu::SurfaceConfiguration,
    pub window: Arc<Window>,
    /// Whether the surface is configured with a non-zero size (not minimised).
    pub visible: bool,
}

/// What a frame got from the surface.
pub enum Frame {
    /// Draw into this texture and present it.
    Ready(wgpu::SurfaceTexture),
    /// Nothing to draw into until the window changes (minimised, occluded).
    Skip,
    /// Nothing this time, but the surface was just reconfigured or recreated (or timed
    /// out): try again at once.
    Again,
}

/// Optional features worth having: timestamps for the timing panel.
const WANTED_FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

impl WindowGpu {
    pub fn new(
        window: Arc<Window>,
        display: winit::event_loop::OwnedDisplayHandle,
    ) -> anyhow::Result<WindowGpu> {
        let instance = wgpu::Instance::new(
            wgpu::InstanceDescriptor::new_with_display_handle_from_env(Box::new(display)),
        );
        let surface = instance
            .create_surface(window.clone())
            .context("creating the window's drawing surface")?;
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            compatible_surface: Some(&surface),
            ..Default::default()
        }))
        .context(
            "no GPU adapter can draw into this window; without a GPU install Mesa's software \
             Vulkan driver (apt-get install mesa-vulkan-drivers)",
        )?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("cnnviz window device"),
            required_features: adapter.features() & WANTED_FEATURES,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .context("opening the GPU device")?;
        let size = window.inner_size();
        let mut config = surface
            .get_default_config(&adapter, size.width.max(1), size.height.max(1))
            .context("the adapter cannot present to this window")?;
        // egui-wgpu wants a non-sRGB target (it writes gamma-space colours); the scene
        // renderer follows the same format.
        let caps = surface.get_capabilities(&adapter);
        if let Some(format) = caps.formats.iter().find(|f| !f.is_srgb()) {
            config.format = *format;
        }
        // Vsync: the frame rate follows the display, and the CPU rests between frames.
        // (Mesa's X11 swapchain in Mailbox mode never returns an image on Xvfb.)
        config.present_mode = wgpu::PresentMode::AutoVsync;
        config.desired_maximum_frame_latency = 2;
        let visible = size.width > 0 && size.height > 0;
        if visible {
            surface.configure(&device, &config);
        }
        let gpu = ViewerGpu::new(instance.clone(), adapter, device, queue, config.format);
        Ok(WindowGpu {
            instance,
            gpu,
            surface,
            config,
            window,
            visible,
        })
    }

    pub fn size(&self) -> [u32; 2] {
        [self.config.width, self.config.height]
    }

    /// Follows a new window size. Zero means minimised: stop drawing until it comes back.
    pub fn resize(&mut self, width: u32, height: u32) {
        self.visible = width > 0 && height > 0;
        if self.visible {
            self.config.width = width;
            self.config.height = height;
            self.surface.configure(&self.gpu.device, &self.config);
        }
    }

    /// The next texture to draw into, reconfiguring or recreating the surface when the
    /// platform says it is outdated or lost.
    pub fn acquire(&mut self) -> anyhow::Result<Frame> {
        if !self.visible {
            return Ok(Frame::Skip);
        }
        match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(texture) => Ok(Frame::Ready(texture)),
            wgpu::CurrentSurfaceTexture::Suboptimal(texture) => {
                // Draw this one; the next frame gets a fresh configuration.
                self.surface.configure(&self.gpu.device, &self.config);
                Ok(Frame::Ready(texture))
            }
            wgpu::CurrentSurfaceTexture::Occluded => Ok(Frame::Skip),
            wgpu::CurrentSurfaceTexture::Timeout => Ok(Frame::Again),
            wgpu::CurrentSurfaceTexture::Outdated => {
                self.surface.configure(&self.gpu.device, &self.config);
                Ok(Frame::Again)
            }
            wgpu::CurrentSurfaceTexture::Lost => {
                self.surface = self
                    .instance
                    .create_surface(self.window.clone())
                    .context("recreating the lost window surface")?;
                self.surface.configure(&self.gpu.device, &self.config);
                Ok(Frame::Again)
            }
            other => {
                // Validation: already reported through the uncaptured-error handler.
                log::warn!("could not get a frame from the surface: {other:?}");
                Ok(Frame::Skip)
            }
        }
    }
}
