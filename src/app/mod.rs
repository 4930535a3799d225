//! The window: a winit application that wires the GPU network, the cube scene and the egui
//! overlay together on one device. One frame is one command encoder: the network's kernels
//! (only when the drawing or the analysis changed), the overlay's images, the scene pass,
//! the egui pass; then submit and present. Probabilities and hovered values come back
//! through small mapped buffers a frame or two later: the frame never waits for them.

mod scene_input;
mod session;
mod store_link;
mod surface;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::{Window, WindowId};

use crate::colormap::ColorMap;
use crate::data::preprocess::mnist_input;
use crate::gpu::CamTarget;
use crate::model::Model;
use crate::scene::{
    CamTint, Camera, DEFAULT_BACKGROUND, DEFAULT_TOP_K, FrameParams, HighlightSet, Pick,
    SceneSettings, Wave, influence,
};
use crate::ui::dashboard::DashboardEvent;
use crate::ui::{
    GpuTimes, HoverInfo, Overlay, OverlayEvent, OverlayView, PredictionView, StatusLevel,
    StatusMessage,
};

use session::{Analysis, Session};
use surface::{Frame, WindowGpu};

/// Where the window's model came from and where its store lives.
#[derive(Clone, Debug, Default)]
pub struct WindowOptions {
    /// The model file, for the records' model identity.
    pub model_path: std::path::PathBuf,
    /// `--store`; `None`: `CNNVIZ_STORE`, else the platform's data directory.
    pub store: Option<std::path::PathBuf>,
}

/// Opens the window and runs until it is closed.
pub fn run_window(model: Model, options: WindowOptions) -> anyhow::Result<()> {
    let event_loop = EventLoop::new().context(
        "cannot open a window: no display (set DISPLAY or WAYLAND_DISPLAY, or use the \
         headless commands: cnnviz predict / render)",
    )?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let mut app = App::new(model, options);
    event_loop.run_app(&mut app).context("running the window")?;
    match app.fatal.take() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// What the person has chosen and what the window currently shows.
struct App {
    model: Model,
    /// `model.conv_blocks()`, computed once.
    blocks: Vec<crate::model::ConvBlock>,
    options: WindowOptions,
    store: Option<store_link::StoreLink>,
    /// The model input (0..1, before normalisation) of the drawing on the canvas.
    current_input: Option<Vec<f32>>,
    overlay: Overlay,
    egui_ctx: egui::Context,
    egui_state: Option<egui_winit::State>,
    session: Option<Session>,
    camera: Option<Camera>,
    analysis: Analysis,
    color_map: ColorMap,
    animation: bool,
    /// The current drawing produced a model input (false: empty canvas).
    has_input: bool,
    /// The written input has not been through the network yet.
    inference_due: bool,
    images_due: bool,
    prediction: Option<(Vec<f32>, usize)>,
    wave: Option<Wave>,
    pick: Option<Pick>,
    hover: Option<HoverInfo>,
    status: Vec<(StatusMessage, Instant)>,
    started: Instant,
    last_frame: Instant,
    frame_seconds: f32,
    adapter: String,
    /// When egui wants the next repaint, if not at once.
    wake_at: Option<Instant>,
    fatal: Option<anyhow::Error>,
}

impl App {
    fn new(model: Model, options: WindowOptions) -> App {
        let last = model.conv_blocks().len().saturating_sub(1);
        App {
            blocks: model.conv_blocks(),
            model,
            options,
            store: None,
            current_input: None,
            overlay: Overlay::new(),
            egui_ctx: egui::Context::default(),
            egui_state: None,
            session: None,
            camera: None,
            analysis: Analysis {
                target: CamTarget::Predicted,
                block: last,
                grad_cam: true,
            },
            color_map: ColorMap::default(),
            animation: true,
            has_input: false,
            inference_due: true,
            images_due: true,
            prediction: None,
            wave: None,
            pick: None,
            hover: None,
            status: Vec::new(),
            started: Instant::now(),
            last_frame: Instant::now(),
            frame_seconds: 0.0,
            adapter: String::new(),
            wake_at: None,
            fatal: None,
        }
    }

    fn say(&mut self, level: StatusLevel, text: impl Into<String>) {
        self.status.push((
            StatusMessage {
                level,
                text: text.into(),
            },
            Instant::now(),
        ));
    }

    fn start(&mut self, event_loop: &ActiveEventLoop) -> anyhow::Result<()> {
        let attributes = Window::default_attributes()
            .with_title(format!("cnnviz — {}", self.model.architecture.name))
            .with_inner_size(winit::dpi::LogicalSize::new(1440.0, 900.0))
            .with_min_inner_size(winit::dpi::LogicalSize::new(800.0, 500.0));
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .context("creating the window")?,
        );
        let gpu = WindowGpu::new(window.clone(), event_loop.owned_display_handle())?;
        self.adapter = gpu.describe();
        let session = Session::new(gpu, &self.model)?;
        let viewport = window.inner_size();
        let aspect = viewport.width.max(1) as f32 / viewport.height.max(1) as f32;
        self.camera = Some(session.layout.home_camera(aspect));
        let max_texture = session.gpu.device.limits().max_texture_dimension_2d as usize;
        self.egui_state = Some(egui_winit::State::new(
            self.egui_ctx.clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            window.theme(),
            Some(max_texture),
        ));
        let identity =
            store_link::model_identity(&self.model.architecture.name, &self.options.model_path);
        self.store = Some(store_link::StoreLink::open(
            self.options.store.as_deref(),
            identity,
            &self.egui_ctx,
        ));
        // The empty canvas still runs once, so the scene shows the network at rest.
        self.write_blank_input(&session);
        self.session = Some(session);
        window.request_redraw();
        Ok(())
    }

    fn write_blank_input(&self, session: &Session) {
        let blank = self.model.normalize(&vec![0.0; self.model.input_len()]);
        if let Err(e) = session.network.write_inputs(&session.gpu.queue, &blank) {
            eprintln!("cnnviz: {e}");
        }
    }

    /// Acts on what the person did in the overlay this frame.
    fn apply_events(&mut self, events: &[OverlayEvent]) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let mut camera_keys = None;
        let mut store_requests = Vec::new();
        for event in events {
            match event {
                OverlayEvent::CanvasChanged(ink) => {
                    let input = self.model.architecture.input;
                    match mnist_input(ink, input.height, input.width) {
                        Ok(pixels) => {
                            let normalised = self.model.normalize(&pixels);
                            self.current_input = Some(pixels);
                            if let Err(e) = session
                                .network
                                .write_inputs(&session.gpu.queue, &normalised)
                            {
                                eprintln!("cnnviz: {e}");
                            }
                            self.has_input = true;
                        }
                        Err(_) => {
                            self.write_blank_input(session);
                            self.has_input = false;
                            self.current_input = None;
                            self.prediction = None;
                        }
                    }
                    if let Some(store) = self.store.as_mut() {
                        store.drawing_changed();
                    }
                    self.inference_due = true;
                }
                OverlayEvent::Predict => self.inference_due = true,
                OverlayEvent::SetCamTarget(target) => {
                    self.analysis.target = *target;
                    self.inference_due = true;
                }
                OverlayEvent::SetCamBlock(block) => {
                    self.analysis.block = *block;
                    self.inference_due = true;
                }
                OverlayEvent::SetGradCam(on) => {
                    self.analysis.grad_cam = *on;
                    self.inference_due = true;
                }
                OverlayEvent::SetColorMap(map) => {
                    self.color_map = *map;
                    self.images_due = true;
                }
                OverlayEvent::SetAnimation(on) => self.animation = *on,
                OverlayEvent::ResetCamera => {
                    if let Some(camera) = self.camera.as_mut() {
                        camera.reset();
                    }
                }
                OverlayEvent::CameraKeys { yaw, pitch, zoom } => {
                    camera_keys = Some((*yaw, *pitch, *zoom));
                }
                OverlayEvent::ToggleFullscreen => {
                    let window = &session.gpu.window;
                    let full = window.fullscreen().is_some();
                    window.set_fullscreen(
                        (!full).then_some(winit::window::Fullscreen::Borderless(None)),
                    );
                }
                OverlayEvent::Save | OverlayEvent::Report | OverlayEvent::Dashboard => {
                    store_requests.push(event.clone());
                }
            }
        }
        for request in store_requests {
            if let Err(why) = self.store_request(&request) {
                self.say(StatusLevel::Warning, why);
            }
        }
        if let (Some((yaw, pitch, zoom)), Some(camera)) = (camera_keys, self.camera.as_mut()) {
            let dt = self.frame_seconds.clamp(0.0, 0.1);
            camera.orbit(yaw * 240.0 * dt, -pitch * 240.0 * dt);
            camera.zoom(zoom * 6.0 * dt);
        }
    }

    fn redraw(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        self.frame_seconds = (now - self.last_frame).as_secs_f32();
        self.last_frame = now;
        self.status
            .retain(|(_, at)| at.elapsed().as_secs_f32() < 4.0);
        let (Some(session), Some(egui_state)) = (self.session.as_ref(), self.egui_state.as_mut())
        else {
            return Ok(());
        };
        let window = session.gpu.window.clone();
        let raw_input = egui_state.take_egui_input(&window);

        // The overlay: panels first, then the free area becomes the scene's.
        let status: Vec<StatusMessage> = self.status.iter().map(|(m, _)| m.clone()).collect();
        let timing_note = if session.has_timestamps() {
            "waiting for the first timed inference"
        } else {
            "timestamps unavailable on this adapter"
        };
        let gpu_times = if session.timings.is_empty() {
            GpuTimes::Unavailable(timing_note)
        } else {
            GpuTimes::Kernels(&session.timings)
        };
        let view = OverlayView {
            model_name: &self.model.architecture.name,
            adapter: &self.adapter,
            class_labels: &self.model.architecture.classes,
            prediction: self.prediction.as_ref().filter(|_| self.has_input).map(
                |(probabilities, predicted)| PredictionView {
                    probabilities,
                    predicted: *predicted,
                },
            ),
            cam_target: self.analysis.target,
            conv_blocks: &self.blocks,
            cam_block: self.analysis.block,
            grad_cam: self.analysis.grad_cam,
            color_map: self.color_map,
            animation: self.animation,
            images: session.images.as_ref().map(|i| i.images()),
            gpu_times,
            frame_seconds: Some(self.frame_seconds),
            hover: self.hover.as_ref(),
            status: &status,
            features: Default::default(),
        };
        let camera = self.camera.as_mut().context("camera")?;
        let mut events = Default::default();
        let mut gesture = scene_input::Gesture::default();
        let mut store_requests = store_link::StoreRequests::default();
        let store = &mut self.store;
        let full_output = self.egui_ctx.run_ui(raw_input, |ui| {
            events = self.overlay.show(ui, &view);
            if let Some(store) = store.as_mut() {
                store_requests = store.show(ui.ctx());
            }
            gesture = scene_input::read(ui, events.scene_rect);
            scene_input::draw_labels(ui, &session.layout, camera, events.scene_rect);
        });
        egui_state.handle_platform_output(&window, full_output.platform_output);
        let repaint_delay = full_output
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map(|v| v.repaint_delay);
        let pixels_per_point = full_output.pixels_per_point;
        let paint_jobs = self
            .egui_ctx
            .tessellate(full_output.shapes, pixels_per_point);
        let textures = full_output.textures_delta;

        self.apply_events(&events.events);
        self.apply_store_requests(store_requests);
        if let Some(store) = self.store.as_mut() {
            for message in store.poll(&self.egui_ctx) {
                self.status.push((message, Instant::now()));
            }
        }
        self.apply_gesture(&gesture, pixels_per_point);
        let camera_moving = self
            .camera
            .as_mut()
            .is_some_and(|c| c.update(self.frame_seconds));

        let session = self.session.as_mut().context("session")?;
        let gpu = &session.gpu;
        for (id, deltas) in &textures.set {
            for delta in deltas {
                session
                    .egui
                    .update_texture(&gpu.device, &gpu.queue, *id, delta);
            }
        }
        let frame = session.gpu.acquire()?;
        let Frame::Ready(frame) = frame else {
            for id in &textures.free {
                session.egui.free_texture(id);
            }
            return Ok(());
        };
        let (width, height) = (session.gpu.config.width, session.gpu.config.height);
        session.targets.resize(&session.gpu.device, width, height);
        let output = frame
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        let mut encoder =
            session
                .gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("frame"),
                });
        let time = self.started.elapsed().as_secs_f32();
        let inferred = self.inference_due;
        if self.inference_due {
            session.encode_inference(&mut encoder, self.analysis, self.color_map)?;
            self.inference_due = false;
            self.images_due = false;
            self.wave = self.animation.then(|| Wave::starting_at(time));
        } else if self.images_due {
            session.encode_images(&mut encoder, self.color_map);
            self.images_due = false;
        }
        let hovered_copy = match self.pick {
            Some(pick) => session
                .hovered
                .encode(
                    &mut encoder,
                    &session.network,
                    pick.activation,
                    pick.element_index,
                )
                .is_ok(),
            None => false,
        };

        let gpu = &session.gpu;
        let settings = SceneSettings {
            time,
            wave: self.wave.filter(|w| w.running(time)),
            color_map: self.color_map,
            grad_cam: (self.analysis.grad_cam && self.has_input).then_some(CamTint {
                block: self.analysis.block,
                layer: true,
                input: true,
            }),
            background: DEFAULT_BACKGROUND,
            ..SceneSettings::default()
        };
        let camera = self.camera.as_ref().context("camera")?;
        session.cubes.prepare(
            &gpu.queue,
            &FrameParams::new(camera, [width as f32, height as f32], settings),
        );
        session
            .cubes
            .encode_pass(&mut encoder, &session.targets, &output, DEFAULT_BACKGROUND);

        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [width, height],
            pixels_per_point,
        };
        let extra = session.egui.update_buffers(
            &gpu.device,
            &gpu.queue,
            &mut encoder,
            &paint_jobs,
            &screen,
        );
        {
            let pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("egui"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &output,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Load,
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            session
                .egui
                .render(&mut pass.forget_lifetime(), &paint_jobs, &screen);
        }
        gpu.queue
            .submit(extra.into_iter().chain(std::iter::once(encoder.finish())));
        window.pre_present_notify();
        gpu.queue.present(frame);
        for id in &textures.free {
            session.egui.free_texture(id);
        }

        // Readbacks: start the maps now, pick them up when they are done.
        session.probabilities.start_map();
        if hovered_copy {
            session.hovered.start_map();
        }
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        if inferred {
            session.collect_timings();
        }
        let mut waiting = session.probabilities.in_flight();
        match session.probabilities.try_take() {
            Ok(Some(p)) => self.prediction = Some((p.probabilities, p.predicted)),
            Ok(None) => {}
            Err(e) => eprintln!("cnnviz: {e}"),
        }
        match session.hovered.try_take() {
            Ok(Some(v)) => {
                if let Some(pick) = self
                    .pick
                    .filter(|p| p.activation == v.activation && p.element_index == v.element)
                {
                    self.hover = Some(self.hover_info(&pick, v.value));
                }
            }
            Ok(None) => waiting |= hovered_copy,
            Err(e) => eprintln!("cnnviz: {e}"),
        }

        // Redraw continuously only while something moves; otherwise sleep until an event
        // or until egui's own next repaint (a tooltip delay, a blinking cursor).
        let animating = settings.wave.is_some();
        self.wake_at = None;
        if camera_moving || animating || waiting || self.inference_due {
            window.request_redraw();
        } else if let Some(delay) = repaint_delay {
            if delay.is_zero() {
                window.request_redraw();
            } else {
                self.wake_at = Instant::now().checked_add(delay);
            }
        }
        Ok(())
    }

    /// Save, Report or Dashboard.
    fn store_request(&mut self, event: &OverlayEvent) -> Result<(), String> {
        match event {
            OverlayEvent::Dashboard => self.store.as_mut().ok_or("no store")?.toggle_dashboard(),
            OverlayEvent::Save => {
                let prediction = self.current_prediction()?;
                self.store.as_mut().ok_or("no store")?.save(prediction)?;
                self.say(StatusLevel::Info, "Saving…");
                Ok(())
            }
            OverlayEvent::Report => {
                let prediction = self.current_prediction()?;
                self.store
                    .as_mut()
                    .ok_or("no store")?
                    .start_report(prediction)
            }
            _ => Ok(()),
        }
    }

    /// The record of the drawing on the canvas. Runs the network once more with a
    /// readback: a deliberate, rare action, never part of the frame loop.
    fn current_prediction(&self) -> Result<crate::store::NewPrediction, String> {
        let input = self.current_input.as_ref().ok_or("Draw a digit first.")?;
        let session = self.session.as_ref().ok_or("the GPU is not ready")?;
        let store = self.store.as_ref().ok_or("no store")?;
        let output = self.run_once(session, input)?;
        let shape = self.model.architecture.input;
        let block = &self.blocks[self.analysis.block];
        Ok(crate::store::NewPrediction::from_inference(
            crate::store::now_ms(),
            &self.overlay.canvas().ink(),
            crate::store::ModelInput {
                channels: 1,
                height: shape.height as u16,
                width: shape.width as u16,
                values: input.clone(),
            },
            &output,
            &block.name,
            store.model.clone(),
        ))
    }

    /// One blocking inference of `pixels` (0..1) with the chosen analysis.
    fn run_once(
        &self,
        session: &Session,
        pixels: &[f32],
    ) -> Result<crate::gpu::ImageOutput, String> {
        let request = crate::gpu::InferenceRequest {
            target: self.analysis.target,
            block: Some(self.analysis.block),
            grad_cam: true,
            ..Default::default()
        };
        let gpu = &session.gpu;
        let output = session
            .network
            .run_blocking(
                &gpu.device,
                &gpu.queue,
                &self.model.normalize(pixels),
                &request,
            )
            .map_err(|e| e.to_string())?;
        output
            .images
            .into_iter()
            .next()
            .ok_or_else(|| "the network returned nothing".to_string())
    }

    /// The dashboard's and the report form's requests.
    fn apply_store_requests(&mut self, requests: store_link::StoreRequests) {
        if let Some(submission) = requests.report
            && let Some(store) = self.store.as_mut()
            && let Err(why) = store.submit_report(&submission)
        {
            self.say(StatusLevel::Warning, why);
        }
        for event in requests.dashboard {
            match event {
                DashboardEvent::Rerun(input) => self.rerun(&input),
                DashboardEvent::RerunAll(ids) => {
                    if let Some(store) = self.store.as_mut() {
                        store.rerun_queue.extend(ids);
                    }
                }
                DashboardEvent::Delete(id) => {
                    if let Some(store) = self.store.as_mut() {
                        store.delete(id);
                    }
                }
                DashboardEvent::PutOnCanvas { drawing, .. } => {
                    self.overlay.canvas_mut().load_image(&drawing);
                    self.apply_events(&[OverlayEvent::CanvasChanged(drawing)]);
                }
                DashboardEvent::Report { id, predicted } => {
                    if let Some(store) = self.store.as_mut() {
                        store
                            .report
                            .open_for(crate::store::ReportTarget::Saved(id), Some(predicted));
                    }
                }
            }
        }
        let queued = self
            .store
            .as_mut()
            .map(|s| s.next_reruns())
            .unwrap_or_default();
        for input in queued {
            self.rerun(&input);
        }
    }

    /// Puts a stored input through the current model; the scene shows it too.
    fn rerun(&mut self, input: &crate::store::RerunInput) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        if input.input.values.len() != self.model.input_len() {
            self.say(
                StatusLevel::Warning,
                "That record was made for a model of another input size.",
            );
            return;
        }
        match self.run_once(session, &input.input.values) {
            Ok(output) => {
                let result = crate::ui::dashboard::RerunResult::from_output(
                    &output,
                    &self.model.architecture.name,
                );
                if let Some(store) = self.store.as_mut() {
                    store.dashboard.set_rerun_result(input.id, result);
                }
                self.wave = None;
            }
            Err(why) => self.say(StatusLevel::Error, why),
        }
    }

    fn hover_info(&self, pick: &Pick, value: f32) -> HoverInfo {
        let layout = self.session.as_ref().map(|s| s.network.layout());
        let slot = layout.and_then(|l| l.slots.get(pick.activation));
        let is_map = matches!(slot.map(|s| s.shape), Some(crate::model::Shape::Map { .. }));
        HoverInfo {
            layer: slot.map(|s| s.name.clone()).unwrap_or_default(),
            channel: is_map.then_some(pick.channel),
            position: if is_map {
                [pick.y, pick.x]
            } else {
                [0, pick.element_index]
            },
            value,
        }
    }

    fn apply_gesture(&mut self, gesture: &scene_input::Gesture, pixels_per_point: f32) {
        let (Some(camera), Some(session)) = (self.camera.as_mut(), self.session.as_ref()) else {
            return;
        };
        let viewport = [
            session.gpu.config.width as f32,
            session.gpu.config.height as f32,
        ];
        if gesture.orbit != [0.0; 2] {
            camera.orbit(
                gesture.orbit[0] * pixels_per_point,
                gesture.orbit[1] * pixels_per_point,
            );
        }
        if gesture.pan != [0.0; 2] {
            camera.pan(
                gesture.pan[0] * pixels_per_point,
                gesture.pan[1] * pixels_per_point,
                viewport,
            );
        }
        if gesture.zoom != 0.0 {
            camera.zoom(gesture.zoom);
        }
        if gesture.pinch != 1.0 {
            camera.pinch(gesture.pinch);
        }
        if gesture.reset {
            camera.reset();
        }
        let cursor = gesture
            .hover
            .map(|p| [p[0] * pixels_per_point, p[1] * pixels_per_point]);
        let pick = cursor.and_then(|c| session.layout.pick(camera, c, viewport));
        if pick.map(|p| p.instance) != self.pick.map(|p| p.instance) {
            self.hover = None;
        }
        self.pick = pick;
        if gesture.clicked {
            let set: Option<HighlightSet> =
                pick.map(|p| influence(&self.model, &session.layout, &p, DEFAULT_TOP_K));
            session
                .cubes
                .set_highlight(&session.gpu.queue, set.as_ref());
        }
    }
}

impl ApplicationHandler for App {
    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        match self.wake_at {
            Some(at) if at <= Instant::now() => {
                self.wake_at = None;
                if let Some(session) = &self.session {
                    session.gpu.window.request_redraw();
                }
                event_loop.set_control_flow(ControlFlow::Wait);
            }
            Some(at) => event_loop.set_control_flow(ControlFlow::WaitUntil(at)),
            None => event_loop.set_control_flow(ControlFlow::Wait),
        }
    }

    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.session.is_some() {
            return;
        }
        if let Err(e) = self.start(event_loop) {
            self.fatal = Some(e);
            event_loop.exit();
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Some(state) = self.egui_state.as_mut() {
            let response = state.on_window_event(&session.gpu.window, &event);
            if response.repaint {
                session.gpu.window.request_redraw();
            }
        }
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => {
                session.gpu.resize(size.width, size.height);
                session.gpu.window.request_redraw();
            }
            WindowEvent::RedrawRequested => {
                if let Err(e) = self.redraw() {
                    self.fatal = Some(e);
                    event_loop.exit();
                }
            }
            _ => {}
        }
    }
}
