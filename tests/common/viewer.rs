//! Headless viewers for the window's tests: a device (failing under `CI` when there is
//! none), a viewer on it, and samples put on its canvas as if drawn.

use std::path::Path;

use std::time::{Duration, Instant};

use cnnviz::app::{HeadlessViewer, Redraw, StoreChoice, ViewerGpu, ViewerOptions};
use cnnviz::data::preprocess::{ink_from_image, load_image};
use cnnviz::model::{Model, load_model};
use cnnviz::ui::OverlayFeatures;

/// The committed model.
pub fn model() -> Model {
    load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
        .expect("the committed model loads")
}

/// A new headless device; `None` (with a note) when there is no adapter outside CI, a
/// failure under `CI`.
pub fn viewer_gpu() -> Option<ViewerGpu> {
    match ViewerGpu::headless() {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so a GPU adapter is required: {e}")
        }
        Err(e) => {
            eprintln!("note: skipping GPU test: {e}");
            None
        }
    }
}

/// The committed model's viewer of `size` pixels at one pixel per point, on a new device.
pub fn headless_viewer(options: ViewerOptions, size: [u32; 2]) -> Option<HeadlessViewer> {
    let gpu = viewer_gpu()?;
    Some(
        HeadlessViewer::with_gpu(model(), options, gpu, size, 1.0)
            .unwrap_or_else(|e| panic!("viewer: {e:#}")),
    )
}

/// Puts `samples/NAME` on the canvas; the next frame picks it up as a drawing.
pub fn put_sample_on_canvas(headless: &mut HeadlessViewer, name: &str) {
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

/// A headless viewer of `size` without a store, the animation off, and nothing on screen
/// that depends on timing (the frame-time panel, a scene drawn at reduced resolution while a
/// loaded machine misses frames), so pictures compare.
pub fn quiet_viewer(size: [u32; 2]) -> Option<HeadlessViewer> {
    quiet_viewer_of(model(), size)
}

/// [`quiet_viewer`] of any model.
pub fn quiet_viewer_of(model: Model, size: [u32; 2]) -> Option<HeadlessViewer> {
    let options = ViewerOptions {
        store: StoreChoice::None,
        features: OverlayFeatures {
            timings: false,
            ..OverlayFeatures::default()
        },
        ..ViewerOptions::default()
    };
    let gpu = viewer_gpu()?;
    let mut headless = HeadlessViewer::with_gpu(model, options, gpu, size, 1.0)
        .unwrap_or_else(|e| panic!("viewer: {e:#}"));
    headless.viewer_mut().set_animation(false);
    headless.viewer_mut().pin_scene_scale(Some(1.0));
    Some(headless)
}

/// Frames (without waiting inside any) until the viewer rests, then one more to show
/// what arrived.
pub fn run_until_rest(headless: &mut HeadlessViewer) {
    for _ in 0..3000 {
        let output = headless.frame().expect("frame");
        if output.redraw != Redraw::Now && !headless.viewer().busy() {
            headless.frame().expect("frame");
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the viewer never came to rest");
}

/// Frames until `ready` finds what a background thread computes (the survey, a feature
/// visualisation), waiting between frames, never inside one; fails after `limit`.
pub fn frames_until<T>(
    headless: &mut HeadlessViewer,
    what: &str,
    limit: Duration,
    ready: impl Fn(&HeadlessViewer) -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        headless.frame().expect("frame");
        if let Some(found) = ready(headless) {
            return found;
        }
        assert!(
            started.elapsed() < limit,
            "{what} never came within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
