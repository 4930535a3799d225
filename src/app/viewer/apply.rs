//! Phase 3 of a frame, and the only place the viewer's state changes: what the person
//! asked for in the overlay (events, store requests, gestures, kiosk rules) is applied
//! here. A new overlay control adds one [`OverlayEvent`] and one arm in
//! [`Viewer::apply_events`].

use std::time::Instant;

use super::super::kiosk_mode::KioskActions;
use super::inspector::InspectorState;
use super::overlay_phase::OverlayRequests;
use super::{Viewer, WindowRequest, scene_input, store_link};
use crate::data::model_input::input_from_ink;
use crate::explain::Method;
use crate::scene::{DEFAULT_TOP_K, HighlightSet, influence};
use crate::ui::dashboard::DashboardEvent;
use crate::ui::{OverlayEvent, StatusLevel, StatusMessage};

/// What applying a frame's requests means for the rest of the frame.
pub(super) struct Applied {
    pub requests: Vec<WindowRequest>,
    pub camera_moving: bool,
}

impl Viewer {
    /// Applies everything the overlay pass returned, in a fixed order: the scene's area,
    /// window requests, overlay events, the store's dialogs and outcomes, the pointer over
    /// the scene, then the camera's motion.
    pub(super) fn apply(&mut self, pass: OverlayRequests) -> Applied {
        let pixels_per_point = pass.pixels_per_point;
        let scene = pass.scene_rect;
        self.scene_pixels = [
            scene.min.x * pixels_per_point,
            scene.min.y * pixels_per_point,
            scene.width().max(0.0) * pixels_per_point,
            scene.height().max(0.0) * pixels_per_point,
        ];
        self.refit_home_view();
        let mut requests = Vec::new();
        if pass.kiosk_exit {
            log::info!("admin exit");
            requests.push(WindowRequest::Exit);
        }
        if self.kiosk.is_none() && pass.events.contains(&OverlayEvent::ToggleFullscreen) {
            requests.push(WindowRequest::ToggleFullscreen);
        }
        self.apply_events(&pass.events);
        self.apply_store_requests(pass.store_requests);
        if let Some(store) = self.store.as_mut() {
            for message in store.poll() {
                self.status.push((message, Instant::now()));
            }
        }
        self.apply_gesture(&pass.gesture, pixels_per_point);
        self.ask_for_explanations();
        let camera_moving = self.camera.update(self.clock.since_last());
        Applied {
            requests,
            camera_moving,
        }
    }

    /// Applies what kiosk mode decided; true when the kiosk must exit.
    pub(super) fn apply_kiosk(&mut self, actions: KioskActions) -> bool {
        if actions.reset {
            self.overlay.canvas_mut().clear();
            self.close_dialogs();
            // The next visitor starts without the last one's comparison grid.
            self.explanations.grid = None;
            self.camera.reset();
            self.pointer = Default::default();
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

    pub(super) fn say(&mut self, level: StatusLevel, text: impl Into<String>) {
        let text = text.into();
        if level != StatusLevel::Info {
            // Kiosks have nobody watching the status line: the log keeps it.
            log::warn!("{text}");
        }
        self.status
            .push((StatusMessage { level, text }, Instant::now()));
    }

    /// Acts on what the person did in the overlay this frame.
    pub(super) fn apply_events(&mut self, events: &[OverlayEvent]) {
        let mut camera_keys = None;
        let mut store_requests = Vec::new();
        for event in events {
            match event {
                OverlayEvent::CanvasChanged(ink) => {
                    let architecture = &self.model.architecture;
                    match input_from_ink(ink, architecture.input, architecture.preprocessing()) {
                        Ok(pixels) => {
                            self.wave.due |= self.current_input.is_none();
                            self.current_input = Some(pixels);
                        }
                        Err(_) => self.current_input = None,
                    }
                    self.write_current_input();
                    if let Some(store) = self.store.as_mut() {
                        store.drawing_changed();
                    }
                    self.generations.advance();
                }
                OverlayEvent::Predict => {
                    self.generations.rerun_scene();
                    self.wave.due = true;
                }
                OverlayEvent::SetCamTarget(target) => {
                    self.analysis.target = *target;
                    self.generations.advance();
                }
                OverlayEvent::SetCamBlock(block) => {
                    self.analysis.block = *block;
                    self.generations.advance();
                }
                OverlayEvent::SetGradCam(on) => {
                    self.analysis.grad_cam = *on && !self.blocks.is_empty();
                    self.generations.advance();
                }
                OverlayEvent::SetMethod(method) => {
                    let was_grad_cam = self.analysis.method == Method::GradCam;
                    self.analysis.method = *method;
                    // Grad-CAM runs inside the network and writes the CAM buffer that other
                    // methods' maps are written into: switching to or from it runs the
                    // scene's inference again (the same generation: the drawing's answer
                    // is unchanged).
                    if was_grad_cam != (*method == Method::GradCam) {
                        self.generations.rerun_scene();
                        self.explanations.tint = None;
                    }
                }
                OverlayEvent::SetExplainGrid(grid) => self.explanations.grid = *grid,
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
                OverlayEvent::CloseInspector => self.inspector = None,
                OverlayEvent::SetFailureView(open) => self.set_failure_view(*open),
                OverlayEvent::Failures(event) => self.apply_failure_event(*event),
                OverlayEvent::OpenChannel { .. } if !self.options.features.channels => {}
                OverlayEvent::OpenChannel { block, channel } => {
                    self.channel = super::channel::ChannelState::open(
                        &self.model,
                        &self.blocks,
                        *block,
                        *channel,
                    );
                    if self.channel.is_some() {
                        self.start_survey();
                        self.start_feature_vis(*block);
                    }
                }
                OverlayEvent::CloseChannel => self.channel = None,
                OverlayEvent::Channel(event) => self.apply_channel_event(*event),
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
            let dt = self.clock.since_last().clamp(0.0, 0.1);
            self.camera.orbit(yaw * 240.0 * dt, -pitch * 240.0 * dt);
            self.camera.zoom(zoom * 6.0 * dt);
        }
    }

    /// Opens the failure view (starting the test-set survey on its own thread the first
    /// time: it reads the cache or computes on this device) or closes it.
    fn set_failure_view(&mut self, open: bool) {
        if !open || !self.options.features.failures {
            self.failures = None;
            return;
        }
        if self.failures.is_some() {
            return;
        }
        if !self.start_survey() {
            return;
        }
        let store = self.store.as_ref().and_then(|s| s.store());
        self.failures = Some(super::failures::FailureState::open(store));
    }

    /// Starts the feature visualisation of every channel of `block` on its own thread,
    /// unless that block's runs (or ran) already.
    fn start_feature_vis(&mut self, block: usize) {
        let objective = crate::feature_vis::Objective::Channels { block };
        if self
            .feature_vis
            .as_ref()
            .is_some_and(|f| f.objective == objective)
        {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        self.feature_vis = Some(crate::app::feature_vis_worker::FeatureVisWorker::start(
            session.gpu.adapter.clone(),
            self.model.clone(),
            objective,
            self.egui_ctx.clone(),
        ));
    }

    /// Starts the test-set survey on its own thread unless it runs already; `false` (said
    /// on the status line) while the GPU is rebuilt.
    pub(super) fn start_survey(&mut self) -> bool {
        if self.survey.is_some() {
            return true;
        }
        let Some(session) = self.session.as_ref() else {
            self.say(StatusLevel::Warning, "The GPU is being rebuilt; try again.");
            return false;
        };
        self.survey = Some(crate::app::survey_worker::SurveyWorker::start(
            session.gpu.adapter.clone(),
            self.model.clone(),
            crate::data::default_data_dir(),
            self.egui_ctx.clone(),
        ));
        true
    }

    fn apply_failure_event(&mut self, event: crate::ui::testset_panel::TestSetEvent) {
        let store = self.store.as_ref().and_then(|s| s.store());
        let (Some(failures), Some(survey)) = (self.failures.as_mut(), self.survey.as_ref()) else {
            return;
        };
        match failures.apply(event, store, &survey.status()) {
            super::failures::FailureAction::None => {}
            super::failures::FailureAction::Say(why) => self.say(StatusLevel::Warning, why),
            super::failures::FailureAction::Open(ink) => {
                self.overlay.canvas_mut().load_image(&ink);
                self.apply_events(&[OverlayEvent::CanvasChanged(ink)]);
            }
        }
    }

    fn apply_channel_event(&mut self, event: crate::ui::channel_panel::ChannelEvent) {
        use crate::ui::channel_panel::ChannelEvent;
        match event {
            ChannelEvent::SetStatistic(statistic) => {
                if let Some(channel) = self.channel.as_mut() {
                    channel.statistic = statistic;
                }
            }
            ChannelEvent::Open(image) => {
                let Some(crate::app::survey_worker::SurveyStatus::Ready(data)) =
                    self.survey.as_ref().map(|s| s.status())
                else {
                    return;
                };
                if image >= data.data.len() {
                    return;
                }
                let ink: Vec<f32> = data
                    .data
                    .image(image)
                    .iter()
                    .map(|&p| f32::from(p) / 255.0)
                    .collect();
                let ink =
                    crate::data::preprocess::InkImage::new(data.data.cols, data.data.rows, ink);
                self.overlay.canvas_mut().load_image(&ink);
                self.apply_events(&[OverlayEvent::CanvasChanged(ink)]);
            }
        }
    }

    /// Hands the explanation worker what the current generation still needs (nothing
    /// when it has it all); an empty canvas drops its queue.
    fn ask_for_explanations(&mut self) {
        let choice = self.explain_choice();
        let generation = self.generations.current();
        let input = match &self.current_input {
            Some(pixels) if self.explanations.needs_input(generation) => {
                Some(self.model.normalize(pixels))
            }
            // Already given for this generation: `ask` keeps its own copy.
            Some(_) => Some(Vec::new()),
            None => None,
        };
        let Some(Ok(worker)) = self.session.as_ref().map(|s| &s.explain) else {
            return;
        };
        self.explanations.ask(worker, generation, input, &choice);
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
            .generations
            .shown()
            .filter(|_| self.current_input.is_some())
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
                channels: shape.channels as u16,
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
        self.pointer.point_at(pick);
        if gesture.clicked {
            let set: Option<HighlightSet> =
                pick.map(|p| influence(&self.model, &session.layout, &p, DEFAULT_TOP_K));
            session
                .cubes
                .set_highlight(&session.gpu.queue, set.as_ref());
            match pick {
                Some(pick) => self.open_inspector(pick),
                None => self.inspector = None,
            }
        }
    }

    /// The unit inspector on `pick` (a click on its cube); a logit also starts "what the
    /// network thinks each class looks like".
    pub(super) fn open_inspector(&mut self, pick: crate::scene::Pick) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let names: Vec<String> = session
            .network
            .layout()
            .slots
            .iter()
            .map(|s| s.name.clone())
            .collect();
        self.inspector = Some(InspectorState::open(&self.model, pick, &names));
        if pick.activation == self.model.layers.len() && self.class_vis.is_none() {
            self.class_vis = Some(crate::app::feature_vis_worker::FeatureVisWorker::start(
                session.gpu.adapter.clone(),
                self.model.clone(),
                crate::feature_vis::Objective::Classes,
                self.egui_ctx.clone(),
            ));
        }
    }
}
