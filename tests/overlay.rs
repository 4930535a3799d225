//! The egui overlay, driven headless with egui_kittest: drawing (mouse and touch), the
//! prediction display, the probability bars, clear and undo, the shortcut table, layouts
//! from 1024×600 to 4K; and, on whatever GPU adapter exists, the feature-map textures
//! against a CPU computation, plus screenshots of the whole overlay for people to look at
//! (`target/overlay-screenshots/`).

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cnnviz::colormap::ColorMap;
use cnnviz::data::preprocess::{InkImage, ink_from_image, load_image, mnist_input};
use cnnviz::gpu::{CamTarget, GpuNetwork, InferenceRequest, KernelTiming};
use cnnviz::model::{ConvBlock, Model, load_model, reference};
use cnnviz::ui::{
    FeatureMapImages, FeatureMapTextures, GpuTimes, HoverInfo, Overlay, OverlayEvent,
    OverlayEvents, OverlayFeatures, OverlayView, PredictionView, SHORTCUTS,
};
use egui::{Event, Modifiers, PointerButton, Pos2, TouchDeviceId, TouchId, TouchPhase};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
        load_model(&path).expect("the committed model loads")
    })
}

/// What the window would do with the overlay's events, with the CPU twin as the network.
struct App {
    overlay: Overlay,
    frames: Vec<OverlayEvents>,
    labels: Vec<String>,
    blocks: Vec<ConvBlock>,
    prediction: Option<(Vec<f32>, usize)>,
    cam_target: CamTarget,
    images: Option<FeatureMapImages>,
    timings: Vec<KernelTiming>,
    hover: Option<HoverInfo>,
    frame_seconds: f32,
    large_controls: bool,
    /// A text field in a window, like the store's report dialog, when `Some`.
    reason: Option<String>,
}

impl App {
    fn new() -> App {
        let model = model();
        App {
            overlay: Overlay::new(),
            frames: Vec::new(),
            labels: model.architecture.classes.clone(),
            blocks: model.conv_blocks(),
            prediction: None,
            cam_target: CamTarget::Predicted,
            images: None,
            timings: Vec::new(),
            hover: None,
            frame_seconds: 1.0 / 60.0,
            large_controls: false,
            reason: None,
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        let view = OverlayView {
            model_name: "mnist-cnn",
            adapter: "test adapter",
            class_labels: &self.labels,
            prediction: self.prediction.as_ref().map(|(p, c)| PredictionView {
                probabilities: p,
                predicted: *c,
            }),
            cam_target: self.cam_target,
            conv_blocks: &self.blocks,
            cam_block: self.blocks.len() - 1,
            grad_cam: true,
            images: self.images.as_ref(),
            gpu_times: if self.timings.is_empty() {
                GpuTimes::Unavailable("timestamps unavailable")
            } else {
                GpuTimes::Kernels(&self.timings)
            },
            frame_seconds: Some(self.frame_seconds),
            hover: self.hover.as_ref(),
            features: OverlayFeatures {
                large_controls: self.large_controls,
                ..Default::default()
            },
            ..Default::default()
        };
        let events = self.overlay.show(ui, &view);
        if let Some(reason) = &mut self.reason {
            egui::Window::new("Report").show(ui.ctx(), |ui| {
                let label = ui.label("Reason");
                ui.text_edit_singleline(reason).labelled_by(label.id);
            });
        }
        for event in &events.events {
            match event {
                OverlayEvent::CanvasChanged(ink) => self.prediction = predict(ink),
                OverlayEvent::SetCamTarget(target) => self.cam_target = *target,
                _ => {}
            }
        }
        self.frames.push(events);
    }

    fn events(&self) -> impl Iterator<Item = &OverlayEvent> {
        self.frames.iter().flat_map(|f| f.events.iter())
    }

    fn last_ink(&self) -> Option<&InkImage> {
        self.frames.iter().rev().find_map(|f| f.canvas())
    }
}

/// The reference twin's answer for a drawing, as the window would get it from the GPU.
fn predict(ink: &InkImage) -> Option<(Vec<f32>, usize)> {
    let model = model();
    let input = model.architecture.input;
    let pixels = mnist_input(ink, input.height, input.width).ok()?;
    let activations = reference::forward(model, &model.normalize(&pixels));
    let probabilities = reference::softmax(activations.last()?);
    let predicted = reference::argmax(&probabilities);
    Some((probabilities.iter().map(|&p| p as f32).collect(), predicted))
}

fn harness(size: [f32; 2], pixels_per_point: f32) -> Harness<'static, App> {
    let mut harness = Harness::builder()
        .with_size(size)
        .with_pixels_per_point(pixels_per_point)
        .build_ui_state(|ui, app: &mut App| app.ui(ui), App::new());
    harness.run();
    harness
}

fn canvas_rect(harness: &Harness<'_, App>) -> egui::Rect {
    harness.get_by_label("Drawing canvas").rect()
}

/// A point of the canvas in canvas-relative coordinates (0..1).
fn at(rect: egui::Rect, x: f32, y: f32) -> Pos2 {
    rect.min + egui::vec2(x, y) * rect.size()
}

fn press(pos: Pos2, pressed: bool) -> Event {
    Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    }
}

/// A mouse stroke through canvas-relative points, one frame per event.
fn mouse_stroke(harness: &mut Harness<'_, App>, points: &[[f32; 2]]) {
    let rect = canvas_rect(harness);
    let first = at(rect, points[0][0], points[0][1]);
    harness.event(Event::PointerMoved(first));
    harness.event(press(first, true));
    for p in &points[1..] {
        harness.event(Event::PointerMoved(at(rect, p[0], p[1])));
    }
    let last = points[points.len() - 1];
    harness.event(press(at(rect, last[0], last[1]), false));
    harness.run();
}

/// One touch event, plus what egui-winit adds for the finger it turns into the pointer.
fn touch_frame(id: u64, phase: TouchPhase, pos: Pos2, emulate_pointer: bool) -> Vec<Event> {
    let mut events = vec![Event::Touch {
        device_id: TouchDeviceId(7),
        id: TouchId(id),
        phase,
        pos,
        force: None,
    }];
    if emulate_pointer {
        match phase {
            TouchPhase::Start => events.extend([Event::PointerMoved(pos), press(pos, true)]),
            TouchPhase::Move => events.push(Event::PointerMoved(pos)),
            TouchPhase::End => events.extend([press(pos, false), Event::PointerGone]),
            TouchPhase::Cancel => events.push(Event::PointerGone),
        }
    }
    events
}

/// Runs one frame with exactly these events.
fn frame(harness: &mut Harness<'_, App>, events: Vec<Event>) {
    harness.input_mut().events.extend(events);
    harness.step();
}

/// Rows and columns of the 28×28 input that hold ink: `(first row, last row, first
/// column, last column)`.
fn ink_extent(pixels: &[f32], side: usize) -> (usize, usize, usize, usize) {
    let inked: Vec<(usize, usize)> = (0..side * side)
        .filter(|&i| pixels[i] > 0.2)
        .map(|i| (i / side, i % side))
        .collect();
    assert!(!inked.is_empty(), "no ink in the model input");
    let rows = inked.iter().map(|p| p.0);
    let cols = inked.iter().map(|p| p.1);
    (
        rows.clone().min().unwrap(),
        rows.max().unwrap(),
        cols.clone().min().unwrap(),
        cols.max().unwrap(),
    )
}

#[test]
fn a_stroke_emits_the_drawing_and_the_prediction_follows() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    assert!(harness.query_by_label("Draw a digit").is_some());
    mouse_stroke(
        &mut harness,
        &[[0.5, 0.15], [0.5, 0.4], [0.51, 0.6], [0.5, 0.85]],
    );

    let app = harness.state();
    let ink = app.last_ink().expect("drawing emits CanvasChanged");
    let input = mnist_input(ink, 28, 28).expect("the drawing has ink");
    // A vertical bar: tall and thin in the model input, as drawn.
    let (top, bottom, left, right) = ink_extent(&input, 28);
    assert!(bottom - top >= 17, "rows {top}..{bottom}");
    assert!(right - left <= 8, "columns {left}..{right}");
    // Prediction as you draw: a CanvasChanged while the button was still down.
    let changes = app
        .events()
        .filter(|e| matches!(e, OverlayEvent::CanvasChanged(_)))
        .count();
    assert!(
        changes >= 3,
        "{changes} canvas changes for a 4-point stroke"
    );
    let (_, predicted) = app.prediction.clone().expect("the twin predicted");
    assert_eq!(predicted, 1, "a vertical bar reads as 1");
    assert!(harness.query_by_label("Draw a digit").is_none());
    assert!(harness.query_by_label("predicted 1").is_some());
}

#[test]
fn canvas_changes_are_reported_at_most_once_per_frame() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    let rect = canvas_rect(&harness);
    let mut events = vec![
        Event::PointerMoved(at(rect, 0.2, 0.2)),
        press(at(rect, 0.2, 0.2), true),
    ];
    events.extend((1..20).map(|i| Event::PointerMoved(at(rect, 0.2 + 0.03 * i as f32, 0.3))));
    frame(&mut harness, events);
    let last = harness.state().frames.last().unwrap();
    let changes = last
        .events
        .iter()
        .filter(|e| matches!(e, OverlayEvent::CanvasChanged(_)))
        .count();
    assert_eq!(changes, 1);
    assert_eq!(
        harness.state().overlay.canvas().strokes()[0].points.len(),
        20
    );
}

#[test]
fn clicking_a_bar_targets_its_class_and_again_returns_to_the_prediction() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    mouse_stroke(&mut harness, &[[0.3, 0.2], [0.7, 0.2], [0.45, 0.85]]);
    harness.get_by_label("class 3").click();
    harness.run();
    assert!(
        harness
            .state()
            .events()
            .any(|e| *e == OverlayEvent::SetCamTarget(CamTarget::Class(3)))
    );
    assert_eq!(harness.state().cam_target, CamTarget::Class(3));

    harness.get_by_label("class 3").click();
    harness.run();
    assert_eq!(harness.state().cam_target, CamTarget::Predicted);

    // The number keys do the same, and the "predicted class" button undoes it.
    harness.key_press(egui::Key::Num5);
    harness.run();
    assert_eq!(harness.state().cam_target, CamTarget::Class(5));
    harness.get_by_label("predicted class").click();
    harness.run();
    assert_eq!(harness.state().cam_target, CamTarget::Predicted);
}

#[test]
fn clear_empties_the_canvas_and_the_prediction() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    mouse_stroke(&mut harness, &[[0.3, 0.3], [0.7, 0.7]]);
    assert!(harness.state().prediction.is_some());
    harness.get_by_label("Clear").click();
    harness.run();
    let app = harness.state();
    assert!(app.overlay.canvas().is_empty());
    let ink = app.last_ink().unwrap();
    assert!(ink.pixels.iter().all(|&v| v == 0.0), "cleared ink is empty");
    assert!(app.prediction.is_none());
    assert!(harness.query_by_label("Draw a digit").is_some());

    // The key does it too.
    mouse_stroke(&mut harness, &[[0.3, 0.3], [0.7, 0.7]]);
    harness.key_press(egui::Key::C);
    harness.run();
    assert!(harness.state().overlay.canvas().is_empty());
}

#[test]
fn undo_removes_the_last_stroke_only() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    mouse_stroke(&mut harness, &[[0.3, 0.2], [0.3, 0.8]]);
    let one_stroke = harness.state().last_ink().unwrap().clone();
    mouse_stroke(&mut harness, &[[0.6, 0.2], [0.6, 0.8]]);
    assert_eq!(harness.state().overlay.canvas().strokes().len(), 2);
    harness.get_by_label("Undo").click();
    harness.run();
    let app = harness.state();
    assert_eq!(app.overlay.canvas().strokes().len(), 1);
    assert_eq!(app.last_ink().unwrap(), &one_stroke);

    harness.key_press_modifiers(Modifiers::COMMAND, egui::Key::Z);
    harness.run();
    assert!(harness.state().overlay.canvas().is_empty());
}

#[test]
fn a_second_finger_never_draws() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    let rect = canvas_rect(&harness);
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::Start, at(rect, 0.2, 0.2), true),
    );
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::Move, at(rect, 0.25, 0.3), true),
    );
    // A second finger lands and moves far away, interleaved with the first.
    frame(
        &mut harness,
        touch_frame(2, TouchPhase::Start, at(rect, 0.9, 0.9), false),
    );
    let mut both = touch_frame(2, TouchPhase::Move, at(rect, 0.8, 0.1), false);
    both.extend(touch_frame(1, TouchPhase::Move, at(rect, 0.3, 0.4), true));
    frame(&mut harness, both);
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::End, at(rect, 0.3, 0.5), true),
    );
    // The first finger is up; the second one goes on moving.
    frame(
        &mut harness,
        touch_frame(2, TouchPhase::Move, at(rect, 0.1, 0.9), false),
    );
    frame(
        &mut harness,
        touch_frame(2, TouchPhase::End, at(rect, 0.1, 0.9), false),
    );
    harness.run();

    let strokes = harness.state().overlay.canvas().strokes();
    assert_eq!(strokes.len(), 1, "{strokes:?}");
    let points = &strokes[0].points;
    assert!(
        points.iter().all(|p| p[0] <= 0.31 && p[1] <= 0.51),
        "{points:?}"
    );
    assert_eq!(points.len(), 4, "{points:?}");
}

#[test]
fn a_cancelled_touch_ends_its_stroke_without_a_release() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    let rect = canvas_rect(&harness);
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::Start, at(rect, 0.2, 0.5), true),
    );
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::Move, at(rect, 0.5, 0.5), true),
    );
    assert!(harness.state().overlay.canvas().is_drawing());
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::Cancel, at(rect, 0.5, 0.5), true),
    );
    assert!(!harness.state().overlay.canvas().is_drawing());
    // Moves of the cancelled touch draw nothing.
    frame(
        &mut harness,
        touch_frame(1, TouchPhase::Move, at(rect, 0.8, 0.8), false),
    );
    assert_eq!(
        harness.state().overlay.canvas().strokes()[0].points.len(),
        2
    );
    // The next touch starts a fresh stroke.
    frame(
        &mut harness,
        touch_frame(3, TouchPhase::Start, at(rect, 0.6, 0.2), true),
    );
    frame(
        &mut harness,
        touch_frame(3, TouchPhase::Move, at(rect, 0.6, 0.7), true),
    );
    frame(
        &mut harness,
        touch_frame(3, TouchPhase::End, at(rect, 0.6, 0.7), true),
    );
    harness.run();
    let strokes = harness.state().overlay.canvas().strokes();
    assert_eq!(strokes.len(), 2);
    assert!(harness.state().prediction.is_some());
}

#[test]
fn a_stroke_ends_where_it_leaves_the_canvas() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    let rect = canvas_rect(&harness);
    frame(&mut harness, vec![press(at(rect, 0.5, 0.5), true)]);
    frame(&mut harness, vec![Event::PointerMoved(at(rect, 1.5, 0.5))]);
    assert!(!harness.state().overlay.canvas().is_drawing());
    // Coming back with the button still down draws nothing more.
    frame(&mut harness, vec![Event::PointerMoved(at(rect, 0.7, 0.7))]);
    frame(&mut harness, vec![press(at(rect, 0.7, 0.7), false)]);
    let points = &harness.state().overlay.canvas().strokes()[0].points;
    assert_eq!(points.len(), 2);
    assert!((points[1][0] - 1.0).abs() < 1e-6 && (points[1][1] - 0.5).abs() < 1e-6);

    // Touch: the same.
    frame(
        &mut harness,
        touch_frame(4, TouchPhase::Start, at(rect, 0.5, 0.5), false),
    );
    frame(
        &mut harness,
        touch_frame(4, TouchPhase::Move, at(rect, 0.5, -0.5), false),
    );
    assert!(!harness.state().overlay.canvas().is_drawing());
}

#[test]
fn no_key_is_bound_twice() {
    for (i, a) in SHORTCUTS.iter().enumerate() {
        for b in &SHORTCUTS[i + 1..] {
            assert!(
                !(a.key == b.key && a.modifiers == b.modifiers),
                "{} is bound to both {:?} and {:?}",
                a.key_label(),
                a.action,
                b.action
            );
        }
    }
}

#[test]
fn shortcut_keys_emit_the_store_and_camera_events() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    for key in [egui::Key::S, egui::Key::R, egui::Key::D, egui::Key::Home] {
        harness.key_press(key);
    }
    harness.key_down(egui::Key::ArrowLeft);
    harness.run_steps(2);
    harness.key_up(egui::Key::ArrowLeft);
    harness.run();
    let app = harness.state();
    for wanted in [
        OverlayEvent::Save,
        OverlayEvent::Report,
        OverlayEvent::Dashboard,
        OverlayEvent::ResetCamera,
        OverlayEvent::CameraKeys {
            yaw: -1.0,
            pitch: 0.0,
            zoom: 0.0,
        },
    ] {
        assert!(app.events().any(|e| *e == wanted), "no {wanted:?}");
    }
}

#[test]
fn the_explain_keys_and_buttons_pick_the_next_method_and_open_the_grids() {
    let mut harness = harness([1280.0, 720.0], 1.0);
    harness.key_press(egui::Key::N);
    harness.key_press(egui::Key::E);
    harness.run();
    harness.get_by_label("Every class").click();
    harness.run();
    let app = harness.state();
    for wanted in [
        // The view says Grad-CAM (the default), so N asks for the method after it.
        OverlayEvent::SetMethod(cnnviz::explain::Method::GradCamPlusPlus),
        OverlayEvent::SetExplainGrid(Some(cnnviz::ui::ExplainGrid::Methods)),
        OverlayEvent::SetExplainGrid(Some(cnnviz::ui::ExplainGrid::Classes)),
    ] {
        assert!(app.events().any(|e| *e == wanted), "no {wanted:?}");
    }
}

#[test]
fn the_layout_fits_from_1024x600_to_4k() {
    for (size, ppp) in [
        ([1024.0, 600.0], 1.0),
        ([1920.0, 1080.0], 1.0),
        ([1920.0, 1080.0], 2.0),
    ] {
        let harness = harness(size, ppp);
        let screen = egui::Rect::from_min_size(Pos2::ZERO, size.into());
        let canvas = canvas_rect(&harness);
        assert!(screen.contains_rect(canvas), "{size:?}: canvas {canvas:?}");
        assert!(
            (canvas.width() - canvas.height()).abs() < 1.0,
            "square canvas"
        );
        assert!(canvas.width() >= 200.0, "{size:?}: canvas {canvas:?}");
        let scene = harness.state().frames.last().unwrap().scene_rect;
        assert!(scene.width() >= 0.4 * size[0], "{size:?}: scene {scene:?}");
        for label in ["Predict", "Undo", "Clear", "Help"] {
            let rect = harness.get_by_label(label).rect();
            assert!(screen.contains_rect(rect), "{size:?}: {label} at {rect:?}");
            assert!(
                rect.height() >= 30.0,
                "{label} is {rect:?}: too small to touch"
            );
        }
    }
}

#[test]
fn hiding_the_panels_gives_the_scene_the_window() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    let before = harness.state().frames.last().unwrap().scene_rect;
    harness.key_press(egui::Key::H);
    harness.run();
    let after = harness.state().frames.last().unwrap().scene_rect;
    assert!(
        after.width() > before.width() + 400.0,
        "{before:?} → {after:?}"
    );
    assert!(harness.query_by_label("Drawing canvas").is_none());
}

#[test]
fn touch_first_controls_are_large_and_still_fit_1024x600() {
    let mut harness = Harness::builder()
        .with_size([1024.0, 600.0])
        .build_ui_state(
            |ui, app: &mut App| app.ui(ui),
            App {
                large_controls: true,
                ..App::new()
            },
        );
    harness.run();
    let screen = egui::Rect::from_min_size(Pos2::ZERO, egui::vec2(1024.0, 600.0));
    for label in ["Predict", "Undo", "Clear", "Help", "Save"] {
        let rect = harness.get_by_label(label).rect();
        assert!(screen.contains_rect(rect), "{label} at {rect:?}");
        assert!(
            rect.height() >= 44.0,
            "{label} is {rect:?}: too small for a finger"
        );
    }
    assert!(screen.contains_rect(canvas_rect(&harness)));
}

#[test]
fn keys_typed_into_a_text_field_are_not_shortcuts() {
    let mut harness = harness([1280.0, 800.0], 1.0);
    harness.state_mut().reason = Some(String::new());
    harness.run();
    harness.get_by_label("Reason").focus();
    harness.run();
    harness.key_press(egui::Key::S);
    harness.key_press(egui::Key::C);
    harness.run();
    assert!(!harness.state().events().any(|e| *e == OverlayEvent::Save));
}

#[test]
fn the_image_job_uniform_matches_its_wgsl_struct() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders/feature_maps.wgsl");
    let source = std::fs::read_to_string(path).expect("shader source");
    let module = naga::front::wgsl::parse_str(&source).expect("shader parses");
    let (span, members) = module
        .types
        .iter()
        .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
            (Some(name), naga::TypeInner::Struct { members, span }) if name == "ImageJob" => {
                Some((*span, members.len()))
            }
            _ => None,
        })
        .expect("ImageJob in feature_maps.wgsl");
    assert_eq!(
        span as usize,
        std::mem::size_of::<cnnviz::ui::feature_maps::ImageJob>()
    );
    assert_eq!(members, 10);
}

// ---------------------------------------------------------------------------------------
// On the GPU: the feature-map textures and screenshots.

/// Reads an Rgba8Unorm texture back (rows padded to wgpu's 256-byte copy alignment).
fn read_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
) -> Vec<[u8; 4]> {
    let (width, height) = (texture.width(), texture.height());
    let row = (width * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
        * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("texture readback"),
        size: u64::from(row * height),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: None,
            },
        },
        texture.size(),
    );
    queue.submit([encoder.finish()]);
    let slice = buffer.slice(..);
    slice.map_async(wgpu::MapMode::Read, |r| r.expect("map texture readback"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let data = slice.get_mapped_range().expect("mapped").to_vec();
    (0..height as usize)
        .flat_map(|y| {
            let start = y * row as usize;
            data[start..start + 4 * width as usize]
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_pixel(what: &str, got: [u8; 4], want: [u8; 3], tolerance: i32) {
    let close = (0..3).all(|k| (i32::from(got[k]) - i32::from(want[k])).abs() <= tolerance);
    assert!(close && got[3] == 255, "{what}: GPU {got:?}, CPU {want:?}");
}

/// Runs `model` on `inputs` (normalised, back to back), builds the textures, refreshes
/// them with `map`, and compares every texel of image 0 with a CPU computation from the
/// network's own buffers.
fn check_textures(model: &Model, inputs: &[f32], map: ColorMap) {
    let Some(gpu) = common::gpu() else { return };
    let (device, queue) = (&gpu.device, &gpu.queue);
    let images = inputs.len() / model.input_len();
    let network = GpuNetwork::new(device, model, images as u32).expect("network");
    let output = network
        .run_blocking(device, queue, inputs, &InferenceRequest::default())
        .expect("inference");
    let activations = network
        .read_activations(device, queue, 1)
        .expect("activations");
    let mut renderer =
        egui_wgpu::Renderer::new(device, wgpu::TextureFormat::Rgba8Unorm, Default::default());
    let textures = FeatureMapTextures::new(
        device,
        &network,
        &model.architecture.normalization,
        &mut renderer,
    )
    .expect("feature-map textures");
    let mut encoder = device.create_command_encoder(&Default::default());
    textures.encode(&mut encoder, map);
    queue.submit([encoder.finish()]);

    for (b, block) in model.conv_blocks().iter().enumerate() {
        let atlas = textures.images().blocks[b];
        let texels = read_texture(device, queue, textures.block_texture(b).unwrap());
        let values = &activations[0][block.output_layer + 1];
        let plane = block.height * block.width;
        for c in 0..block.channels {
            let channel = &values[c * plane..(c + 1) * plane];
            let lo = channel.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = channel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let [ox, oy] = atlas.origin(c);
            for (i, &v) in channel.iter().enumerate() {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                let texel = texels[(oy + i / block.width) * atlas.size[0] + ox + i % block.width];
                assert_pixel(
                    &format!("{} channel {c} pixel {i}", block.name),
                    texel,
                    map.rgb8(t),
                    2,
                );
            }
        }
    }

    // The input as drawn: every channel's normalisation undone; grey, or R, G, B.
    let input = model.architecture.input;
    let plane = input.height * input.width;
    let pixels: Vec<f32> = activations[0][0][..input.channels * plane]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (mean, std) = model.architecture.normalization.of_channel(i / plane);
            (v * std + mean).clamp(0.0, 1.0)
        })
        .collect();
    let texels = read_texture(device, queue, textures.input_texture());
    for (i, texel) in texels.iter().enumerate().take(plane) {
        let colour =
            cnnviz::heatmap::input_colour(&pixels, plane, i).map(|c| (c * 255.0).round() as u8);
        assert_pixel(&format!("input pixel {i}"), *texel, colour, 1);
    }
    let cam = &output.images[0]
        .grad_cam
        .as_ref()
        .expect("Grad-CAM ran")
        .heatmap;
    let expected = cnnviz::heatmap::overlay(&pixels, cam, input.width, input.height, 1, map);
    let texels = read_texture(device, queue, textures.grad_cam_texture());
    for (i, texel) in texels.iter().enumerate() {
        let want = expected
            .get_pixel((i % input.width) as u32, (i / input.width) as u32)
            .0;
        assert_pixel(&format!("Grad-CAM pixel {i}"), *texel, want, 2);
    }
}

fn sample_input(name: &str) -> Vec<f32> {
    let model = model();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name);
    let ink = ink_from_image(&load_image(&path).expect("sample loads"));
    let pixels = mnist_input(&ink, 28, 28).expect("sample has ink");
    model.normalize(&pixels)
}

#[test]
fn feature_map_textures_match_the_cpu_for_a_real_digit() {
    let input = sample_input("7-mnist-test-0.png");
    check_textures(model(), &input, ColorMap::Viridis);
    check_textures(model(), &input, ColorMap::Turbo);
}

#[test]
fn feature_map_textures_match_the_cpu_for_an_awkward_model() {
    use common::{architecture, conv, dense, flatten, pool, random_model, relu};
    // Three conv blocks (the last without ReLU), odd non-square sizes, a stride, a batch
    // of two (the images show image 0).
    let arch = architecture(
        "awkward",
        19,
        23,
        4,
        vec![
            conv("c1", 1, 5, 3, 1, 1),
            relu("r1"),
            pool("p1", 2, 2),
            conv("c2", 5, 7, 3, 2, 0),
            relu("r2"),
            conv("c3", 7, 3, 1, 1, 0),
            flatten("f"),
            dense("d", 3 * 4 * 5, 4),
        ],
    );
    let model = random_model(arch, 11);
    let mut rng = common::Rng::new(5);
    let inputs = rng.vec(2 * model.input_len(), 2.0);
    check_textures(&model, &inputs, ColorMap::Turbo);
}

#[test]
fn a_colour_models_input_and_grad_cam_textures_are_in_colour() {
    use common::{architecture, conv, dense, flatten, pool, random_model, relu};
    let mut arch = architecture(
        "colour",
        12,
        10,
        3,
        vec![
            conv("c1", 3, 4, 3, 1, 1),
            relu("r1"),
            pool("p1", 2, 2),
            flatten("f"),
            dense("d", 4 * 6 * 5, 3),
        ],
    );
    arch.input.channels = 3;
    arch.normalization = cnnviz::model::spec::Normalization {
        mean: cnnviz::model::spec::ChannelValues::Each(vec![0.2, 0.5, 0.7]),
        std: cnnviz::model::spec::ChannelValues::Each(vec![0.3, 0.2, 0.25]),
    };
    let model = random_model(arch, 3);
    // Raw pixels with different values per channel, normalised per channel.
    let mut rng = common::Rng::new(8);
    let pixels: Vec<f32> = (0..model.input_len()).map(|_| rng.unit()).collect();
    check_textures(&model, &model.normalize(&pixels), ColorMap::Viridis);
}

type Renderer = Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>;

/// A harness that renders with egui-wgpu on the test device, so textures made on that
/// device (the feature maps) show up, plus the renderer to register them with.
fn gpu_harness(
    gpu: &'static cnnviz::gpu::GpuContext,
    size: [f32; 2],
    ppp: f32,
) -> (Harness<'static, App>, Renderer) {
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let renderer = egui_wgpu::Renderer::new(&gpu.device, format, Default::default());
    let renderer = Arc::new(egui::mutex::RwLock::new(renderer));
    let render_state = egui_wgpu::RenderState {
        adapter: gpu.adapter.clone(),
        available_adapters: vec![gpu.adapter.clone()],
        instance: gpu.instance.clone(),
        device: gpu.device.clone(),
        queue: gpu.queue.clone(),
        target_format: format,
        renderer: renderer.clone(),
    };
    let mut app = App::new();
    app.timings = vec![
        timing("conv1 conv2d.forward", 41.0),
        timing("relu1 relu.forward", 6.0),
        timing("pool1 maxpool2d.forward", 9.0),
        timing("conv2 conv2d.forward", 96.0),
        timing("fc1 dense.forward", 23.0),
        timing("conv2 grad_cam.weights", 12.0),
    ];
    let harness = Harness::builder()
        .with_size(size)
        .with_pixels_per_point(ppp)
        .renderer(egui_kittest::wgpu::WgpuTestRenderer::from_render_state(
            render_state,
        ))
        .build_ui_state(
            |ui, app: &mut App| {
                // Stand-in for the 3D scene behind the panels.
                let backdrop = egui::Color32::from_rgb(12, 14, 19);
                ui.painter().rect_filled(ui.max_rect(), 0.0, backdrop);
                // A steady 60 FPS with a hiccup, for the sparkline.
                let frame = app.frames.len();
                app.frame_seconds = if frame % 50 == 49 { 0.034 } else { 0.0165 };
                app.ui(ui)
            },
            app,
        );
    (harness, renderer)
}

fn save_screenshot(harness: &mut Harness<'_, App>, name: &str) {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../overlay-screenshots");
    std::fs::create_dir_all(&out_dir).expect("screenshot folder");
    let image = harness.render().expect("render");
    let path = out_dir.join(format!("{name}.png"));
    image.save(&path).expect("save screenshot");
    eprintln!("screenshot: {}", path.display());
    let distinct: std::collections::HashSet<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    assert!(
        distinct.len() > 50,
        "{name}: only {} colours",
        distinct.len()
    );
}

/// Renders the overlay at a few sizes to PNG files for people to look at, the way the
/// window runs it: the canvas's ink goes through the GPU network, the feature-map textures
/// are refreshed from its buffers, and egui draws them. Checks the frames are not blank.
#[test]
fn screenshots_of_the_overlay() {
    let Some(gpu) = common::gpu() else { return };
    let model = model();
    let network = GpuNetwork::new(&gpu.device, model, 1).expect("network");

    for (name, size, ppp, large) in [
        ("overlay-1280x800", [1280.0, 800.0], 1.0, false),
        ("overlay-1024x600", [1024.0, 600.0], 1.0, false),
        ("overlay-1920x1080-at-2x", [1920.0, 1080.0], 2.0, false),
        ("overlay-kiosk-1280x800", [1280.0, 800.0], 1.0, true),
    ] {
        let (mut harness, renderer) = gpu_harness(gpu, size, ppp);
        harness.state_mut().large_controls = large;
        harness.run();
        mouse_stroke(&mut harness, THREE);

        // What the window does with the drawing: preprocess, GPU, images.
        let ink = harness.state().last_ink().expect("drawn").clone();
        let pixels = mnist_input(&ink, 28, 28).expect("ink");
        let output = network
            .run_blocking(
                &gpu.device,
                &gpu.queue,
                &model.normalize(&pixels),
                &InferenceRequest::default(),
            )
            .expect("inference");
        let textures = FeatureMapTextures::new(
            &gpu.device,
            &network,
            &model.architecture.normalization,
            &mut renderer.write(),
        )
        .expect("textures");
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        textures.encode(&mut encoder, ColorMap::Viridis);
        gpu.queue.submit([encoder.finish()]);
        let app = harness.state_mut();
        app.images = Some(textures.images().clone());
        let answer = &output.images[0];
        app.prediction = Some((answer.probabilities.clone(), answer.predicted));
        app.hover = Some(HoverInfo {
            layer: "conv2".into(),
            channel: Some(5),
            position: [3, 4],
            value: 0.8123,
        });

        let scene = harness.state().frames.last().unwrap().scene_rect;
        harness.hover_at(scene.center());
        harness.run();
        save_screenshot(&mut harness, name);
    }

    // The empty state with the help window open.
    let (mut harness, _) = gpu_harness(gpu, [1280.0, 800.0], 1.0);
    harness.key_press(egui::Key::F1);
    harness.run();
    assert!(harness.state().overlay.is_help_open());
    save_screenshot(&mut harness, "overlay-empty-help");
}

/// A hand-drawn 3, canvas-relative.
const THREE: &[[f32; 2]] = &[
    [0.3, 0.22],
    [0.42, 0.15],
    [0.58, 0.15],
    [0.68, 0.25],
    [0.64, 0.38],
    [0.5, 0.47],
    [0.66, 0.55],
    [0.71, 0.68],
    [0.62, 0.81],
    [0.46, 0.86],
    [0.3, 0.8],
];

fn timing(label: &str, microseconds: f64) -> KernelTiming {
    KernelTiming {
        label: label.into(),
        kernel: "kernel",
        nanoseconds: 1e3 * microseconds,
    }
}
