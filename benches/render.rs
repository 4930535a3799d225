//! Frames per second of the full 3D scene, offscreen, on whatever adapter exists (lavapipe
//! on machines without a GPU): the committed model on a real digit, the home camera, at
//! 1280×720 and 1920×1080. One iteration is one frame: write the frame uniform, record the
//! scene pass, submit, wait for the GPU; no readback (one at the end checks the picture is
//! not empty). Criterion's throughput line reads as frames per second.
//!
//! Each adapter gets its own default (`RendererConfig::for_adapter`: per-cube instances and
//! 4× MSAA on GPUs, tiles without MSAA on CPU adapters); the other draw mode is measured
//! at 1280×720 for comparison. Run: `cargo bench --bench render`.

use std::path::Path;

use cnnviz::data::preprocess::{ink_from_image, load_image, mnist_input};
use cnnviz::gpu::{GpuContext, GpuNetwork, InferenceRequest};
use cnnviz::model::load_model;
use cnnviz::scene::{
    CubeRenderer, DrawMode, FrameParams, OffscreenTarget, RendererConfig, SceneLayout,
    SceneSettings,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;

fn render(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("no GPU adapter, skipping the render benchmark: {e}");
            return;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = load_model(&root.join("weights/mnist-cnn.safetensors")).expect("committed model");
    let network = GpuNetwork::new(&ctx.device, &model, 1).expect("network");
    let layout = SceneLayout::new(&model, network.layout());
    let image = load_image(&root.join("samples/7-mnist-test-0.png")).expect("sample");
    let input = model.architecture.input;
    let pixels = mnist_input(&ink_from_image(&image), input.height, input.width).expect("ink");
    network
        .write_inputs(&ctx.queue, &model.normalize(&pixels))
        .expect("input");

    let default = RendererConfig::for_adapter(&ctx.adapter, FORMAT);
    let other = RendererConfig {
        draw_mode: match default.draw_mode {
            DrawMode::Instanced => DrawMode::Tiles,
            DrawMode::Tiles => DrawMode::Instanced,
        },
        ..default
    };
    let runs = [
        (default, 1280, 720),
        (default, 1920, 1080),
        (other, 1280, 720),
    ];

    // The adapter's name in the group, as every figure of this project carries it.
    eprintln!("render benchmark on {}", ctx.describe());
    let mut group = c.benchmark_group(format!("render [{}]", ctx.info.name));
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let mut inference = Some(InferenceRequest::default());
    for (config, width, height) in runs {
        let renderer = CubeRenderer::new(&ctx.device, &network, &layout, config).expect("renderer");
        let target = OffscreenTarget::new(&ctx.device, &renderer, width, height).expect("target");
        let camera = layout.home_camera(width as f32 / height as f32);
        let params = FrameParams::new(&camera, target.viewport(), SceneSettings::default());
        // The first frame also runs the network, so the arena holds a real digit.
        target
            .render(
                &ctx.device,
                &ctx.queue,
                &renderer,
                &params,
                inference.take().as_ref().map(|r| (&network, r)),
            )
            .expect("frame");
        let name = format!(
            "{width}x{height} {:?} msaa{}",
            config.draw_mode, config.sample_count
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                target
                    .render(&ctx.device, &ctx.queue, &renderer, &params, None)
                    .expect("frame");
                ctx.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .expect("wait");
            })
        });
        let picture = target.read(&ctx.device, &ctx.queue).expect("readback");
        let first = picture.get_pixel(0, 0).0;
        assert!(
            picture.pixels().any(|p| p.0 != first),
            "the benchmarked frame is empty"
        );
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
