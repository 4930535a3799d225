//! Criterion benchmarks of the whole GPU pipeline on whatever adapter exists (lavapipe on
//! machines without a GPU), the figures `cnnviz bench` reports, under criterion's
//! statistics:
//!
//! - `interactive`: one drawing's inference as the window runs it: write the input,
//!   forward, Grad-CAM, value ranges, the probabilities mapped on the CPU (wall time);
//! - `eval`: a batch of 256 through forward + softmax with every result read back (wall
//!   time; the throughput line reads as images/s);
//! - `kernel/…`: each launch of a batch-1 inference alone, in GPU time from timestamp
//!   queries (`iter_custom` sums the launch's own durations), where the device has them.
//!
//! Both networks run the kernels `cnnviz bench` and `eval` run: `CNNVIZ_KERNELS`, else the
//! autotuner's choice for this adapter (`gpu::tune`, timed at the first run, then cached).
//! The kernel-variant comparisons live in `benches/kernels.rs`, the scene in
//! `benches/render.rs`. Run: `cargo bench --bench pipeline`.

use std::path::Path;
use std::time::Duration;

use cnnviz::bench::synthetic_digit;
use cnnviz::gpu::tune::tuned_network;
use cnnviz::gpu::{GpuContext, GpuNetwork, InferenceRequest, KernelTimer, NetworkOptions};
use cnnviz::model::load_model;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn pipeline(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("no GPU adapter, skipping the pipeline benchmarks: {e}");
            return;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = load_model(&root.join("weights/mnist-cnn.safetensors")).expect("committed model");
    let image = synthetic_digit(&model);
    eprintln!("pipeline benchmarks on {}", ctx.describe());
    let mut group = c.benchmark_group(format!("pipeline [{}]", ctx.info.name));
    group.sample_size(20);

    let tuned = |batch| -> GpuNetwork {
        let options = NetworkOptions::default();
        let (network, choice) =
            tuned_network(&ctx.device, &ctx.queue, &model, batch, &options).expect("network");
        for decision in &choice.decisions {
            eprintln!("  batch {batch}: {}", decision.describe());
        }
        network
    };
    let single = tuned(1);
    let readback = single.probability_readback(&ctx.device);
    group.bench_function(
        "interactive: write + forward + Grad-CAM + ranges + probabilities, batch 1",
        |b| {
            b.iter(|| {
                single.write_inputs(&ctx.queue, &image).expect("input");
                let mut encoder = ctx.device.create_command_encoder(&Default::default());
                single
                    .encode(&mut encoder, &InferenceRequest::default())
                    .expect("encode");
                single
                    .encode_probability_readback(&mut encoder, &readback)
                    .expect("readback idle");
                ctx.queue.submit([encoder.finish()]);
                readback.start_map();
                ctx.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .expect("wait");
                readback.try_take().expect("map").expect("mapped")
            })
        },
    );

    let batch = 256u32;
    let many = tuned(batch);
    let images: Vec<f32> = image
        .iter()
        .cycle()
        .take(image.len() * batch as usize)
        .copied()
        .collect();
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

    // Per launch, GPU time. Every iteration runs the whole inference; only the launch's
    // own timestamps count.
    let mut timer =
        match KernelTimer::new(&ctx.device, &ctx.queue, single.max_kernels_per_inference()) {
            Ok(timer) => timer,
            Err(e) => {
                eprintln!("skipping the per-kernel benchmarks: {e}");
                return;
            }
        };
    single.write_inputs(&ctx.queue, &image).expect("input");
    let timed = |timer: &mut KernelTimer| {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        single
            .encode_timed(&mut encoder, &InferenceRequest::default(), timer)
            .expect("encode");
        ctx.queue.submit([encoder.finish()]);
        timer.read_blocking(&ctx.device).expect("timestamps")
    };
    let launches = timed(&mut timer);
    let mut group = c.benchmark_group(format!("kernel GPU time, batch 1 [{}]", ctx.info.name));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (i, launch) in launches.iter().enumerate() {
        // Two launches may share a label (the two normalise passes of a Grad-CAM).
        group.bench_function(format!("{i:02} {}", launch.label), |b| {
            b.iter_custom(|iters| {
                let nanos: f64 = (0..iters)
                    .map(|_| timed(&mut timer).get(i).map_or(0.0, |t| t.nanoseconds))
                    .sum();
                Duration::from_nanos(nanos as u64)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
