//! The viewer the window runs, driven headless: a digit on the canvas gives a prediction and
//! a picture; a lost device is rebuilt without losing the drawing; kiosk mode idles into
//! attract mode and leaves only through the admin chord and PIN.

mod common;

use std::path::Path;

use cnnviz::app::{HeadlessViewer, KioskOptions, StoreChoice, ViewerOptions, WindowRequest};
use cnnviz::kiosk::{AttractDigits, KioskConfig};
use cnnviz::model::Model;
use cnnviz::ui::OverlayFeatures;
use common::viewer::put_sample_on_canvas;

const SIZE: [u32; 2] = [1024, 640];

fn model() -> Model {
    common::viewer::model()
}

/// A headless viewer without a store; `None` (with a note) when there is no adapter outside
/// CI, a failure under `CI`.
fn headless() -> Option<HeadlessViewer> {
    headless_with(OverlayFeatures::default())
}

fn headless_with(features: OverlayFeatures) -> Option<HeadlessViewer> {
    let options = ViewerOptions {
        store: StoreChoice::None,
        features,
        ..ViewerOptions::default()
    };
    common::viewer::headless_viewer(options, SIZE)
}

/// Mean absolute difference of two pictures per channel, 0..255.
fn difference(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn a_digit_on_the_canvas_is_predicted_and_changes_the_picture() {
    let Some(mut headless) = headless() else {
        return;
    };
    headless.viewer_mut().set_animation(false);
    headless.settle().expect("empty canvas frames");
    assert!(headless.viewer().prediction().is_none(), "empty canvas");
    let empty = headless.screenshot().expect("screenshot");

    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    headless.settle().expect("frames");
    let (probabilities, predicted) = headless
        .viewer()
        .prediction()
        .expect("a prediction once the readback is back");
    assert_eq!(predicted, 7, "probabilities {probabilities:?}");
    let seven = headless.screenshot().expect("screenshot");
    assert_eq!(seven.dimensions(), (SIZE[0], SIZE[1]));
    let changed = difference(&empty, &seven);
    assert!(changed > 1.0, "the picture barely changed: {changed}");
}

#[test]
fn a_lost_device_is_rebuilt_with_the_drawing_kept() {
    // The pictures before and after are compared, so nothing that follows the wall clock
    // may be in them: the timing section's frame-time history (its plot rescales with
    // whatever the machine was doing) and the scene's dynamic resolution.
    let features = OverlayFeatures {
        timings: false,
        ..OverlayFeatures::default()
    };
    let Some(mut headless) = headless_with(features) else {
        return;
    };
    headless.viewer_mut().set_animation(false);
    headless.viewer_mut().pin_scene_scale(Some(1.0));
    put_sample_on_canvas(&mut headless, "3-mnist-test-18.png");
    headless.settle().expect("frames");
    eprintln!(
        "frames {} busy {} pred {:?}",
        headless.viewer().frames(),
        headless.viewer().busy(),
        headless.viewer().prediction()
    );
    let before = headless.viewer().prediction().map(|(_, c)| c);
    assert_eq!(before, Some(3));
    let picture_before = headless.screenshot().expect("screenshot");

    // What a driver reset looks like to wgpu.
    let gpu = headless.viewer().gpu().expect("gpu").clone();
    gpu.device.destroy();
    // wgpu reports the loss when the device is next maintained.
    let _ = gpu.device.poll(wgpu::PollType::Poll);
    assert!(headless.viewer().device_lost(), "destroy reports the loss");

    headless.settle().expect("frames after the loss");
    assert_eq!(headless.recoveries(), 1);
    assert!(!headless.viewer().device_lost());
    assert!(
        !headless.viewer().overlay().canvas().is_empty(),
        "drawing kept"
    );
    let after = headless.viewer().prediction().map(|(_, c)| c);
    assert_eq!(after, Some(3), "inference works on the new device");
    let picture_after = headless
        .screenshot()
        .expect("rendering works on the new device");
    // Same drawing, camera and choices: the same picture, up to the timing panel's text.
    let changed = difference(&picture_before, &picture_after);
    assert!(changed < 2.0, "the rebuilt frame differs: {changed}");
}

fn kiosk(idle_seconds: f64) -> Option<HeadlessViewer> {
    let gpu = common::viewer::viewer_gpu()?;
    // Shorter than a config file may say (10 s at least), so the test is quick.
    let mut config = KioskConfig {
        idle_seconds,
        ..KioskConfig::default()
    };
    config.attract.seconds_per_digit = 2.0;
    config.admin.pin = "2468".into();
    config.admin.key_chord = "Ctrl+Shift+Q".into();
    let options = ViewerOptions {
        store: StoreChoice::None,
        features: config.overlay_features(),
        kiosk: Some(KioskOptions {
            config,
            digits: AttractDigits::builtin(),
        }),
        ..ViewerOptions::default()
    };
    Some(HeadlessViewer::with_gpu(model(), options, gpu, SIZE, 1.0).expect("kiosk viewer"))
}

/// A key pressed and released (egui counts a key never released as repeating).
fn tap(kiosk: &mut HeadlessViewer, key: egui::Key, modifiers: egui::Modifiers) {
    for pressed in [true, false] {
        kiosk.push_event(egui::Event::Key {
            key,
            physical_key: None,
            pressed,
            repeat: false,
            modifiers,
        });
    }
}

#[test]
fn the_kiosk_idles_into_attract_mode_and_a_touch_gives_a_clean_canvas() {
    let Some(mut kiosk) = kiosk(0.5) else {
        return;
    };
    put_sample_on_canvas(&mut kiosk, "7-mnist-test-0.png");
    kiosk.frame().expect("frame");
    // Idle: the visitor's drawing goes, attract mode starts drawing MNIST digits.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let mut drew = false;
    for _ in 0..80 {
        kiosk.frame().expect("frame");
        if kiosk.viewer().in_attract() && !kiosk.viewer().overlay().canvas().is_empty() {
            drew = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(drew, "attract mode put a digit on the canvas");
    // Attract mode keeps drawing (a new digit starts on an empty canvas), so look for a
    // prediction over a few frames rather than after one settled frame.
    let mut predicted = false;
    for _ in 0..80 {
        kiosk.frame().expect("frame");
        if let Some(gpu) = kiosk.viewer().gpu() {
            let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
        }
        if kiosk.viewer().prediction().is_some() {
            predicted = true;
            break;
        }
    }
    assert!(predicted, "attract digits are predicted");

    // The first touch ends attract mode on a clean canvas.
    kiosk.push_event(egui::Event::PointerMoved(egui::pos2(600.0, 300.0)));
    kiosk.frame().expect("frame");
    assert!(!kiosk.viewer().in_attract());
    assert!(kiosk.viewer().overlay().canvas().is_empty());
}

#[test]
fn only_the_admin_chord_and_the_right_pin_exit_the_kiosk() {
    let Some(mut kiosk) = kiosk(60.0) else {
        return;
    };
    kiosk.frame().expect("frame");
    let exits = |kiosk: &mut HeadlessViewer| {
        let output = kiosk.frame().expect("frame");
        output.requests.contains(&WindowRequest::Exit)
    };
    // Escape and the digits alone do nothing.
    tap(&mut kiosk, egui::Key::Escape, egui::Modifiers::NONE);
    for k in [
        egui::Key::Num2,
        egui::Key::Num4,
        egui::Key::Num6,
        egui::Key::Num8,
    ] {
        tap(&mut kiosk, k, egui::Modifiers::NONE);
    }
    tap(&mut kiosk, egui::Key::Enter, egui::Modifiers::NONE);
    assert!(!exits(&mut kiosk));

    let chord = egui::Modifiers {
        ctrl: true,
        shift: true,
        command: true,
        ..egui::Modifiers::NONE
    };
    let type_pin = |kiosk: &mut HeadlessViewer, pin: [egui::Key; 4]| {
        tap(kiosk, egui::Key::Q, chord);
        kiosk.frame().expect("the PIN pad opens");
        for k in pin {
            tap(kiosk, k, egui::Modifiers::NONE);
        }
        tap(kiosk, egui::Key::Enter, egui::Modifiers::NONE);
    };
    // A wrong PIN keeps it running.
    type_pin(
        &mut kiosk,
        [
            egui::Key::Num1,
            egui::Key::Num2,
            egui::Key::Num3,
            egui::Key::Num4,
        ],
    );
    assert!(!exits(&mut kiosk));
    tap(&mut kiosk, egui::Key::Escape, egui::Modifiers::NONE);
    kiosk.frame().expect("frame");
    // The right one exits.
    type_pin(
        &mut kiosk,
        [
            egui::Key::Num2,
            egui::Key::Num4,
            egui::Key::Num6,
            egui::Key::Num8,
        ],
    );
    assert!(exits(&mut kiosk));
}

/// A viewer with a store in `dir`.
fn headless_with_store(dir: &Path) -> Option<HeadlessViewer> {
    let gpu = common::viewer::viewer_gpu()?;
    let options = ViewerOptions {
        store: StoreChoice::At(dir.join("store.redb")),
        ..ViewerOptions::default()
    };
    let mut headless = HeadlessViewer::with_gpu(model(), options, gpu, SIZE, 1.0)
        .unwrap_or_else(|e| panic!("viewer: {e:#}"));
    headless.viewer_mut().set_animation(false);
    // The store opens in the background.
    for _ in 0..400 {
        headless.frame().expect("frame");
        if headless
            .viewer()
            .store()
            .is_some_and(|s| s.store().is_some())
        {
            return Some(headless);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("the store did not open");
}

/// Draws frames back to back without ever waiting for the GPU (each frame only polls),
/// until the viewer has nothing left in flight and wants no more frames.
fn run_without_waiting(headless: &mut HeadlessViewer) {
    for _ in 0..3000 {
        let output = headless.frame().expect("frame");
        if output.redraw != cnnviz::app::Redraw::Now && !headless.viewer().busy() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("the viewer never came to rest");
}

/// What `cnnviz predict` computes for the drawing on the canvas (the CPU twin).
fn predict_canvas(headless: &HeadlessViewer) -> (Vec<f32>, usize) {
    let model = headless.viewer().model();
    let architecture = &model.architecture;
    let ink = headless.viewer().overlay().canvas().ink();
    let pixels = cnnviz::data::model_input::input_from_ink(
        &ink,
        architecture.input,
        architecture.preprocessing(),
    )
    .expect("a digit on the canvas");
    let activations = cnnviz::model::reference::forward(model, &model.normalize(&pixels));
    let logits = activations.last().expect("logits");
    let probabilities: Vec<f32> = cnnviz::model::reference::softmax(logits)
        .into_iter()
        .map(|p| p as f32)
        .collect();
    let predicted = cnnviz::model::reference::argmax(logits);
    (probabilities, predicted)
}

fn assert_close(shown: &[f32], expected: &[f32], what: &str) {
    assert_eq!(shown.len(), expected.len(), "{what}");
    for (class, (a, b)) in shown.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() < 1e-3,
            "{what}: class {class} shows {a}, expected {b}\nshown {shown:?}\nexpected {expected:?}"
        );
    }
}

#[test]
fn quick_strokes_end_on_the_prediction_of_the_final_drawing() {
    let Some(mut headless) = headless() else {
        return;
    };
    headless.viewer_mut().set_animation(false);
    run_without_waiting(&mut headless);
    // Drawings changing frame after frame, faster than the GPU answers: every frame records
    // an inference while earlier readbacks are still pending.
    for name in [
        "7-mnist-test-0.png",
        "1-mnist-test-2.png",
        "0-mnist-test-3.png",
        "8-mnist-test-61.png",
        "3-mnist-test-18.png",
    ] {
        put_sample_on_canvas(&mut headless, name);
        headless.frame().expect("frame");
    }
    run_without_waiting(&mut headless);
    let (shown, predicted) = headless
        .viewer()
        .prediction()
        .expect("a prediction for the drawing on the canvas");
    let (expected, expected_class) = predict_canvas(&headless);
    assert_eq!(predicted, expected_class, "the shown class");
    assert_close(shown, &expected, "the shown probabilities");
}

#[test]
fn rerunning_a_stored_record_leaves_the_scene_on_the_canvas() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = cnnviz::store::PredictionStore::open(&dir.path().join("store.redb"))
            .expect("store opens");
        store
            .save(&cnnviz::store::sample::sample_prediction(
                7,
                1_700_000_000_000,
            ))
            .expect("a record saved");
    }
    let Some(mut headless) = headless_with_store(dir.path()) else {
        return;
    };
    put_sample_on_canvas(&mut headless, "3-mnist-test-18.png");
    headless.settle().expect("frames");
    let before = headless.viewer().scene_activations().expect("scene read");

    assert_eq!(
        headless.viewer_mut().rerun_newest(1),
        1,
        "one record queued"
    );
    let id = headless
        .viewer()
        .store()
        .and_then(|s| s.store())
        .and_then(|s| {
            s.ids(
                &cnnviz::store::Filter::ALL,
                cnnviz::store::Sort::Newest,
                0,
                1,
            )
            .ok()
        })
        .and_then(|ids| ids.first().copied())
        .expect("the record's id");
    let mut rerun = false;
    for _ in 0..200 {
        headless.settle().expect("frames");
        if headless
            .viewer()
            .store()
            .is_some_and(|s| s.dashboard.rerun_result(id).is_some())
        {
            rerun = true;
            break;
        }
    }
    assert!(rerun, "the record was re-run");
    let after = headless.viewer().scene_activations().expect("scene read");
    assert_eq!(before.len(), after.len());
    for (layer, (a, b)) in before.iter().zip(&after).enumerate() {
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "activation {layer} of the scene changed by {worst} after a re-run"
        );
    }
    let (shown, _) = headless.viewer().prediction().expect("prediction");
    let (expected, _) = predict_canvas(&headless);
    assert_close(
        shown,
        &expected,
        "the canvas's probabilities after a re-run",
    );
}

#[test]
fn save_report_and_rerun_never_wait_in_a_frame_and_save_stores_what_is_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut headless) = headless_with_store(dir.path()) else {
        return;
    };
    let refused_before = cnnviz::gpu::wait::blocking_waits_refused();
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    headless.frame().expect("frame");
    put_sample_on_canvas(&mut headless, "2-mnist-test-1.png");
    headless.frame().expect("frame");
    run_without_waiting(&mut headless);
    let (shown, shown_class) = headless
        .viewer()
        .prediction()
        .map(|(p, c)| (p.to_vec(), c))
        .expect("prediction");
    // Save with the keyboard shortcut, inside a frame.
    tap(&mut headless, egui::Key::S, egui::Modifiers::NONE);
    run_without_waiting(&mut headless);
    let mut saved = None;
    for _ in 0..400 {
        headless.frame().expect("frame");
        let store = headless.viewer().store().and_then(|s| s.store());
        let ids = store
            .and_then(|s| {
                s.ids(
                    &cnnviz::store::Filter::ALL,
                    cnnviz::store::Sort::Newest,
                    0,
                    1,
                )
                .ok()
            })
            .unwrap_or_default();
        if let Some(id) = ids.first() {
            saved = store.and_then(|s| s.get(*id).ok().flatten());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let saved = saved.expect("the save reached the store");
    assert_eq!(usize::from(saved.predicted), shown_class);
    assert_close(&saved.probabilities, &shown, "the saved probabilities");

    // Report opens its form; re-runs go through frames.
    tap(&mut headless, egui::Key::R, egui::Modifiers::NONE);
    headless.frame().expect("frame");
    headless.viewer_mut().rerun_newest(8);
    run_without_waiting(&mut headless);
    assert_eq!(
        cnnviz::gpu::wait::blocking_waits_refused(),
        refused_before,
        "a frame tried to wait for the GPU"
    );
}

#[test]
fn a_model_without_conv_layers_runs_in_the_window_with_grad_cam_off() {
    let Some(gpu) = common::viewer::viewer_gpu() else {
        return;
    };
    let architecture = common::architecture(
        "dense-only",
        28,
        28,
        10,
        vec![common::flatten("flatten"), common::dense("fc", 28 * 28, 10)],
    );
    let model = common::random_model(architecture, 5);
    let options = ViewerOptions {
        store: StoreChoice::None,
        ..ViewerOptions::default()
    };
    let mut headless = HeadlessViewer::with_gpu(model, options, gpu, SIZE, 1.0)
        .unwrap_or_else(|e| panic!("viewer: {e:#}"));
    headless.viewer_mut().set_animation(false);
    put_sample_on_canvas(&mut headless, "4-mnist-test-4.png");
    // Every frame succeeds (the window ends on a frame error).
    headless.settle().expect("frames");
    let (shown, predicted) = headless.viewer().prediction().expect("a prediction");
    let (expected, expected_class) = predict_canvas(&headless);
    assert_eq!(predicted, expected_class);
    assert_close(shown, &expected, "dense-only probabilities");
    headless.screenshot().expect("a picture");
}

/// The status line's texts.
fn status_texts(headless: &HeadlessViewer) -> Vec<String> {
    headless
        .viewer()
        .status_line()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

#[test]
fn a_store_failure_in_the_frame_path_is_on_the_status_line_and_the_window_goes_on() {
    let Some(gpu) = common::viewer::viewer_gpu() else {
        return;
    };
    // The failure: the store's folder is a regular file, so opening it fails on the
    // opener thread and the frame that picks the result up meets the error.
    let dir = tempfile::tempdir().expect("temporary directory");
    let not_a_folder = dir.path().join("plain-file");
    std::fs::write(&not_a_folder, b"not a folder").expect("file");
    let options = ViewerOptions {
        store: StoreChoice::At(not_a_folder.join("store.redb")),
        ..ViewerOptions::default()
    };
    let mut headless = HeadlessViewer::with_gpu(model(), options, gpu, SIZE, 1.0)
        .unwrap_or_else(|e| panic!("viewer: {e:#}"));
    headless.viewer_mut().set_animation(false);
    let mut said = Vec::new();
    for _ in 0..400 {
        headless
            .frame()
            .expect("a store failure does not end the frame");
        said = status_texts(&headless);
        if said.iter().any(|t| t.contains("Saving is off")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        said.iter().any(|t| t.contains("Saving is off")),
        "the status line never said so: {said:?}"
    );
    let failure = said.iter().find(|t| t.contains("Saving is off")).unwrap();
    assert!(
        failure.contains("plain-file") || failure.to_lowercase().contains("directory"),
        "the status line should say what failed: {failure}"
    );

    // The window goes on: a drawing is predicted, and Save says why it cannot save.
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    run_without_waiting(&mut headless);
    let (_, predicted) = headless
        .viewer()
        .prediction()
        .expect("the drawing is predicted after the failure");
    assert_eq!(predicted, predict_canvas(&headless).1);
    headless
        .viewer_mut()
        .send(&[cnnviz::ui::OverlayEvent::Save]);
    headless.frame().expect("a frame after a refused save");
    let after = status_texts(&headless);
    assert!(
        after.iter().any(|t| t.contains("Saving is off")),
        "Save did not say why it cannot save: {after:?}"
    );
    assert!(headless.screenshot().is_ok(), "the frame is still drawn");
}

#[test]
fn a_scene_drawn_at_reduced_resolution_shows_the_same_picture_and_a_sharp_overlay() {
    let Some(mut headless) = headless() else {
        return;
    };
    headless.viewer_mut().set_animation(false);
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    headless.settle().expect("frames");
    headless.frame().expect("one more frame at rest");
    let sharp = headless.screenshot().expect("screenshot");

    headless.viewer_mut().pin_scene_scale(Some(0.5));
    headless.frame().expect("a reduced frame");
    assert_eq!(headless.viewer().last_split().scene_scale, 0.5);
    let reduced = headless.screenshot().expect("screenshot");
    if let Some(dir) = std::env::var_os("CNNVIZ_KEEP_PICTURES") {
        let dir = Path::new(&dir);
        sharp.save(dir.join("scene-scale-1.png")).expect("saved");
        reduced
            .save(dir.join("scene-scale-0.5.png"))
            .expect("saved");
    }

    // The same scene, softer: close on average, but not identical.
    let whole = difference(&sharp, &reduced);
    assert!(whole > 0.0, "the reduced frame is not reduced");
    assert!(
        whole < 6.0,
        "the reduced scene differs from the sharp one by {whole:.2} per channel"
    );
    // The overlay is never reduced: the canvas panel (top left) is the same to the pixel.
    let panel = |image: &image::RgbaImage| {
        image::imageops::crop_imm(image, 0, 40, 280, 280)
            .to_image()
            .into_raw()
    };
    assert_eq!(panel(&sharp), panel(&reduced), "the overlay changed");

    // Back to the budget's choice: at rest the scene is sharp again, to the pixel.
    headless.viewer_mut().pin_scene_scale(None);
    headless.settle().expect("frames");
    headless.frame().expect("one more frame at rest");
    assert_eq!(headless.viewer().last_split().scene_scale, 1.0);
    assert_eq!(
        difference(&sharp, &headless.screenshot().expect("screenshot")),
        0.0
    );
}
