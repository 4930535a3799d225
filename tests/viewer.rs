//! The viewer the window runs, driven headless: a digit on the canvas gives a prediction and
//! a picture; a lost device is rebuilt without losing the drawing.

use std::path::Path;

use cnnviz::app::{HeadlessViewer, StoreChoice, ViewerGpu, ViewerOptions};
use cnnviz::data::preprocess::{ink_from_image, load_image};
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
