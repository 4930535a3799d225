//! The viewer: everything the window shows and does, without the window. One frame is a
//! fixed sequence of phases, each in its own module with one job:
//!
//! 1. input (`overlay_phase`): the frame clock starts, kiosk rules see the raw events;
//! 2. overlay (`overlay_phase`): the UI reads a view of the state and returns events;
//! 3. apply (`apply`): the only place the state changes;
//! 4. record (`record`): the network for the current input generation, re-runs, the
//!    readbacks' copies, the cube scene, the egui pass, in one encoder;
//! 5. submit (`record`): one submit, then the readbacks' maps start;
//! 6. collect (`collect`): whatever came back from earlier frames, never waiting;
//! 7. redraw (`redraw`): when to draw next.
//!
//! Which input an answer belongs to is [`generations`]'s job. A frame never waits for the
//! GPU (it runs under a [`crate::gpu::wait::FrameScope`], which refuses blocking waits),
//! starts no thread and touches no file outside the store.
//!
//! The winit window ([`super::run_window`]) feeds it input from the platform and a surface
//! texture; `render --overlay`, `soak` and the tests feed it scripted input and an offscreen
//! texture ([`super::HeadlessViewer`]). All state a person made (the drawing, the camera,
//! the choices, the store) lives here on the CPU, so a lost GPU device costs only a rebuild
//! of the [`Session`].

mod apply;
mod channel;
mod clock;
mod collect;
mod explanations;
mod failures;
mod generations;
mod inspector;
mod overlay_phase;
mod pointer;
mod record;
mod redraw;
mod resolution;
mod split;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::gpu::ViewerGpu;
use super::kiosk_mode::KioskMode;
use super::scene_input;
use super::session::{Analysis, Session};
use super::store_link;
use super::texture_mirror::TextureMirror;
use crate::colormap::ColorMap;
use crate::gpu::CamTarget;
use crate::model::Model;
use crate::scene::Camera;
use crate::ui::{Overlay, OverlayEvent, OverlayFeatures, StatusLevel, StatusMessage};
use clock::{FrameClock, WaveState};
use explanations::{Choice, Explanations};
use generations::Generations;
use pointer::Pointer;
use resolution::DynamicResolution;
pub use split::FrameSplit;
use split::Laps;

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
    /// How the drawing becomes the model's input, said under the canvas.
    input_note: String,
    /// `model.conv_blocks()`, computed once.
    blocks: Vec<crate::model::ConvBlock>,
    options: ViewerOptions,
    store: Option<store_link::StoreLink>,
    /// The model input (0..1, before normalisation) of the drawing on the canvas; `None`
    /// for an empty canvas.
    current_input: Option<Vec<f32>>,
    overlay: Overlay,
    egui_ctx: egui::Context,
    /// Everything on the GPU; `None` while a lost device is replaced.
    session: Option<Session>,
    textures: TextureMirror,
    camera: Camera,
    /// Aspect ratio (width / height) the home view was fitted to.
    fitted_aspect: f32,
    analysis: Analysis,
    color_map: ColorMap,
    /// Which input generation the scene and the answer belong to.
    generations: Generations,
    /// The overlay's images must be re-recorded (a colour-map change).
    images_due: bool,
    wave: WaveState,
    pointer: Pointer,
    status: Vec<(StatusMessage, Instant)>,
    clock: FrameClock,
    adapter: String,
    /// The scene's part of the last frame, in pixels: x, y, width, height.
    scene_pixels: [f32; 4],
    kiosk: Option<KioskMode>,
    /// Where the last frame's CPU time went.
    split: FrameSplit,
    /// How sharply the scene is drawn (dynamic resolution).
    resolution: DynamicResolution,
    /// The last frame asked to be followed at once.
    continuous: bool,
    /// What the explanation worker was asked and answered.
    explanations: Explanations,
    /// The clicked cube's arithmetic, while its inspector is open.
    inspector: Option<inspector::InspectorState>,
    /// The failure view, while open.
    failures: Option<failures::FailureState>,
    /// The channel explorer, while open.
    channel: Option<channel::ChannelState>,
    /// The test-set survey behind the failure view and the channel explorer, started the
    /// first time one of them opens.
    survey: Option<crate::app::survey_worker::SurveyWorker>,
    /// Feature visualisation of the open channel's block, on its own thread.
    feature_vis: Option<crate::app::feature_vis_worker::FeatureVisWorker>,
    /// What the network thinks each class looks like (for an inspected logit), on its own
    /// thread, started at the first click on a logit.
    class_vis: Option<crate::app::feature_vis_worker::FeatureVisWorker>,
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
        let egui_ctx = egui::Context::default();
        let session = Session::new(gpu, &model, &egui_ctx)?;
        let aspect = size[0].max(1) as f32 / size[1].max(1) as f32;
        let camera = session.layout.home_camera(aspect);
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
        let mut overlay = Overlay::new();
        let (input, preprocessing) = (model.architecture.input, model.architecture.preprocessing());
        overlay
            .canvas_mut()
            .set_field(crate::data::model_input::drawing_field(
                input,
                preprocessing,
            ));
        let viewer = Viewer {
            input_note: crate::data::model_input::describe(input, preprocessing),
            blocks: model.conv_blocks(),
            model,
            options,
            store,
            current_input: None,
            overlay,
            egui_ctx,
            session: Some(session),
            textures: TextureMirror::default(),
            camera,
            fitted_aspect: aspect,
            analysis: Analysis {
                target: CamTarget::Predicted,
                block: last,
                grad_cam: blocks > 0,
                method: crate::explain::Method::GradCam,
            },
            color_map,
            generations: Generations::default(),
            images_due: true,
            wave: WaveState {
                animation: true,
                running: None,
                due: false,
            },
            pointer: Pointer::default(),
            status: Vec::new(),
            clock: FrameClock::new(),
            adapter,
            scene_pixels: [0.0, 0.0, size[0] as f32, size[1] as f32],
            kiosk,
            split: FrameSplit::default(),
            resolution: DynamicResolution::default(),
            continuous: false,
            explanations: Explanations::default(),
            inspector: None,
            failures: None,
            channel: None,
            survey: None,
            feature_vis: None,
            class_vis: None,
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
    pub fn replace_gpu(&mut self, gpu: ViewerGpu, _size: [u32; 2]) -> anyhow::Result<()> {
        // Drop the old first: its buffers belong to a dead device.
        self.session = None;
        let mut session = Session::new(gpu, &self.model, &self.egui_ctx)?;
        for (id, delta) in self.textures.full_uploads() {
            session
                .egui
                .update_texture(&session.gpu.device, &session.gpu.queue, id, &delta);
        }
        self.adapter = session.gpu.describe();
        self.session = Some(session);
        self.pointer = Pointer::default();
        self.write_current_input();
        self.generations.gpu_replaced();
        self.explanations.worker_replaced();
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
        self.generations
            .shown()
            .filter(|_| self.current_input.is_some())
            .map(|o| (o.probabilities.as_slice(), o.predicted))
    }

    /// Whether the current generation's results have yet to come back, or any readback
    /// or re-run is still on its way.
    pub fn busy(&self) -> bool {
        !self.generations.settled()
            || self
                .session
                .as_ref()
                .is_some_and(|s| s.outputs.in_flight() || s.reruns.busy())
    }

    /// Whether the explanation worker has jobs queued or running.
    pub fn explaining(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.explain.as_ref().is_ok_and(|w| w.busy()))
    }

    /// Blocks until the explanation worker is idle, at most `timeout` (headless pictures
    /// and tests; refused inside a frame). False when the time ran out or there is no
    /// worker.
    pub fn wait_for_explanations(&mut self, timeout: std::time::Duration) -> anyhow::Result<bool> {
        let Some(Ok(worker)) = self.session.as_mut().map(|s| s.explain.as_mut()) else {
            return Ok(false);
        };
        Ok(worker.wait_idle(timeout)?)
    }

    /// The model input (0..1, before normalisation) of the drawing on the canvas.
    pub fn model_input(&self) -> Option<&[f32]> {
        self.current_input.as_deref()
    }

    /// The method the Explain panel shows.
    pub fn method(&self) -> crate::explain::Method {
        self.analysis.method
    }

    /// The Explain panel's explanation of the drawing on the canvas, once it has come back;
    /// `None` while it is computed (never an earlier drawing's).
    pub fn shown_explanation(&self) -> Option<&crate::explain::Explained> {
        let request = self.explanations.chosen(&self.explain_choice())?;
        self.current_input.as_ref()?;
        self.explanations
            .current(&request, self.generations.current())
    }

    /// The open grid's tiles as the overlay shows them: each request and its last answer
    /// with whether it belongs to the drawing on the canvas.
    pub fn explain_tiles(&self) -> Vec<crate::ui::GridTile<'_>> {
        self.explanations
            .tiles(&self.explain_choice(), self.generations.current())
    }

    /// Whether the scene is tinted with the chosen method's map of the drawing on the
    /// canvas (Grad-CAM's own, or another method's written into the CAM buffer).
    pub fn scene_tinted(&self) -> bool {
        self.scene_tint().is_some()
    }

    fn explain_choice(&self) -> Choice {
        Choice {
            method: self.analysis.method,
            target: self.analysis.target,
            block: (!self.blocks.is_empty()).then_some(self.analysis.block),
            classes: self.model.architecture.classes.len(),
            show: self.analysis.grad_cam,
        }
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

    /// The scene's layout (every drawn layer's board), while the GPU is there.
    pub fn scene_layout(&self) -> Option<&crate::scene::SceneLayout> {
        self.session.as_ref().map(|s| &s.layout)
    }

    /// The overlay's GPU images (input, Grad-CAM, channel atlases), when the adapter
    /// can make them.
    pub fn feature_map_images(&self) -> Option<&crate::scene::FeatureMapImages> {
        self.session
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .map(|i| i.images())
    }

    /// How the drawing becomes the model's input, as said under the canvas.
    pub fn input_note(&self) -> &str {
        &self.input_note
    }

    /// Where the middle of a cube's footprint is on the last frame, in pixels from the
    /// frame's top-left: scripted clicks (tests, demos) aim with it. `None` for a cube the
    /// scene does not draw.
    pub fn cube_on_screen(&self, activation: usize, element: usize) -> Option<[f32; 2]> {
        let session = self.session.as_ref()?;
        let placement = session.layout.placement(activation)?;
        let [sx, sy, sw, sh] = self.scene_pixels;
        let ndc = self
            .camera
            .view_proj(sw.max(1.0) / sh.max(1.0))
            .project_point3(placement.cell_centre(element));
        Some([sx + (ndc.x + 1.0) * 0.5 * sw, sy + (1.0 - ndc.y) * 0.5 * sh])
    }

    /// Opens the unit inspector on element `element` of activation `activation`, as a click
    /// on its cube does (`render --inspect`, demos); `false` for a cube the scene does not
    /// draw.
    pub fn inspect_unit(&mut self, activation: usize, element: usize) -> bool {
        let Some(session) = self.session.as_ref() else {
            return false;
        };
        let Some(placement) = session.layout.placement(activation) else {
            return false;
        };
        if element >= placement.len {
            return false;
        }
        let (channel, y, x) = placement.cell_of(element);
        let pick = crate::scene::Pick {
            activation,
            channel,
            y,
            x,
            element_index: element,
            instance: placement.instance_start + element as u32,
        };
        self.open_inspector(pick);
        true
    }

    /// The unit inspector's arithmetic as the overlay shows it: only for the drawing on
    /// the canvas (`None` while it is read back, or with no inspector open).
    pub fn inspected(&self) -> Option<(&crate::scene::Pick, &crate::inspect::UnitArithmetic)> {
        let inspector = self.inspector.as_ref()?;
        let generation = (self.generations.scene_is_current() && self.current_input.is_some())
            .then_some(self.generations.current());
        inspector
            .view(generation, "")
            .arithmetic
            .map(|a| (&inspector.pick, a))
    }

    /// The feature visualisation of the open channel's block, as far as it has come.
    pub fn channel_feature_vis(
        &self,
    ) -> Option<crate::app::feature_vis_worker::FeatureVisProgress> {
        let block = self.channel.as_ref()?.block;
        self.feature_vis
            .as_ref()
            .filter(|f| f.objective == crate::feature_vis::Objective::Channels { block })
            .map(|f| f.progress())
    }

    /// The inspected unit's Grad-CAM gradient as shown (for the drawing on the canvas).
    pub fn inspected_gradient(&self) -> Option<f32> {
        let inspector = self.inspector.as_ref()?;
        let generation = (self.generations.scene_is_current() && self.current_input.is_some())
            .then_some(self.generations.current());
        inspector.view(generation, "").gradient.map(|g| g.0)
    }

    /// The lowest activation the current inference's Grad-CAM backward pass writes
    /// gradients for, when it runs (Grad-CAM chosen and shown, and a conv block).
    fn gradient_from(&self) -> Option<usize> {
        let grad_cam =
            self.analysis.grad_cam && self.analysis.method == crate::explain::Method::GradCam;
        grad_cam
            .then(|| {
                self.blocks
                    .get(self.analysis.block)
                    .map(|b| b.output_layer + 1)
            })
            .flatten()
    }

    /// What the network thinks each class looks like, as far as it has come (started by the
    /// first click on a logit).
    pub fn class_feature_vis(&self) -> Option<crate::app::feature_vis_worker::FeatureVisProgress> {
        self.class_vis.as_ref().map(|v| v.progress())
    }

    /// The channel explorer's examples (test-set indices) as shown, once the survey is in.
    pub fn channel_examples(&self) -> Option<Vec<usize>> {
        self.channel.as_ref()?.shown_images()
    }

    /// Why the test-set survey failed, if it did.
    pub fn survey_error(&self) -> Option<String> {
        match self.survey.as_ref()?.status() {
            crate::app::survey_worker::SurveyStatus::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// The test-set survey once it is ready (`None` before a view asked for it, or while
    /// it computes).
    pub fn failure_survey(&self) -> Option<std::sync::Arc<crate::app::survey_worker::SurveyData>> {
        match self.survey.as_ref()?.status() {
            crate::app::survey_worker::SurveyStatus::Ready(data) => Some(data),
            _ => None,
        }
    }

    pub fn set_animation(&mut self, on: bool) {
        self.wave.animation = on;
        if !on {
            self.wave.running = None;
        }
    }

    pub fn frames(&self) -> u64 {
        self.clock.frames()
    }

    /// Draws the scene at `scale` of its area's width and height from the next frame on
    /// (tests and pictures of dynamic resolution), or as the frame budget says (`None`, the
    /// default: full resolution at rest, reduced while frames that follow one another miss
    /// 30 a second).
    pub fn pin_scene_scale(&mut self, scale: Option<f32>) {
        self.resolution.pin(scale);
    }

    /// What the status line shows now, oldest first.
    pub fn status_line(&self) -> Vec<StatusMessage> {
        self.status.iter().map(|(m, _)| m.clone()).collect()
    }

    /// GPU milliseconds of the last timed inference (the sum of its kernels' timestamps);
    /// `None` without timestamps or before the first timed inference.
    pub fn inference_gpu_ms(&self) -> Option<f64> {
        let timings = &self.session.as_ref()?.timings;
        (!timings.is_empty()).then(|| timings.iter().map(|t| t.nanoseconds).sum::<f64>() / 1e6)
    }

    /// Where the last frame's CPU time went (`cnnviz bench --only window`).
    pub fn last_split(&self) -> FrameSplit {
        self.split
    }

    /// The store's link, for scripted use (soak) and the kiosk's gallery.
    pub fn store(&self) -> Option<&store_link::StoreLink> {
        self.store.as_ref()
    }

    /// Acts on overlay events as if the person had clicked them.
    pub fn send(&mut self, events: &[OverlayEvent]) {
        self.apply_events(events);
    }

    /// Draws one frame of `raw_input` into `target`: the phases in order.
    pub fn frame(
        &mut self,
        raw_input: egui::RawInput,
        target: FrameTarget<'_>,
    ) -> anyhow::Result<FrameOutput> {
        // Anything under this scope that tries to wait for the GPU is refused.
        let _frame = crate::gpu::wait::FrameScope::enter();
        let mut whole = Laps::start();
        // 1. Input.
        let now = self.clock.begin();
        self.split.scene_scale = self.resolution.begin(now, self.continuous);
        let mut requests = self.kiosk_before_frame(&raw_input, now);
        // 2. Overlay: returns what the person asked for.
        let pass = self.show_overlay(raw_input, now)?;
        // 3. Apply it.
        let mut laps = Laps::start();
        let applied = self.apply(pass.requests);
        self.split.apply_ms = laps.lap();
        requests.extend(applied.requests);
        // 4–5. Record the GPU work and submit it.
        let recorded = self.record_and_submit(&pass.paint, &target)?;
        // 6. Collect what came back.
        let mut laps = Laps::start();
        let collected = self.collect_readbacks(recorded.hovered_copy);
        self.split.collect_ms = laps.lap();
        // 7. Decide when to draw next.
        let mut redraw = redraw::next_redraw(
            redraw::RedrawInputs {
                moving: applied.camera_moving || recorded.wave.is_some() || self.in_attract(),
                waiting: collected.waiting,
                arrived: collected.arrived,
                inference_pending: self.generations.pending(),
                egui_delay: pass.repaint_delay,
                kiosk_deadline: self.kiosk.as_ref().and_then(|k| k.next_deadline()),
            },
            Instant::now(),
        );
        self.continuous = redraw == Redraw::Now;
        if self
            .resolution
            .must_sharpen(self.split.scene_scale, self.continuous)
        {
            redraw = Redraw::Now;
        }
        self.clock.end();
        self.split.total_ms = whole.lap();
        Ok(FrameOutput {
            platform: pass.platform,
            redraw,
            requests,
        })
    }

    pub fn in_kiosk_mode(&self) -> bool {
        self.kiosk.is_some()
    }

    /// Whether kiosk mode is playing attract digits.
    pub fn in_attract(&self) -> bool {
        self.kiosk.as_ref().is_some_and(|k| k.in_attract())
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
}
