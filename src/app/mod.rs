//! The window: a winit application around the [`Viewer`]. The window owns what only a window
//! has (the surface, egui-winit's input translation, fullscreen, the cursor); the viewer owns
//! everything the person sees and has done, so a lost surface or a lost device is repaired
//! here without the person losing their drawing.

mod explain_tint;
mod explain_worker;
pub mod feature_vis_worker;
mod gpu;
mod headless;
mod kiosk_mode;
mod reruns;
mod scene_input;
mod session;
pub mod soak;
mod store_link;
mod surface;
pub mod survey_worker;
mod texture_mirror;
mod viewer;

pub use explain_tint::{tint_maps, write_tint};
pub use explain_worker::{ExplainResult, ExplainWorker, explain_engine, worker_device};
pub use gpu::ViewerGpu;
pub use headless::HeadlessViewer;
pub use viewer::{
    FrameOutput, FrameSplit, FrameTarget, KioskOptions, Redraw, StoreChoice, Viewer, ViewerOptions,
    WindowRequest,
};

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::{Window, WindowId};

use crate::model::Model;
use surface::{Frame, WindowGpu};

/// How many times in a row rebuilding the GPU side may fail before the process gives up
/// (and exits non-zero, so a supervisor restarts it).
const MAX_RECOVERY_ATTEMPTS: u32 = 3;

/// Where the window's model came from and where its store lives.
#[derive(Clone, Debug, Default)]
pub struct WindowOptions {
    pub viewer: ViewerOptions,
}

/// Opens the window and runs until it is closed.
pub fn run_window(model: Model, options: WindowOptions) -> anyhow::Result<()> {
    let event_loop = EventLoop::new().context(
        "cannot open a window: no display (set DISPLAY or WAYLAND_DISPLAY, or use the \
         headless commands: cnnviz predict / render)",
    )?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let mut app = App {
        model: Some(model),
        options,
        viewer: None,
        window: None,
        gpu: None,
        egui_state: None,
        wake_at: None,
        failed_recoveries: 0,
        fatal: None,
    };
    event_loop.run_app(&mut app).context("running the window")?;
    match app.fatal.take() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

struct App {
    /// Until the window exists; then the viewer has it.
    model: Option<Model>,
    options: WindowOptions,
    viewer: Option<Viewer>,
    window: Option<Arc<Window>>,
    /// `None` between a lost device and a successful rebuild.
    gpu: Option<WindowGpu>,
    egui_state: Option<egui_winit::State>,
    /// When egui wants the next repaint, if not at once.
    wake_at: Option<Instant>,
    failed_recoveries: u32,
    fatal: Option<anyhow::Error>,
}

impl App {
    fn start(&mut self, event_loop: &ActiveEventLoop) -> anyhow::Result<()> {
        let model = self.model.take().context("the window started twice")?;
        let mut attributes = Window::default_attributes()
            .with_title(format!("cnnviz — {}", model.architecture.name))
            .with_inner_size(winit::dpi::LogicalSize::new(1440.0, 900.0))
            .with_min_inner_size(winit::dpi::LogicalSize::new(800.0, 500.0));
        if let Some(kiosk) = &self.options.viewer.kiosk {
            // Borderless fullscreen on the chosen monitor: no decorations to close it by.
            let monitor = kiosk_monitor(event_loop, &kiosk.config.monitor)?;
            // Also cover the monitor's rectangle explicitly: without a window manager (a
            // bare X server) nobody acts on the fullscreen request.
            if let Some(m) = &monitor {
                attributes = attributes
                    .with_position(m.position())
                    .with_inner_size(m.size());
            }
            attributes = attributes
                .with_decorations(false)
                .with_fullscreen(Some(winit::window::Fullscreen::Borderless(monitor)));
        }
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .context("creating the window")?,
        );
        let gpu = WindowGpu::new(window.clone(), event_loop.owned_display_handle())?;
        let viewer = Viewer::new(
            model,
            self.options.viewer.clone(),
            gpu.gpu.clone(),
            gpu.size(),
        )?;
        let max_texture = gpu.gpu.device.limits().max_texture_dimension_2d as usize;
        self.egui_state = Some(egui_winit::State::new(
            viewer.egui_ctx().clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            window.theme(),
            Some(max_texture),
        ));
        log::info!("window open on {}", viewer.adapter());
        self.viewer = Some(viewer);
        self.gpu = Some(gpu);
        self.window = Some(window.clone());
        window.request_redraw();
        Ok(())
    }

    /// A lost device: drop every GPU object (the surface too), open a new device for the
    /// same window and rebuild the viewer's GPU side on it. A failure is retried a second
    /// later; after [`MAX_RECOVERY_ATTEMPTS`] in a row the process gives up.
    fn recover(&mut self, event_loop: &ActiveEventLoop) -> anyhow::Result<()> {
        let (Some(viewer), Some(window)) = (self.viewer.as_mut(), self.window.clone()) else {
            return Ok(());
        };
        log::warn!("the GPU device was lost; rebuilding the GPU side");
        viewer.release_gpu();
        self.gpu = None;
        let rebuilt =
            WindowGpu::new(window.clone(), event_loop.owned_display_handle()).and_then(|gpu| {
                viewer.replace_gpu(gpu.gpu.clone(), gpu.size())?;
                Ok(gpu)
            });
        match rebuilt {
            Ok(gpu) => {
                self.gpu = Some(gpu);
                self.failed_recoveries = 0;
                window.request_redraw();
                Ok(())
            }
            Err(e) => {
                self.failed_recoveries += 1;
                if self.failed_recoveries >= MAX_RECOVERY_ATTEMPTS {
                    return Err(e.context(format!(
                        "the GPU could not be rebuilt after {MAX_RECOVERY_ATTEMPTS} attempts"
                    )));
                }
                log::error!("rebuilding the GPU failed (retrying in a second): {e:#}");
                self.wake_at = Instant::now().checked_add(std::time::Duration::from_secs(1));
                Ok(())
            }
        }
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) -> anyhow::Result<()> {
        let lost = self.viewer.as_ref().is_some_and(|v| v.device_lost());
        if lost || self.gpu.is_none() {
            self.recover(event_loop)?;
        }
        let (Some(viewer), Some(gpu), Some(egui_state)) = (
            self.viewer.as_mut(),
            self.gpu.as_mut(),
            self.egui_state.as_mut(),
        ) else {
            return Ok(());
        };
        let window = gpu.window.clone();
        let frame = match gpu.acquire()? {
            Frame::Ready(frame) => frame,
            Frame::Skip => return Ok(()),
            Frame::Again => {
                window.request_redraw();
                return Ok(());
            }
        };
        let raw_input = egui_state.take_egui_input(&window);
        let view = frame
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        let output = viewer.frame(
            raw_input,
            FrameTarget {
                view: &view,
                size: gpu.size(),
            },
        )?;
        window.pre_present_notify();
        gpu.gpu.queue.present(frame);
        egui_state.handle_platform_output(&window, output.platform);
        for request in output.requests {
            match request {
                WindowRequest::Exit => event_loop.exit(),
                WindowRequest::ToggleFullscreen => {
                    let full = window.fullscreen().is_some();
                    window.set_fullscreen(
                        (!full).then_some(winit::window::Fullscreen::Borderless(None)),
                    );
                }
            }
        }
        self.wake_at = None;
        match output.redraw {
            Redraw::Now => window.request_redraw(),
            Redraw::At(at) => self.wake_at = Some(at),
            Redraw::OnInput => {}
        }
        Ok(())
    }

    fn request_redraw(&self) {
        if let Some(window) = &self.window {
            window.request_redraw();
        }
    }
}

impl ApplicationHandler for App {
    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        match self.wake_at {
            Some(at) if at <= Instant::now() => {
                self.wake_at = None;
                self.request_redraw();
                event_loop.set_control_flow(ControlFlow::Wait);
            }
            Some(at) => event_loop.set_control_flow(ControlFlow::WaitUntil(at)),
            None => event_loop.set_control_flow(ControlFlow::Wait),
        }
    }

    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.viewer.is_some() {
            return;
        }
        if let Err(e) = self.start(event_loop) {
            self.fatal = Some(e);
            event_loop.exit();
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        let Some(window) = self.window.clone() else {
            return;
        };
        // egui-winit answers "repaint" to RedrawRequested itself; passing that on would
        // request the next frame from every frame and never let the window sleep.
        if let Some(state) = self
            .egui_state
            .as_mut()
            .filter(|_| !matches!(event, WindowEvent::RedrawRequested))
        {
            let response = state.on_window_event(&window, &event);
            if response.repaint {
                window.request_redraw();
            }
        }
        let kiosk = self.options.viewer.kiosk.is_some();
        match event {
            // A kiosk leaves only through the admin gesture and the PIN.
            WindowEvent::CloseRequested if kiosk => {
                log::info!("close request ignored in kiosk mode");
            }
            WindowEvent::CloseRequested => event_loop.exit(),
            // The cursor is hidden while touch is used, and comes back with a real mouse.
            WindowEvent::Touch(_) if kiosk => window.set_cursor_visible(false),
            WindowEvent::CursorMoved { .. } if kiosk => window.set_cursor_visible(true),
            WindowEvent::Resized(size) => {
                if let Some(gpu) = self.gpu.as_mut() {
                    gpu.resize(size.width, size.height);
                }
                window.request_redraw();
            }
            WindowEvent::RedrawRequested => {
                if let Err(e) = self.redraw(event_loop) {
                    self.fatal = Some(e);
                    event_loop.exit();
                }
            }
            _ => {}
        }
    }
}

/// The monitor a kiosk fills, or `None` for the system's choice when it lists none.
fn kiosk_monitor(
    event_loop: &ActiveEventLoop,
    choice: &crate::kiosk::MonitorChoice,
) -> anyhow::Result<Option<winit::monitor::MonitorHandle>> {
    let monitors: Vec<winit::monitor::MonitorHandle> = event_loop.available_monitors().collect();
    if monitors.is_empty() {
        log::warn!("the system lists no monitors; fullscreen on whichever it picks");
        return Ok(None);
    }
    let names: Vec<String> = monitors
        .iter()
        .enumerate()
        .map(|(i, m)| m.name().unwrap_or_else(|| format!("monitor {i}")))
        .collect();
    let primary = event_loop
        .primary_monitor()
        .and_then(|p| monitors.iter().position(|m| *m == p));
    let index = choice
        .choose(&names, primary)
        .context("choosing the kiosk's monitor")?;
    log::info!("kiosk fills {}", names[index]);
    Ok(monitors.into_iter().nth(index))
}
