//! The viewer the window runs, driven headless: a digit on the canvas gives a prediction and
//! a picture; a lost device is rebuilt without losing the drawing; kiosk mode idles into
//! attract mode and leaves only through the admin chord and PIN.

use std::path::Path;

use cnnviz::app::{
    HeadlessViewer, KioskOptions, StoreChoice, ViewerGpu, ViewerOptions, WindowRequest,
};
use cnnviz::data::preprocess::{ink_from_image, load_image};
use cnnviz::kiosk::{AttractDigits, KioskConfig};
use cnnviz::model::{Model, load_model};

const SIZE: [u32; 2] = [1024, 640];

fn model() -> Model {
    load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
        .expect("the committed model loads")
}

/// A headless viewer without a store; `None` (with a note) when there is no adapter outside
/// CI, a failure under `CI`.
fn headless() -> Option<HeadlessViewer> {
    let gpu = match ViewerGpu::headless() {
        Ok(gpu) => gpu,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so a GPU adapter is required: {e}")
        }
        Err(e) => {
            eprintln!("note: skipping GPU test: {e}");
            return None;
        }
    };
    let options = ViewerOptions {
        store: StoreChoice::None,
        ..ViewerOptions::default()
    };
    Some(
        HeadlessViewer::with_gpu(model(), options, gpu, SIZE, 1.0)
            .unwrap_or_else(|e| panic!("viewer: {e:#}")),
    )
}

fn put_sample_on_canvas(headless: &mut HeadlessViewer, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name);
    let ink = ink_from_image(&load_image(&path).expect("sample loads"));
    headless
        .viewer_mut()
        .overlay_mut()
        .canvas_mut()
        .load_image(&ink);
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
    let Some(mut headless) = headless() else {
        return;
    };
    headless.viewer_mut().set_animation(false);
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
    let gpu = match ViewerGpu::headless() {
        Ok(gpu) => gpu,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so a GPU adapter is required: {e}")
        }
        Err(e) => {
            eprintln!("note: skipping GPU test: {e}");
            return None;
        }
    };
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
