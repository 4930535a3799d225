//! Benchmarks of the core engine on whatever adapter exists (lavapipe on machines without
//! a GPU), each kernel variant side by side (`direct`, `tiled`, `gemm`, `auto`; see
//! `cnnviz::gpu::kernel_choice`):
//!
//! - a per-layer table of GPU time from timestamp queries (median of several runs), for the
//!   shipped model's conv and dense layers at batch 1, 64 and 1024, printed before the
//!   criterion runs. Each layer runs inside a small slice model (the layer, its ReLU, and
//!   what it takes to make a valid model around it), because the whole model's activation
//!   arena does not fit a 128 MiB storage binding at batch 1024;
//! - criterion: `<variant>: interactive batch 1` is one inference as the window runs it
//!   (write, forward, Grad-CAM, value ranges, results back on the CPU); `<variant>: eval
//!   batch 256` is forward + softmax + readback of 256 images; and the CPU twin for scale.
//!
//! `cargo bench --bench kernels` runs everything; `CNNVIZ_BENCH_TABLE=0` skips the table.

use std::collections::BTreeMap;
use std::path::Path;

use cnnviz::gpu::{
    GpuContext, GpuNetwork, InferenceRequest, KernelTimer, KernelVariant, NetworkOptions,
};
use cnnviz::model::spec::{ARCHITECTURE_FORMAT, ARCHITECTURE_VERSION};
use cnnviz::model::train::{conv, dense, relu};
use cnnviz::model::{
    Architecture, InputSpec, LayerSpec, Model, Normalization, load_model, reference,
};
use criterion::{Criterion, Throughput};

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

fn network(ctx: &GpuContext, model: &Model, batch: u32, variant: KernelVariant) -> GpuNetwork {
    GpuNetwork::with_options(
        &ctx.device,
        model,
        batch,
        &NetworkOptions::with_kernels(variant),
    )
    .unwrap_or_else(|e| panic!("{variant} network for {batch} images: {e}"))
}

/// A model of `layers` on a one-channel `height × width` input with deterministic
/// pseudo-random weights (timings do not depend on the values).
fn slice_model(name: &str, height: usize, width: usize, layers: Vec<LayerSpec>) -> Model {
    let architecture = Architecture {
        format: ARCHITECTURE_FORMAT.to_string(),
        version: ARCHITECTURE_VERSION,
        name: name.to_string(),
        input: InputSpec {
            channels: 1,
            height,
            width,
        },
        classes: (0..10).map(|c| c.to_string()).collect(),
        normalization: Normalization::uniform(0.0, 1.0),
        preprocessing: None,
        layers,
    };
    let mut state = 0x2545_f491_u32;
    let next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32 - 0.5) * 0.2
    };
    Model::filled(architecture, next).expect("slice parameters fit")
}

fn flatten() -> LayerSpec {
    LayerSpec::Flatten {
        name: "flatten".to_string(),
    }
}

/// The shipped model's conv1, conv2 and fc1 (with the ReLU after each), each in a slice,
/// with the label prefix of its launches.
fn layer_slices() -> Vec<(&'static str, Model)> {
    vec![
        (
            "conv1 ",
            slice_model(
                "conv1",
                28,
                28,
                vec![
                    conv("conv1", 1, 16, 3, 1, 1),
                    relu("relu1"),
                    flatten(),
                    dense("head", 16 * 28 * 28, 10),
                ],
            ),
        ),
        (
            "conv2 ",
            slice_model(
                "conv2",
                14,
                14,
                vec![
                    conv("widen", 1, 16, 1, 1, 0),
                    conv("conv2", 16, 32, 3, 1, 1),
                    relu("relu2"),
                    flatten(),
                    dense("head", 32 * 14 * 14, 10),
                ],
            ),
        ),
        (
            "fc1 ",
            slice_model(
                "fc1",
                28,
                56,
                vec![
                    flatten(),
                    dense("fc1", 1568, 64),
                    relu("relu3"),
                    dense("fc2", 64, 10),
                ],
            ),
        ),
    ]
}

/// Median GPU nanoseconds per launch label of `runs` timed inferences.
fn median_timings(
    ctx: &GpuContext,
    network: &GpuNetwork,
    model: &Model,
    batch: u32,
    request: InferenceRequest,
    runs: usize,
) -> Vec<(String, &'static str, f64)> {
    let mut timer = KernelTimer::new(&ctx.device, &ctx.queue, network.max_kernels_per_inference())
        .expect("timestamp queries");
    network
        .write_inputs(&ctx.queue, &inputs(model, batch as usize))
        .expect("inputs fit");
    let request = InferenceRequest { batch, ..request };
    let mut samples: BTreeMap<usize, (String, &'static str, Vec<f64>)> = BTreeMap::new();
    for _ in 0..runs {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        network
            .encode_timed(&mut encoder, &request, &mut timer)
            .expect("timed encode");
        ctx.queue.submit([encoder.finish()]);
        let timings = timer.read_blocking(&ctx.device).expect("timestamps");
        for (i, t) in timings.into_iter().enumerate() {
            samples
                .entry(i)
                .or_insert_with(|| (t.label.clone(), t.kernel, Vec::new()))
                .2
                .push(t.nanoseconds);
        }
    }
    samples
        .into_values()
        .map(|(label, kernel, mut ns)| {
            ns.sort_by(f64::total_cmp);
            (label, kernel, ns[ns.len() / 2])
        })
        .collect()
}

/// Prints direct vs tiled GPU time per layer at batch 1, 64 and 1024, and the whole
/// batch-1 forward + Grad-CAM inference kernel by kernel.
fn kernel_table(ctx: &GpuContext) {
    if !ctx
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        eprintln!(
            "{} has no timestamp queries: no kernel table",
            ctx.describe()
        );
        return;
    }
    println!("GPU time per layer (median, µs) on {}", ctx.describe());
    println!(
        "{:<8}{:>6}  {:>12} {:<24}{:>12} {:<28}{:>12} {:<28}{:>8}",
        "layer", "batch", "direct", "", "tiled", "", "gemm", "", "speedup"
    );
    let forward_only = InferenceRequest {
        grad_cam: false,
        value_ranges: false,
        ..Default::default()
    };
    for (prefix, model) in layer_slices() {
        for batch in [1u32, 64, 1024] {
            let runs = if batch >= 1024 { 3 } else { 9 };
            let time = |variant| {
                let network = network(ctx, &model, batch, variant);
                let timings = median_timings(ctx, &network, &model, batch, forward_only, runs);
                let at = timings
                    .iter()
                    .position(|(label, _, _)| label.starts_with(prefix))
                    .expect("the layer has a launch");
                // The unfused ReLU after the layer is part of what the fused kernel does.
                let relu = timings
                    .get(at + 1)
                    .filter(|(_, kernel, _)| *kernel == "relu.forward")
                    .map_or(0.0, |t| t.2);
                let kernel = if relu > 0.0 {
                    format!("{} + relu", timings[at].1)
                } else {
                    timings[at].1.to_string()
                };
                (kernel, (timings[at].2 + relu) / 1e3)
            };
            let (direct_kernel, direct) = time(KernelVariant::Direct);
            let (tiled_kernel, tiled) = time(KernelVariant::Tiled);
            let (gemm_kernel, gemm) = time(KernelVariant::Gemm);
            println!(
                "{:<8}{batch:>6}  {direct:>12.1} {direct_kernel:<24}{tiled:>12.1} {tiled_kernel:<28}{gemm:>12.1} {gemm_kernel:<28}{:>7.1}×",
                prefix.trim(),
                direct / tiled.min(gemm)
            );
        }
    }

    let model = committed_model();
    for variant in [KernelVariant::Direct, KernelVariant::Tiled] {
        let network = network(ctx, &model, 1, variant);
        let request = InferenceRequest {
            value_ranges: false,
            ..Default::default()
        };
        let timings = median_timings(ctx, &network, &model, 1, request, 15);
        let total: f64 = timings.iter().map(|t| t.2).sum();
        println!(
            "batch 1 forward + Grad-CAM, {variant}: {} launches, {:.1} µs GPU in total",
            timings.len(),
            total / 1e3
        );
        for (label, _, ns) in timings {
            println!("    {label:<36}{:>10.1}", ns / 1e3);
        }
    }
}

fn gpu(c: &mut Criterion, ctx: &GpuContext) {
    let model = committed_model();
    let adapter = ctx.describe();
    let mut group = c.benchmark_group(format!("gpu [{adapter}]"));
    group.sample_size(20);

    let one = inputs(&model, 1);
    for variant in KernelVariant::ALL {
        let single = network(ctx, &model, 1, variant);
        group.bench_function(format!("{variant}: interactive batch 1"), |b| {
            b.iter(|| {
                single
                    .run_blocking(&ctx.device, &ctx.queue, &one, &InferenceRequest::default())
                    .expect("inference")
            })
        });
    }

    let batch = 256;
    let images = inputs(&model, batch as usize);
    let forward_only = InferenceRequest {
        grad_cam: false,
        value_ranges: false,
        ..InferenceRequest::default()
    };
    group.throughput(Throughput::Elements(u64::from(batch)));
    for variant in [
        KernelVariant::Direct,
        KernelVariant::Tiled,
        KernelVariant::Gemm,
    ] {
        let many = network(ctx, &model, batch, variant);
        group.bench_function(format!("{variant}: eval batch 256"), |b| {
            b.iter(|| {
                many.run_blocking(&ctx.device, &ctx.queue, &images, &forward_only)
                    .expect("inference")
            })
        });
    }
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

fn main() {
    let mut c = Criterion::default().configure_from_args();
    match GpuContext::new() {
        Ok(ctx) => {
            if std::env::var("CNNVIZ_BENCH_TABLE").map_or(true, |v| v != "0") {
                kernel_table(&ctx);
            }
            gpu(&mut c, &ctx);
        }
        Err(e) => eprintln!("no GPU adapter, skipping GPU benchmarks: {e}"),
    }
    cpu_twin(&mut c);
    c.final_summary();
}
