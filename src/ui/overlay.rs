//! [`Overlay`]: the panels around the scene and the per-frame contract with the window.
//!
//! Layout: a title bar on top, the drawing panel on the left (canvas, answer, chart), the
//! inspection panel on the right (Explain, feature maps, timing); both slide away (H, or
//! the title bar's toggles) and are resizable; whatever they leave is the scene. Panel
//! widths follow the window in points, so the layout is the same at any display scale.

use egui::{Panel, ScrollArea, Ui};

use super::canvas::{BRUSH_RANGE, Canvas};
use super::shortcuts::{self, Action};
use super::timing_panel::{self, FrameHistory};
use super::view::{OverlayEvent, OverlayEvents, OverlayView};
use super::{
    channel_panel, explain_grid, explain_panel, feature_map_panel, help_panel, inspector_panel,
    prediction_panel, status, testset_panel, theme, top_bar,
};
use crate::colormap::ColorMap;
use crate::explain::Method;
use crate::gpu::CamTarget;
use crate::ui::ExplainGrid;

/// The overlay's own state: the drawing, which panels are open, the frame-time history.
pub struct Overlay {
    canvas: Canvas,
    history: FrameHistory,
    draw_open: bool,
    inspect_open: bool,
    help_open: bool,
    /// The comparison grids' map pictures.
    grid_textures: explain_grid::MapTextures,
    /// The failure view's thumbnails.
    failures: testset_panel::TestSetPanel,
    /// The channel explorer's pictures.
    channel: channel_panel::ChannelPanel,
    /// The `large_controls` the theme was installed for.
    theme: Option<bool>,
}

impl Default for Overlay {
    fn default() -> Self {
        Overlay::new()
    }
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay {
            canvas: Canvas::new(),
            history: FrameHistory::default(),
            draw_open: true,
            inspect_open: true,
            help_open: false,
            grid_textures: explain_grid::MapTextures::default(),
            failures: testset_panel::TestSetPanel::default(),
            channel: channel_panel::ChannelPanel::default(),
            theme: None,
        }
    }

    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// For scripted drawing (attract mode), loading a saved digit, or clearing on idle.
    pub fn canvas_mut(&mut self) -> &mut Canvas {
        &mut self.canvas
    }

    pub fn is_help_open(&self) -> bool {
        self.help_open
    }

    /// Closes the help window (e.g. when a kiosk resets for the next visitor).
    pub fn close_help(&mut self) {
        self.help_open = false;
    }

    /// Draws one frame of the overlay into `ui` (the root `Ui` of `Context::run_ui`) and
    /// returns what the person did. Keyboard shortcuts are read here too, unless a text
    /// field has the keyboard.
    pub fn show(&mut self, ui: &mut Ui, view: &OverlayView) -> OverlayEvents {
        let ctx = ui.ctx().clone();
        let large = view.features.large_controls;
        self.canvas.set_invitation(view.features.invitation);
        if self.theme != Some(large) {
            theme::apply(&ctx, large);
            self.theme = Some(large);
        }
        // The work a frame costs, not the time between frames: an idle window draws once
        // a second and would read "1 FPS".
        if let Some(seconds) = view.frame_seconds {
            self.history.push(seconds);
        }

        let mut frame = Collected::default();
        for action in shortcuts::actions_this_frame(&ctx) {
            self.apply(action, view, &mut frame);
        }

        let toggles = top_bar::PanelToggles {
            draw: &mut self.draw_open,
            inspect: &mut self.inspect_open,
            help: &mut self.help_open,
        };
        let bar_actions = Panel::top("cnnviz top bar")
            .frame(unfilled_panel(ui.style()))
            .show(ui, |ui| top_bar::show(ui, view, toggles))
            .inner;
        for action in bar_actions {
            self.apply(action, view, &mut frame);
        }

        let width = ctx.content_rect().width();
        // Touch-first screens get a bigger canvas; the panels never take more than 45 %
        // of the width each, so the scene keeps the middle.
        let share = if large { 0.3 } else { 0.24 };
        let side_width = (width * share).clamp(250.0, 480.0);
        // Touch-first: the canvas is what people come to use, so its panel may grow
        // further on large screens (a 530-point canvas at 1080p).
        let draw_width = if large {
            (width * 0.32).clamp(250.0, 620.0)
        } else {
            side_width
        };
        let widest = (width * 0.45).max(220.0);
        let mut draw_open = self.draw_open;
        let drawn = Panel::left("cnnviz draw panel")
            .frame(unfilled_panel(ui.style()))
            .default_size(draw_width)
            .size_range(220.0..=widest)
            .show_collapsible(ui, &mut draw_open, |ui| self.draw_panel(ui, view))
            .map(|r| r.inner);
        self.draw_open = draw_open;
        match drawn {
            Some(actions) => {
                for action in actions {
                    self.apply(action, view, &mut frame);
                }
            }
            // A hidden canvas takes no input: finish a stroke it had begun.
            None => self.canvas.end_stroke(),
        }

        let canvas_empty = self.canvas.is_empty();
        let mut inspect_open = self.inspect_open;
        Panel::right("cnnviz inspect panel")
            .frame(unfilled_panel(ui.style()))
            .default_size(side_width)
            .size_range(220.0..=widest)
            .show_collapsible(ui, &mut inspect_open, |ui| {
                inspect_panel(ui, view, canvas_empty, &self.history, &mut frame.events)
            });
        self.inspect_open = inspect_open;

        let scene_rect = ui.available_rect_before_wrap();
        status::show(&ctx, view, scene_rect);
        explain_grid::show(&ctx, view, &mut self.grid_textures, &mut frame.events);
        self.inspector_window(&ctx, view, &mut frame.events);
        self.failure_window(&ctx, view, &mut frame.events);
        self.channel_window(&ctx, view, &mut frame.events);
        help_panel::show(&ctx, &mut self.help_open);

        if self.canvas.take_changed() {
            frame
                .events
                .push(OverlayEvent::CanvasChanged(self.canvas.ink()));
        }
        let [yaw, pitch, zoom] = frame.camera;
        if [yaw, pitch, zoom] != [0.0; 3] {
            frame
                .events
                .push(OverlayEvent::CameraKeys { yaw, pitch, zoom });
            // Held keys move the camera on every frame, input or not.
            ctx.request_repaint();
        }
        OverlayEvents {
            events: frame.events,
            scene_rect,
        }
    }

    /// The clicked cube's arithmetic, in a window of its own.
    fn inspector_window(
        &self,
        ctx: &egui::Context,
        view: &OverlayView,
        events: &mut Vec<OverlayEvent>,
    ) {
        let Some(inspector) = view.inspector.as_ref() else {
            return;
        };
        let window = egui::Window::new("Unit arithmetic")
            .id(egui::Id::unique("cnnviz inspector"))
            // Taller than the screen with a class picture and many terms: it scrolls.
            .vscroll(true)
            .max_height(ctx.content_rect().height() - 80.0)
            .default_width(420.0)
            // Beside the right panel, over the scene's far end, so most cubes stay clickable.
            .default_pos(egui::pos2(ctx.content_rect().width() * 0.74 - 430.0, 56.0));
        let (_, closed) = tool_window(ctx, window, |ui| inspector_panel::show(ui, inspector));
        if closed {
            events.push(OverlayEvent::CloseInspector);
        }
    }

    /// The failure view: both confusion matrices and the selected cell's digits.
    fn failure_window(
        &mut self,
        ctx: &egui::Context,
        view: &OverlayView,
        events: &mut Vec<OverlayEvent>,
    ) {
        let Some(failures) = view.failures.as_ref() else {
            return;
        };
        let window = egui::Window::new("Where the model fails")
            .id(egui::Id::unique("cnnviz failures"))
            .default_pos(ctx.content_rect().min + egui::vec2(260.0, 60.0));
        let (event, closed) = tool_window(ctx, window, |ui| self.failures.show(ui, failures));
        events.extend(event.flatten().map(OverlayEvent::Failures));
        if closed {
            events.push(OverlayEvent::SetFailureView(false));
        }
    }

    /// The channel explorer: weights, top examples, feature visualisation.
    fn channel_window(
        &mut self,
        ctx: &egui::Context,
        view: &OverlayView,
        events: &mut Vec<OverlayEvent>,
    ) {
        let Some(channel) = view.channel.as_ref() else {
            return;
        };
        let window = egui::Window::new("What a channel looks for")
            .id(egui::Id::unique("cnnviz channel"))
            .default_width(360.0)
            .default_pos(egui::pos2(ctx.content_rect().width() * 0.74 - 410.0, 56.0));
        let (event, closed) = tool_window(ctx, window, |ui| self.channel.show(ui, channel));
        events.extend(event.flatten().map(OverlayEvent::Channel));
        if closed {
            events.push(OverlayEvent::CloseChannel);
        }
    }

    /// The left panel: canvas, its controls, the answer and the chart.
    fn draw_panel(&mut self, ui: &mut Ui, view: &OverlayView) -> Vec<Action> {
        let mut actions = Vec::new();
        let panel_height = ui.available_height();
        ScrollArea::vertical()
            .id_salt("cnnviz draw scroll")
            .show(ui, |ui| {
                ui.add_space(4.0);
                // Square, as wide as the panel, but leaving room for the answer below it
                // on short screens.
                let side = ui
                    .available_width()
                    .min((panel_height * 0.52).max(200.0))
                    .floor();
                ui.vertical_centered(|ui| self.canvas.show(ui, side));
                if !view.input_note.is_empty() {
                    ui.label(
                        egui::RichText::new(view.input_note)
                            .small()
                            .color(super::theme::WEAK_TEXT),
                    );
                }
                ui.horizontal(|ui| {
                    let label = ui.label("Brush");
                    if view.features.large_controls {
                        // A finger needs the whole width to set a size precisely.
                        ui.spacing_mut().slider_width = (ui.available_width() - 8.0).max(100.0);
                    }
                    let mut brush = self.canvas.brush();
                    ui.add(
                        egui::Slider::new(&mut brush, BRUSH_RANGE)
                            .show_value(false)
                            .clamping(egui::SliderClamping::Always),
                    )
                    .labelled_by(label.id);
                    self.canvas.set_brush(brush);
                });
                actions.extend(canvas_buttons(ui, &self.canvas));
                ui.separator();
                let empty = self.canvas.is_empty();
                prediction_panel::show_answer(ui, view, empty);
                actions.extend(prediction_panel::show_chart(ui, view, empty));
                actions.extend(prediction_panel::show_target(ui, view));
            });
        actions
    }

    /// Turns an action (key or button) into overlay state changes and events.
    fn apply(&mut self, action: Action, view: &OverlayView, frame: &mut Collected) {
        let events = &mut frame.events;
        let features = view.features;
        match action {
            Action::Predict => {
                if !self.canvas.is_empty() {
                    events.push(OverlayEvent::Predict);
                }
            }
            Action::Clear => self.canvas.clear(),
            Action::Undo => {
                self.canvas.undo();
            }
            Action::Save if features.save => events.push(OverlayEvent::Save),
            Action::Report if features.report => events.push(OverlayEvent::Report),
            Action::Dashboard if features.dashboard => events.push(OverlayEvent::Dashboard),
            Action::Save | Action::Report | Action::Dashboard => {}
            Action::ToggleGradCam => events.push(OverlayEvent::SetGradCam(!view.grad_cam)),
            Action::NextMethod => {
                let at = Method::ALL.iter().position(|m| *m == view.explain.method);
                let next = at.map_or(0, |i| (i + 1) % Method::ALL.len());
                events.push(OverlayEvent::SetMethod(Method::ALL[next]));
            }
            Action::ToggleFailures if features.failures => {
                events.push(OverlayEvent::SetFailureView(view.failures.is_none()))
            }
            Action::ToggleFailures => {}
            Action::ToggleExplainGrid => events.push(OverlayEvent::SetExplainGrid(
                view.explain.grid.is_none().then_some(ExplainGrid::Methods),
            )),
            Action::TargetPredicted => {
                events.push(OverlayEvent::SetCamTarget(CamTarget::Predicted))
            }
            Action::TargetClass(class) => {
                if class < view.class_labels.len() {
                    events.push(OverlayEvent::SetCamTarget(CamTarget::Class(class)));
                }
            }
            Action::NextBlock => {
                let blocks = view.conv_blocks.len();
                if blocks > 1 {
                    events.push(OverlayEvent::SetCamBlock((view.cam_block + 1) % blocks));
                }
            }
            Action::NextColorMap => events.push(OverlayEvent::SetColorMap(match view.color_map {
                ColorMap::Viridis => ColorMap::Turbo,
                ColorMap::Turbo => ColorMap::Viridis,
            })),
            Action::ToggleAnimation => events.push(OverlayEvent::SetAnimation(!view.animation)),
            Action::ResetCamera => events.push(OverlayEvent::ResetCamera),
            Action::Orbit { yaw, pitch } => {
                frame.camera[0] = (frame.camera[0] + f32::from(yaw)).clamp(-1.0, 1.0);
                frame.camera[1] = (frame.camera[1] + f32::from(pitch)).clamp(-1.0, 1.0);
            }
            Action::Zoom(direction) => {
                frame.camera[2] = (frame.camera[2] + f32::from(direction)).clamp(-1.0, 1.0);
            }
            Action::TogglePanels => {
                let open = !(self.draw_open || self.inspect_open);
                self.draw_open = open;
                self.inspect_open = open;
            }
            Action::ToggleHelp => self.help_open = !self.help_open,
            Action::CloseHelp => self.help_open = false,
            Action::ToggleFullscreen => events.push(OverlayEvent::ToggleFullscreen),
        }
    }
}

/// What one frame collected before it becomes [`OverlayEvents`].
#[derive(Default)]
struct Collected {
    events: Vec<OverlayEvent>,
    /// Held camera keys: yaw, pitch, zoom.
    camera: [f32; 3],
}

/// The frame of the top bar and the side panels: egui's, without its fill. The viewer
/// clears the frame to the panels' colour ([`super::theme::PANEL`]) wherever the scene is
/// not, so filling the panels again would only cost a software rasteriser a blended
/// rectangle over half the window every frame (about 25 ms at 1280×720 on llvmpipe).
fn unfilled_panel(style: &egui::Style) -> egui::Frame {
    egui::Frame::side_top_panel(style).fill(egui::Color32::TRANSPARENT)
}

/// Predict, Undo, Clear: one row of equal, touch-sized buttons.
fn canvas_buttons(ui: &mut Ui, canvas: &Canvas) -> Vec<Action> {
    let mut actions = Vec::new();
    let spacing = ui.spacing().item_spacing.x;
    let width = ((ui.available_width() - 2.0 * spacing) / 3.0).max(40.0);
    let height = ui.spacing().interact_size.y + 4.0;
    let has_ink = !canvas.is_empty();
    ui.horizontal(|ui| {
        let predict = egui::Button::new(egui::RichText::new("Predict").strong())
            .fill(theme::ACCENT.gamma_multiply(0.35));
        let buttons = [
            (
                predict,
                has_ink,
                Action::Predict,
                "Run the network now (Enter)",
            ),
            (
                egui::Button::new("Undo"),
                !canvas.strokes().is_empty(),
                Action::Undo,
                "Remove the last stroke (Ctrl+Z, U)",
            ),
            (
                egui::Button::new("Clear"),
                has_ink,
                Action::Clear,
                "Start again (C, Delete)",
            ),
        ];
        for (button, enabled, action, help) in buttons {
            if ui
                .add_enabled(enabled, button.min_size(egui::vec2(width, height)))
                .on_hover_text(help)
                .clicked()
            {
                actions.push(action);
            }
        }
    });
    actions
}

/// The right panel: Explain, feature maps, timing.
fn inspect_panel(
    ui: &mut Ui,
    view: &OverlayView,
    canvas_empty: bool,
    history: &FrameHistory,
    events: &mut Vec<OverlayEvent>,
) {
    ScrollArea::vertical()
        .id_salt("cnnviz inspect scroll")
        .show(ui, |ui| {
            ui.add_space(4.0);
            egui::CollapsingHeader::new(egui::RichText::new("Explain").heading())
                .id_salt("cnnviz explain section")
                .default_open(true)
                .show(ui, |ui| explain_panel::show(ui, view, canvas_empty, events));
            egui::CollapsingHeader::new(egui::RichText::new("Feature maps").heading())
                .id_salt("cnnviz feature-map section")
                .default_open(true)
                .show(ui, |ui| {
                    if let Some((block, channel)) = feature_map_panel::show(ui, view, canvas_empty)
                    {
                        events.push(OverlayEvent::OpenChannel { block, channel });
                    }
                });
            if view.features.timings {
                egui::CollapsingHeader::new(egui::RichText::new("Timing").heading())
                    .id_salt("cnnviz timing section")
                    .default_open(true)
                    .show(ui, |ui| timing_panel::show(ui, view, history));
            }
        });
}

/// A closable window over the scene (inspector, failure view, channel explorer): what its
/// contents returned this frame, and whether the person closed it.
fn tool_window<R>(
    ctx: &egui::Context,
    window: egui::Window<'_>,
    contents: impl FnOnce(&mut Ui) -> R,
) -> (Option<R>, bool) {
    let mut open = true;
    let shown = window.open(&mut open).show(ctx, contents);
    (shown.and_then(|r| r.inner), !open)
}
