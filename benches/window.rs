//! Frames per second of the whole window while a person draws: the headless viewer (the
//! viewer the window runs, whole overlay included) at 1280×720 on whatever adapter exists,
//! the pen moving every frame (so every frame records an inference). One iteration is one
//! frame plus a wait for the GPU, so criterion's throughput line reads as frames per
//! second of CPU and GPU together. `cnnviz bench --only window` gives the split.
//! Run: `cargo bench --bench window`.

use std::path::Path;

use cnnviz::app::{HeadlessViewer, StoreChoice, ViewerGpu, ViewerOptions};
use cnnviz::bench::window::ScriptedPen;
use cnnviz::model::load_model;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn window(c: &mut Criterion) {
    let gpu = match ViewerGpu::headless() {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("no GPU adapter, skipping the window benchmark: {e}");
            return;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = load_model(&root.join("weights/mnist-cnn.safetensors")).expect("committed model");
    let options = ViewerOptions {
        store: StoreChoice::None,
        ..ViewerOptions::default()
    };
    let device = gpu.device.clone();
    eprintln!("window benchmark on {}", gpu.describe());
    let name = gpu.adapter.get_info().name;
    let mut headless =
        HeadlessViewer::with_gpu(model, options, gpu, [1280, 720], 1.0).expect("viewer");
    headless.viewer_mut().set_animation(false);
    headless.settle().expect("first frames");
    let mut pen = ScriptedPen::default();

    let mut group = c.benchmark_group(format!("window [{name}]"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("drawing 1280x720", |b| {
        b.iter(|| {
            pen.advance(&mut headless);
            headless.frame().expect("frame");
            cnnviz::gpu::wait::wait_for_gpu(&device).expect("wait");
        })
    });
    group.finish();
}

criterion_group!(benches, window);
criterion_main!(benches);
