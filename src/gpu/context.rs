//! The headless device: the one place in `gpu` that talks to adapters. Everything that
//! computes takes `&wgpu::Device` from its caller (as wgpu's `hello_compute` does), so the
//! window, the CLI and the tests can share or swap devices freely.

use super::GpuError;

/// Instance, adapter, device and queue of a headless (surface-less) GPU session.
pub struct GpuContext {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

/// Optional features worth having: timestamps let `bench` time each kernel.
const WANTED_FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

impl GpuContext {
    /// Blocking wrapper around [`GpuContext::new_async`] for the CLI and the tests.
    pub fn new() -> Result<Self, GpuError> {
        pollster::block_on(Self::new_async())
    }

    /// Picks a high-performance adapter, then any fallback (software) adapter, then whatever
    /// adapter exists, so a machine with only lavapipe still runs. The device gets the
    /// adapter's own limits (default WebGPU limits cap storage bindings at 128 MiB, which
    /// would cap the batch) and timestamp queries where the adapter has them.
    pub async fn new_async() -> Result<Self, GpuError> {
        // Vulkan/Metal/DX12 first: probing GL through EGL is slow and noisy on headless
        // machines, so it is only tried when no primary backend has an adapter (or when
        // WGPU_BACKEND asks for it).
        let from_env = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let chosen_by_user = std::env::var_os("WGPU_BACKEND").is_some();
        let (instance, adapter) = if chosen_by_user {
            let instance = wgpu::Instance::new(from_env);
            let adapter = Self::pick_adapter(&instance).await?;
            (instance, adapter)
        } else {
            let mut primary = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            primary.backends = wgpu::Backends::PRIMARY;
            let instance = wgpu::Instance::new(primary);
            match Self::pick_adapter(&instance).await {
                Ok(adapter) => (instance, adapter),
                Err(_) => {
                    let instance = wgpu::Instance::new(from_env);
                    let adapter = Self::pick_adapter(&instance).await?;
                    (instance, adapter)
                }
            }
        };
        let info = adapter.get_info();
        let features = adapter.features() & WANTED_FEATURES;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("cnnviz device"),
                required_features: features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await?;
        Ok(GpuContext {
            instance,
            adapter,
            device,
            queue,
            info,
        })
    }

    async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter, GpuError> {
        let mut options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let first = match instance.request_adapter(&options).await {
            Ok(adapter) => return Ok(adapter),
            Err(e) => e,
        };
        options.force_fallback_adapter = true;
        if let Ok(adapter) = instance.request_adapter(&options).await {
            return Ok(adapter);
        }
        instance
            .enumerate_adapters(wgpu::Backends::all())
            .await
            .into_iter()
            .next()
            .ok_or_else(|| GpuError::NoAdapter(first.to_string()))
    }

    /// One line naming the adapter, for logs, `--version`-style output and benchmark reports.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }
}

/// `name (backend, driver, device type)`, shared by [`GpuContext::describe`] and callers
/// that got their adapter elsewhere (the window).
pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
        (true, true) => "unknown driver".to_string(),
        (false, true) => info.driver.clone(),
        (true, false) => info.driver_info.clone(),
        (false, false) => format!("{} {}", info.driver, info.driver_info),
    };
    format!(
        "{} ({:?}, {driver}, {:?})",
        info.name, info.backend, info.device_type
    )
}
