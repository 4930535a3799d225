//! Criterion benchmarks of the core engine on whatever adapter exists (lavapipe on machines
//! without a GPU): one interactive inference (write, forward, Grad-CAM, value ranges,
//! probabilities back on the CPU), batched eval throughput, and the CPU twin for scale.
//! Per-kernel timings with timestamp queries belong to `cnnviz bench`.

use std::path::Path;

use cnnviz::gpu::{GpuContext, GpuNetwork, InferenceRequest};
use cnnviz::model::{Model, load_model, reference};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn committed_model() -> Model {
    load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
        .expect("committed model")
}

/// MNIST-like inputs without reading the data set: a bright ring on black, normalised.
fn inputs(model: &Model, count: usize) -> Vec<f32> {
    let (h, w) = (
        model.architecture.input.height,
        model.architecture.input.width,
    );
    let one: Vec<f32> = (0..h * w)
        .map(|i| {
            let (y, x) = (
                (i / w) as f32 - h as f32 / 2.0,
                (i % w) as f32 - w as f32 / 2.0,
            );
            let r = (x * x + y * y).sqrt();
            if (6.0..9.0).contains(&r) { 1.0 } else { 0.0 }
        })
        .collect();
    let normalised = model.normalize(&one);
    normalised
        .iter()
        .cycle()
        .take(count * h * w)
        .copied()
        .collect()
}

fn gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("no GPU adapter, skipping GPU benchmarks: {e}");
            return;
        }
    };
    let model = committed_model();
    let adapter = ctx.describe();
    let mut group = c.benchmark_group(format!("gpu [{adapter}]"));
    group.sample_size(20);

    let single = GpuNetwork::new(&ctx.device, &model, 1).expect("network");
    let one = inputs(&model, 1);
    group.bench_function(
        "interactive: forward + Grad-CAM + ranges + readback, batch 1",
        |b| {
            b.iter(|| {
                single
                    .run_blocking(&ctx.device, &ctx.queue, &one, &InferenceRequest::default())
                    .expect("inference")
            })
        },
    );

    let batch = 256;
    let many = GpuNetwork::new(&ctx.device, &model, batch).expect("network");
    let images = inputs(&model, batch as usize);
    let forward_only = InferenceRequest {
        grad_cam: false,
        value_ranges: false,
        ..InferenceRequest::default()
    };
    group.throughput(Throughput::Elements(u64::from(batch)));
    group.bench_function("eval: forward + softmax + readback, batch 256", |b| {
        b.iter(|| {
            many.run_blocking(&ctx.device, &ctx.queue, &images, &forward_only)
                .expect("inference")
        })
    });
    group.finish();
}

fn cpu_twin(c: &mut Criterion) {
    let model = committed_model();
    let one = inputs(&model, 1);
    let mut group = c.benchmark_group("cpu twin (f64)");
    group.sample_size(20);
    group.bench_function("forward + Grad-CAM, batch 1", |b| {
        b.iter(|| {
            let acts = reference::forward(&model, &one);
            let class = reference::argmax(acts.last().expect("logits"));
            reference::grad_cam(&model, &acts, class, model.conv_blocks().len() - 1)
        })
    });
    group.finish();
}

criterion_group!(benches, gpu, cpu_twin);
criterion_main!(benches);
