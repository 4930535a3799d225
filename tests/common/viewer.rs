//! Headless viewers for the window's tests: a device (failing under `CI` when there is
//! none), a viewer on it, and samples put on its canvas as if drawn.

use std::path::Path;

use cnnviz::app::{HeadlessViewer, ViewerGpu, ViewerOptions};
use cnnviz::data::preprocess::{ink_from_image, load_image};
use cnnviz::model::{Model, load_model};

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
