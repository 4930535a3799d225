//! The device a viewer draws with, however it was opened (beside a window's surface, or
//! headless for `render --overlay`, `soak` and the tests), and the watch for its loss.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::gpu::{GpuContext, describe_adapter};

/// Adapter, device and queue, the colour format frames are drawn in, and whether the
/// device has been lost (a driver reset, or `destroy`).
#[derive(Clone)]
pub struct ViewerGpu {
    /// Kept for the resource report ([`ViewerGpu::resource_count`]).
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// Colour format of every frame target (egui-wgpu wants a non-sRGB one).
    pub format: wgpu::TextureFormat,
    lost: Arc<AtomicBool>,
}

impl ViewerGpu {
    /// Installs the device's loss callback and an uncaptured-error handler that logs:
    /// a validation error is a bug, but a kiosk that dies of one is worse.
    pub fn new(
        instance: wgpu::Instance,
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
        format: wgpu::TextureFormat,
    ) -> ViewerGpu {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            log::error!("GPU device lost ({reason:?}): {message}");
            flag.store(true, Ordering::SeqCst);
        });
        device.on_uncaptured_error(Arc::new(|error: wgpu::Error| {
            log::error!("GPU error: {error}");
        }));
        ViewerGpu {
            instance,
            adapter,
            device,
            queue,
            format,
            lost,
        }
    }

    /// A headless device for offscreen frames.
    pub fn headless() -> anyhow::Result<ViewerGpu> {
        let ctx = GpuContext::new()?;
        Ok(ViewerGpu::new(
            ctx.instance,
            ctx.adapter,
            ctx.device,
            ctx.queue,
            wgpu::TextureFormat::Rgba8Unorm,
        ))
    }

    /// A device the caller already opened (`cnnviz bench` lends its own). Without the
    /// instance it came from, [`ViewerGpu::resource_count`] has nothing to report.
    pub fn lent(
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
        format: wgpu::TextureFormat,
    ) -> ViewerGpu {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = wgpu::Backends::empty();
        ViewerGpu::new(
            wgpu::Instance::new(descriptor),
            adapter,
            device,
            queue,
            format,
        )
    }

    /// True once the device is gone: everything made from it must be made again.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// GPU objects alive in this instance (buffers, textures, views, bind groups, samplers,
    /// pipelines, query sets), from wgpu's own registry: a count that keeps growing over a
    /// long run is a leak.
    pub fn resource_count(&self) -> Option<usize> {
        let report = self.instance.generate_report()?;
        let hub = report.hub_report();
        // Occupied registry slots are the live objects.
        let live = |r: &wgpu::wgc::registry::RegistryReport| r.num_kept_from_user;
        Some(
            [
                &hub.buffers,
                &hub.textures,
                &hub.texture_views,
                &hub.bind_groups,
                &hub.bind_group_layouts,
                &hub.samplers,
                &hub.render_pipelines,
                &hub.compute_pipelines,
                &hub.query_sets,
                &hub.shader_modules,
            ]
            .into_iter()
            .map(live)
            .sum(),
        )
    }

    pub fn describe(&self) -> String {
        describe_adapter(&self.adapter.get_info())
    }
}
