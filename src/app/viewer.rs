//! The viewer: everything the window shows and does, without the window. It turns one
//! frame's egui input into one frame drawn into a texture: the network's kernels (only when
//! the drawing or the analysis changed), the overlay's images, the scene pass, the egui
//! pass, one submit. Probabilities and hovered values come back through small mapped buffers
//! a frame or two later: the frame never waits for them.
//!
//! The winit window ([`super::run_window`]) feeds it input from the platform and a surface
//! texture; `render --overlay`, `soak` and the tests feed it scripted input and an offscreen
//! texture ([`super::HeadlessViewer`]). All state a person made (the drawing, the camera,
//! the choices, the store) lives here on the CPU, so a lost GPU device costs only a rebuild
//! of the [`Session`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::gpu::ViewerGpu;
use super::kiosk_mode::{KioskActions, KioskMode};
use super::scene_input;
use super::session::{Analysis, Session};
use super::store_link;
use super::texture_mirror::TextureMirror;
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
    GpuTimes, HoverInfo, Overlay, OverlayEvent, OverlayFeatures, OverlayView, PredictionView,
    StatusLevel, StatusMessage,
};

/// Where the viewer keeps saved digits and reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StoreChoice {
    /// `CNNVIZ_STORE`, else the platform's data directory.
    #[default]
    Default,
    At(PathBuf),
    /// No store: Save, Report and the dashboard say so (offscreen pictures).
    None,
}

/// How a viewer starts.
#[derive(Clone, Debug, Default)]
pub struct ViewerOptions {
    /// The model file, for the records' model identity.
    pub model_path: PathBuf,
    pub store: StoreChoice,
    /// Which controls the overlay offers.
    pub features: OverlayFeatures,
    /// Kiosk mode: idle reset, attract mode, admin exit.
    pub kiosk: Option<KioskOptions>,
}

/// What kiosk mode needs besides the window.
#[derive(Clone, Debug)]
pub struct KioskOptions {
    pub config: crate::kiosk::KioskConfig,
    /// Attract mode's digits.
    pub digits: crate::kiosk::AttractDigits,
}

/// The texture one frame is drawn into.
pub struct FrameTarget<'a> {
    pub view: &'a wgpu::TextureView,
    /// Width and height in pixels; the egui input's `screen_rect` must match it.
    pub size: [u32; 2],
}

/// When the viewer wants its next frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Redraw {
    /// Something moves: draw again at once.
    Now,
    /// Nothing moves, but egui wants a repaint then (a tooltip delay, a cursor blink).
    At(Instant),
    /// Nothing until the next input.
    OnInput,
}

/// What the window must do for the viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowRequest {
    ToggleFullscreen,
    /// Kiosk mode: the admin entered the right PIN.
    Exit,
}

/// One drawn frame's consequences for whoever shows it.
pub struct FrameOutput {
    pub platform: egui::PlatformOutput,
    pub redraw: Redraw,
    pub requests: Vec<WindowRequest>,
}

/// Everything the person has chosen and everything the window shows.
pub struct Viewer {
    model: Model,
    /// `model.conv_blocks()`, computed once.
    blocks: Vec<crate::model::ConvBlock>,
    options: ViewerOptions,
    store: Option<store_link::StoreLink>,
    /// The model input (0..1, before normalisation) of the drawing on the canvas.
    current_input: Option<Vec<f32>>,
    overlay: Overlay,
    egui_ctx: egui::Context,
    session: Option<Session>,
    textures: TextureMirror,
    camera: Camera,
    /// Aspect ratio (width / height) the home view was fitted to.
    fitted_aspect: f32,
    analysis: Analysis,
    color_map: ColorMap,
    animation: bool,
    /// The current drawing produced a model input (false: empty canvas).
    has_input: bool,
    /// Counts every change of what the network must answer (the canvas, the analysis):
    /// every readback carries the generation it was recorded for, and only the current
    /// generation's answer is shown.
    generation: u64,
    /// The generation whose inference the scene's arena holds.
    scene_generation: Option<u64>,
    /// The generation whose results were last copied for the CPU.
    copied_generation: Option<u64>,
    /// The last results that came back and their generation.
    shown: Option<(u64, crate::gpu::ImageOutput)>,
    images_due: bool,
    wave: Option<Wave>,
    /// The next inference starts a wave: a new drawing (the first stroke on an empty
    /// canvas) or Predict. Later strokes update the scene in place; a wave restarted on
    /// every stroke would keep the deeper layers hidden for as long as the person draws.
    wave_due: bool,
    pick: Option<Pick>,
    hover: Option<HoverInfo>,
    /// The hovered cube's value must be read (a new cube, or new values): one copy, not a
    /// copy every frame, so a resting pointer lets the window sleep.
    hover_due: bool,
    status: Vec<(StatusMessage, Instant)>,
    started: Instant,
    last_frame: Instant,
    frame_seconds: f32,
    adapter: String,
    /// The scene's part of the last frame, in pixels: x, y, width, height.
    scene_pixels: [f32; 4],
    frames: u64,
    kiosk: Option<KioskMode>,
}

impl Viewer {
    /// A viewer drawing with `gpu` into frames of about `size` pixels.
    pub fn new(
        model: Model,
        options: ViewerOptions,
        gpu: ViewerGpu,
        size: [u32; 2],
    ) -> anyhow::Result<Viewer> {
        let adapter = gpu.describe();
        let session = Session::new(gpu, &model, size)?;
        let aspect = size[0].max(1) as f32 / size[1].max(1) as f32;
        let camera = session.layout.home_camera(aspect);
        let egui_ctx = egui::Context::default();
        let store = match &options.store {
            StoreChoice::None => None,
            StoreChoice::Default => Some(None),
            StoreChoice::At(path) => Some(Some(path.as_path())),
        }
        .map(|path| {
            let identity =
                store_link::model_identity(&model.architecture.name, &options.model_path);
            store_link::StoreLink::open(path, identity, &egui_ctx)
        });
        let blocks = model.conv_blocks().len();
        let last = blocks.saturating_sub(1);
        let kiosk = options
            .kiosk
            .clone()
            .map(|k| KioskMode::new(k.config, k.digits, Instant::now()));
        let color_map = kiosk
            .as_ref()
            .map_or(ColorMap::default(), |k| k.config().color_map);
        if let Some(kiosk) = &kiosk {
            egui_ctx.set_zoom_factor(kiosk.config().ui_scale);
        }
        let viewer = Viewer {
            blocks: model.conv_blocks(),
            model,
            options,
            store,
            current_input: None,
            overlay: Overlay::new(),
            egui_ctx,
            session: Some(session),
            textures: TextureMirror::default(),
            camera,
            fitted_aspect: aspect,
            analysis: Analysis {
                target: CamTarget::Predicted,
                block: last,
                grad_cam: blocks > 0,
            },
            color_map,
            animation: true,
            has_input: false,
            generation: 0,
            scene_generation: None,
            copied_generation: None,
            shown: None,
            images_due: true,
            wave: None,
            wave_due: false,
            pick: None,
            hover: None,
            hover_due: false,
            status: Vec::new(),
            started: Instant::now(),
            last_frame: Instant::now(),
            frame_seconds: 0.0,
            adapter,
            scene_pixels: [0.0, 0.0, size[0] as f32, size[1] as f32],
            frames: 0,
            kiosk,
        };
        // The empty canvas still runs once, so the scene shows the network at rest.
        viewer.write_current_input();
        Ok(viewer)
    }

    pub fn egui_ctx(&self) -> &egui::Context {
        &self.egui_ctx
    }

    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// The device frames are drawn with; `None` only while a lost one is being replaced.
    pub fn gpu(&self) -> Option<&ViewerGpu> {
        self.session.as_ref().map(|s| &s.gpu)
    }

    /// True when the device is gone and [`Viewer::replace_gpu`] must run before the next
    /// frame.
    pub fn device_lost(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.gpu.is_lost())
    }

    /// Lets go of every GPU object, so that a window can drop its surface before making a
    /// new one on a new device. The next frame needs [`Viewer::replace_gpu`].
    pub fn release_gpu(&mut self) {
        self.session = None;
    }

    /// Rebuilds the whole GPU side (network, scene, egui renderer and its textures,
    /// overlay images, readbacks) on a new device, keeping the drawing, the camera, the
    /// choices and the store.
    pub fn replace_gpu(&mut self, gpu: ViewerGpu, size: [u32; 2]) -> anyhow::Result<()> {
        // Drop the old first: its buffers belong to a dead device.
        self.session = None;
        let mut session = Session::new(gpu, &self.model, size)?;
        for (id, delta) in self.textures.full_uploads() {
            session
                .egui
                .update_texture(&session.gpu.device, &session.gpu.queue, id, &delta);
        }
        self.adapter = session.gpu.describe();
        self.session = Some(session);
        self.pick = None;
        self.hover = None;
        self.write_current_input();
        self.scene_generation = None;
        self.copied_generation = None;
        self.images_due = true;
        log::info!("GPU side rebuilt on {}", self.adapter);
        Ok(())
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// For scripted use: strokes added to the canvas are picked up by the next frame as if
    /// drawn.
    pub fn overlay_mut(&mut self) -> &mut Overlay {
        &mut self.overlay
    }

    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    pub fn camera_mut(&mut self) -> &mut Camera {
        &mut self.camera
    }

    /// Probabilities and the predicted class of the drawing on the canvas, once they have
    /// come back; `None` while they are computed (never an earlier drawing's).
    pub fn prediction(&self) -> Option<(&[f32], usize)> {
        self.shown_output()
            .map(|o| (o.probabilities.as_slice(), o.predicted))
    }

    /// The results on screen: those of the current generation, with a drawing.
    fn shown_output(&self) -> Option<&crate::gpu::ImageOutput> {
        shown_for(&self.shown, self.generation, self.has_input)
    }

    /// Whether the current generation's results have yet to come back, or any readback
    /// or re-run is still on its way.
    pub fn busy(&self) -> bool {
        self.shown.as_ref().map(|(g, _)| *g) != Some(self.generation)
            || self
                .session
                .as_ref()
                .is_some_and(|s| s.outputs.in_flight() || s.reruns.busy())
    }

    /// Image 0's activations in the scene's arena, read back with a blocking wait: a test
    /// aid, never called from a frame.
    pub fn scene_activations(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        let session = self.session.as_ref().context("the GPU is being rebuilt")?;
        let gpu = &session.gpu;
        let mut images = session
            .network
            .read_activations(&gpu.device, &gpu.queue, 1)?;
        images.pop().context("the arena holds no image")
    }

    pub fn set_animation(&mut self, on: bool) {
        self.animation = on;
        if !on {
            self.wave = None;
        }
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The store's link, for scripted use (soak) and the kiosk's gallery.
    pub fn store(&self) -> Option<&store_link::StoreLink> {
        self.store.as_ref()
    }

    /// Acts on overlay events as if the person had clicked them.
    pub fn send(&mut self, events: &[OverlayEvent]) {
        self.apply_events(events);
    }

    pub fn in_kiosk_mode(&self) -> bool {
        self.kiosk.is_some()
    }

    /// Whether kiosk mode is playing attract digits.
    pub fn in_attract(&self) -> bool {
        self.kiosk.as_ref().is_some_and(|k| k.in_attract())
    }

    /// Applies what kiosk mode decided; true when the kiosk must exit.
    fn apply_kiosk(&mut self, actions: KioskActions) -> bool {
        if actions.reset {
            self.overlay.canvas_mut().clear();
            self.close_dialogs();
            self.camera.reset();
            self.pick = None;
            self.hover = None;
            log::info!("idle: reset for the next visitor");
        }
        if actions.clear_canvas {
            self.overlay.canvas_mut().clear();
        }
        if actions.home_camera {
            self.camera.reset();
        }
        if let Some(ink) = &actions.attract_ink {
            self.overlay.canvas_mut().load_image(ink);
        }
        if actions.orbit_degrees != 0.0 {
            let mut goal = self.camera.goal();
            goal.yaw += actions.orbit_degrees;
            self.camera.set_goal(goal);
        }
        actions.exit
    }

    /// Scripted use (`soak`): submits the open report form as `true_digit`; false when no
    /// form is open or it refuses (the model already said that digit; the form stays open).
    pub fn submit_report(&mut self, true_digit: u8) -> bool {
        let Some(store) = self.store.as_mut() else {
            return false;
        };
        let Some(submission) = store.report.submit_as(true_digit) else {
            return false;
        };
        match store.submit_report(&submission) {
            Ok(()) => true,
            Err(why) => {
                self.say(StatusLevel::Warning, why);
                false
            }
        }
    }

    /// Scripted use (`soak`): queues the newest `count` saved predictions for a re-run,
    /// as the dashboard's "Re-run all" does.
    pub fn rerun_newest(&mut self, count: usize) -> usize {
        let Some(link) = self.store.as_mut() else {
            return 0;
        };
        let ids = match link.store().map(|s| {
            s.ids(
                &crate::store::Filter::ALL,
                crate::store::Sort::Newest,
                0,
                count,
            )
        }) {
            Some(Ok(ids)) => ids,
            _ => return 0,
        };
        let queued = ids.len();
        link.rerun_queue.extend(ids);
        queued
    }

    /// Gallery tiles per dashboard page.
    pub fn set_gallery_page_size(&mut self, tiles: usize) {
        if let Some(store) = self.store.as_mut() {
            store.dashboard.set_page_size(tiles);
        }
    }

    /// Whether the dashboard is open.
    pub fn dashboard_open(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.dashboard.is_open())
    }

    /// Closes the dashboard and the report form (the kiosk's reset between visitors).
    pub fn close_dialogs(&mut self) {
        if let Some(store) = self.store.as_mut() {
            store.close_dialogs();
        }
    }

    fn say(&mut self, level: StatusLevel, text: impl Into<String>) {
        let text = text.into();
        if level != StatusLevel::Info {
            // Kiosks have nobody watching the status line: the log keeps it.
            log::warn!("{text}");
        }
        self.status
            .push((StatusMessage { level, text }, Instant::now()));
    }

    /// Writes the current drawing's input (or the blank input) into the network.
    fn write_current_input(&self) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let pixels = match &self.current_input {
            Some(pixels) => pixels.clone(),
            None => vec![0.0; self.model.input_len()],
        };
        let normalised = self.model.normalize(&pixels);
        if let Err(e) = session
            .network
            .write_inputs(&session.gpu.queue, &normalised)
        {
            log::warn!("writing the input: {e}");
        }
    }

    /// Acts on what the person did in the overlay this frame.
    fn apply_events(&mut self, events: &[OverlayEvent]) {
        let mut camera_keys = None;
        let mut store_requests = Vec::new();
        for event in events {
            match event {
                OverlayEvent::CanvasChanged(ink) => {
                    let input = self.model.architecture.input;
                    match mnist_input(ink, input.height, input.width) {
                        Ok(pixels) => {
                            self.current_input = Some(pixels);
                            self.wave_due |= !self.has_input;
                            self.has_input = true;
                        }
                        Err(_) => {
                            self.has_input = false;
                            self.current_input = None;
                        }
                    }
                    self.write_current_input();
                    if let Some(store) = self.store.as_mut() {
                        store.drawing_changed();
                    }
                    self.generation += 1;
                }
                OverlayEvent::Predict => {
                    self.scene_generation = None;
                    self.wave_due = true;
                }
                OverlayEvent::SetCamTarget(target) => {
                    self.analysis.target = *target;
                    self.generation += 1;
                }
                OverlayEvent::SetCamBlock(block) => {
                    self.analysis.block = *block;
                    self.generation += 1;
                }
                OverlayEvent::SetGradCam(on) => {
                    self.analysis.grad_cam = *on && !self.blocks.is_empty();
                    self.generation += 1;
                }
                OverlayEvent::SetColorMap(map) => {
                    self.color_map = *map;
                    self.images_due = true;
                }
                OverlayEvent::SetAnimation(on) => self.set_animation(*on),
                OverlayEvent::ResetCamera => self.camera.reset(),
                OverlayEvent::CameraKeys { yaw, pitch, zoom } => {
                    camera_keys = Some((*yaw, *pitch, *zoom));
                }
                OverlayEvent::ToggleFullscreen => {}
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
        if let Some((yaw, pitch, zoom)) = camera_keys {
            let dt = self.frame_seconds.clamp(0.0, 0.1);
            self.camera.orbit(yaw * 240.0 * dt, -pitch * 240.0 * dt);
            self.camera.zoom(zoom * 6.0 * dt);
        }
    }

    /// Runs the overlay on `raw_input` and draws one frame into `target`.
    pub fn frame(
        &mut self,
        raw_input: egui::RawInput,
        target: FrameTarget<'_>,
    ) -> anyhow::Result<FrameOutput> {
        // Anything under this scope that tries to wait for the GPU is refused.
        let _frame = crate::gpu::wait::FrameScope::enter();
        let now = Instant::now();
        self.frame_seconds = (now - self.last_frame).as_secs_f32();
        self.last_frame = now;
        self.frames += 1;
        self.status
            .retain(|(_, at)| at.elapsed().as_secs_f32() < 4.0);
        let mut requests = Vec::new();
        if let Some(kiosk) = self.kiosk.as_mut() {
            let held = self
                .egui_ctx
                .input(|i| i.pointer.any_down() || i.any_touches());
            let actions = kiosk.before_frame(now, &raw_input.events, held);
            if self.apply_kiosk(actions) {
                requests.push(WindowRequest::Exit);
            }
        }
        let session = self.session.as_ref().context("the GPU is being rebuilt")?;

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
            prediction: shown_for(&self.shown, self.generation, self.has_input).map(|output| {
                PredictionView {
                    probabilities: &output.probabilities,
                    predicted: output.predicted,
                }
            }),
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
            features: self.options.features,
        };
        let mut events = crate::ui::OverlayEvents::default();
        let mut gesture = scene_input::Gesture::default();
        let mut store_requests = store_link::StoreRequests::default();
        let store = &mut self.store;
        let overlay = &mut self.overlay;
        let kiosk = &mut self.kiosk;
        let mut kiosk_actions = KioskActions::default();
        let camera = &self.camera;
        // egui may run the closure twice in one frame (a discarded layout pass), and only the
        // first pass sees the input: what any pass reports is kept.
        let full_output = self.egui_ctx.run_ui(raw_input, |ui| {
            let shown: crate::ui::OverlayEvents = overlay.show(ui, &view);
            events.events.extend(shown.events);
            events.scene_rect = shown.scene_rect;
            if let Some(store) = store.as_mut() {
                let requests = store.show(ui.ctx());
                store_requests.dashboard.extend(requests.dashboard);
                store_requests.report = requests.report.or(store_requests.report.take());
            }
            gesture.add(scene_input::read(ui, events.scene_rect));
            scene_input::draw_labels(ui, &session.layout, camera, events.scene_rect);
            if let Some(kiosk) = kiosk.as_mut() {
                let shown = kiosk.show(ui.ctx(), now);
                kiosk_actions.exit |= shown.exit;
            }
        });
        let repaint_delay = full_output
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map(|v| v.repaint_delay);
        let pixels_per_point = full_output.pixels_per_point;
        let paint_jobs = self
            .egui_ctx
            .tessellate(full_output.shapes, pixels_per_point);
        let textures = full_output.textures_delta;
        let scene = events.scene_rect;
        self.scene_pixels = [
            scene.min.x * pixels_per_point,
            scene.min.y * pixels_per_point,
            scene.width().max(0.0) * pixels_per_point,
            scene.height().max(0.0) * pixels_per_point,
        ];
        self.refit_home_view();

        if kiosk_actions.exit {
            log::info!("admin exit");
            requests.push(WindowRequest::Exit);
        }
        if self.kiosk.is_none() && events.events.contains(&OverlayEvent::ToggleFullscreen) {
            requests.push(WindowRequest::ToggleFullscreen);
        }
        self.apply_events(&events.events);
        self.apply_store_requests(store_requests);
        if let Some(store) = self.store.as_mut() {
            for message in store.poll(&self.egui_ctx) {
                self.status.push((message, Instant::now()));
            }
        }
        self.apply_gesture(&gesture, pixels_per_point);
        let camera_moving = self.camera.update(self.frame_seconds);

        let session = self.session.as_mut().context("the GPU is being rebuilt")?;
        self.textures.record_uploads(&textures);
        for (id, deltas) in &textures.set {
            for delta in deltas {
                session
                    .egui
                    .update_texture(&session.gpu.device, &session.gpu.queue, *id, delta);
            }
        }
        let [width, height] = target.size;
        session.targets.resize(&session.gpu.device, width, height);
        let mut encoder =
            session
                .gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("frame"),
                });
        let time = self.started.elapsed().as_secs_f32();
        let generation = self.generation;
        let copy_due = self.copied_generation != Some(generation) && !session.outputs.in_flight();
        if self.scene_generation != Some(generation) || copy_due {
            let request = self.analysis.request(self.blocks.len());
            let copied =
                session.encode_inference(&mut encoder, &request, self.color_map, generation)?;
            self.scene_generation = Some(generation);
            if copied {
                self.copied_generation = Some(generation);
            }
            self.hover_due = true;
            self.images_due = false;
            if std::mem::take(&mut self.wave_due) && self.animation {
                self.wave = Some(Wave::starting_at(time));
            }
        } else if self.images_due {
            session.encode_images(&mut encoder, self.color_map);
            self.images_due = false;
        }
        let rerun_block = self.analysis.request(self.blocks.len()).block;
        if let Err(e) = session.reruns.encode(
            &session.gpu.queue,
            &mut encoder,
            &self.model,
            self.analysis.target,
            rerun_block,
        ) {
            log::warn!("re-run: {e}");
        }
        let hovered_copy = match self.pick {
            Some(pick) if self.hover_due => session
                .hovered
                .encode(
                    &mut encoder,
                    &session.network,
                    pick.activation,
                    pick.element_index,
                )
                .is_ok(),
            _ => false,
        };
        self.hover_due &= !hovered_copy;

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
        let [sx, sy, sw, sh] = self.scene_pixels;
        let params = FrameParams::new(&self.camera, [sw, sh], settings).at([sx, sy]);
        session.cubes.prepare(&session.gpu.queue, &params);
        session.cubes.encode_pass_in(
            &mut encoder,
            &session.targets,
            target.view,
            DEFAULT_BACKGROUND,
            Some(params.viewport_rect()),
        );

        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [width, height],
            pixels_per_point,
        };
        let gpu = &session.gpu;
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
                    view: target.view,
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
        self.textures.record_frees(&textures);
        for id in &textures.free {
            session.egui.free_texture(id);
        }

        // Readbacks: start the maps now, pick them up when they are done.
        session.outputs.start_map();
        session.reruns.start_map();
        if hovered_copy {
            session.hovered.start_map();
        }
        let mut timings_arrived = session.collect_timings();
        let _ = session.gpu.device.poll(wgpu::PollType::Poll);
        timings_arrived |= session.collect_timings();
        let mut waiting =
            session.outputs.in_flight() || session.reruns.busy() || session.timings_in_flight();
        // Something that came back after this frame was drawn needs one more frame to show.
        let mut arrived = timings_arrived;
        match session.take_outputs() {
            Ok(Some(shown)) => {
                self.shown = Some(shown);
                arrived = true;
            }
            Ok(None) => {}
            Err(e) => {
                // Lost: record this generation's copy again.
                self.copied_generation = None;
                log::warn!("inference readback: {e}");
            }
        }
        let reruns = session.reruns.try_take();
        match session.hovered.try_take() {
            Ok(Some(v)) => {
                if let Some(pick) = self
                    .pick
                    .filter(|p| p.activation == v.activation && p.element_index == v.element)
                {
                    self.hover = Some(self.hover_info(&pick, v.value));
                    arrived = true;
                }
            }
            Ok(None) => waiting |= hovered_copy,
            Err(e) => log::warn!("hovered value readback: {e}"),
        }

        match reruns {
            Ok(results) => {
                arrived |= !results.is_empty();
                for (id, output) in results {
                    let result = crate::ui::dashboard::RerunResult::from_output(
                        &output,
                        &self.model.architecture.name,
                    );
                    if let Some(store) = self.store.as_mut() {
                        store.dashboard.set_rerun_result(id, result);
                    }
                }
            }
            Err(e) => self.say(StatusLevel::Warning, format!("A re-run failed: {e}")),
        }

        // Redraw continuously only while something moves; otherwise sleep until an event
        // or until egui's own next repaint (a tooltip delay, a blinking cursor).
        let animating = settings.wave.is_some() || self.in_attract();
        let inference_due = self.scene_generation != Some(self.generation)
            || self.copied_generation != Some(self.generation);
        let redraw = if camera_moving || animating || waiting || arrived || inference_due {
            Redraw::Now
        } else {
            let egui_wants = repaint_delay.and_then(|delay| Instant::now().checked_add(delay));
            let kiosk_wants = self.kiosk.as_ref().and_then(|k| k.next_deadline());
            match egui_wants.into_iter().chain(kiosk_wants).min() {
                Some(at) if at <= Instant::now() => Redraw::Now,
                Some(at) => Redraw::At(at),
                None => Redraw::OnInput,
            }
        };
        Ok(FrameOutput {
            platform: full_output.platform_output,
            redraw,
            requests,
        })
    }

    /// While the person has not moved the camera, the home view follows the shape of the
    /// area the panels leave free (panels collapse, the window resizes).
    fn refit_home_view(&mut self) {
        let [_, _, w, h] = self.scene_pixels;
        if w < 1.0 || h < 1.0 {
            return;
        }
        let aspect = w / h;
        if (aspect / self.fitted_aspect - 1.0).abs() < 0.02 {
            return;
        }
        let at_home = self.camera.goal() == self.camera.home();
        if let Some(session) = &self.session
            && at_home
        {
            self.camera = session.layout.home_camera(aspect);
        }
        self.fitted_aspect = aspect;
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

    /// The record of the drawing on the canvas: exactly what is on screen (the inputs and
    /// the results of the current generation), with no new inference.
    fn current_prediction(&self) -> Result<crate::store::NewPrediction, String> {
        let input = self.current_input.as_ref().ok_or("Draw a digit first.")?;
        let store = self.store.as_ref().ok_or("no store")?;
        let output = self
            .shown_output()
            .ok_or("Still computing this drawing's prediction; try again in a moment.")?;
        let shape = self.model.architecture.input;
        let layer = output
            .grad_cam
            .as_ref()
            .and_then(|cam| self.blocks.get(cam.block))
            .map_or("", |block| block.name.as_str());
        Ok(crate::store::NewPrediction::from_inference(
            crate::store::now_ms(),
            &self.overlay.canvas().ink(),
            crate::store::ModelInput {
                channels: 1,
                height: shape.height as u16,
                width: shape.width as u16,
                values: input.clone(),
            },
            output,
            layer,
            store.model.clone(),
        ))
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
        // "Re-run all" feeds the re-run network one batch at a time.
        let room = self.session.as_ref().map_or(0, |s| s.reruns.room());
        let queued = self
            .store
            .as_mut()
            .map(|s| s.next_reruns(room))
            .unwrap_or_default();
        for input in queued {
            self.rerun(&input);
        }
    }

    /// Queues a stored input for the re-run network; the scene keeps showing the canvas.
    fn rerun(&mut self, input: &crate::store::RerunInput) {
        if input.input.values.len() != self.model.input_len() {
            self.say(
                StatusLevel::Warning,
                "That record was made for a model of another input size.",
            );
            return;
        }
        match self.session.as_mut() {
            Some(session) => session.reruns.push(input.clone()),
            None => self.say(StatusLevel::Warning, "The GPU is being rebuilt; try again."),
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
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let [sx, sy, sw, sh] = self.scene_pixels;
        let viewport = [sw.max(1.0), sh.max(1.0)];
        let camera = &mut self.camera;
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
        // The cursor relative to the scene's viewport, in pixels.
        let cursor = gesture
            .hover
            .map(|p| [p[0] * pixels_per_point - sx, p[1] * pixels_per_point - sy]);
        let pick = cursor.and_then(|c| session.layout.pick(camera, c, viewport));
        if pick.map(|p| p.instance) != self.pick.map(|p| p.instance) {
            self.hover = None;
            self.hover_due = true;
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

/// The results of `generation` among those that came back, if there is a drawing.
fn shown_for(
    shown: &Option<(u64, crate::gpu::ImageOutput)>,
    generation: u64,
    has_input: bool,
) -> Option<&crate::gpu::ImageOutput> {
    shown
        .as_ref()
        .filter(|(g, _)| *g == generation && has_input)
        .map(|(_, output)| output)
}
