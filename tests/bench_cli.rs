//! `cnnviz bench` as a script uses it: a short run with `--json`, checked for structure and
//! sanity (never for speed), and its FLOP counts against ones computed here from the model's
//! layer shapes; bad options get one-line errors.

mod common;

use std::path::Path;

use cnnviz::model::{LayerOp, load_model};
use common::{assert_one_line_error, cnnviz, gpu_available};
use serde_json::Value;

fn positive(value: &Value, what: &str) -> f64 {
    let v = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(v.is_finite() && v > 0.0, "{what} = {v}");
    v
}

#[test]
fn a_short_json_run_is_complete_and_consistent() {
    if !gpu_available() {
        return;
    }
    let out_file = tempfile::NamedTempFile::new().expect("temp file");
    let out_path = out_file.path().to_str().expect("utf-8 path").to_string();
    let output = cnnviz(&[
        "bench",
        "--only",
        "latency,kernels",
        "--runs",
        "20",
        "--warmup",
        "2",
        "--seconds",
        "1",
        "--batches",
        "1,3",
        "--json",
        "--out",
        &out_path,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("stdout is one JSON object");
    let kept = std::fs::read_to_string(&out_path).expect("--out file");
    assert_eq!(kept, stdout, "--out keeps exactly what was printed");

    assert_eq!(report["schema"], "cnnviz.bench/1");
    let adapter = &report["adapter"];
    assert!(
        !adapter["name"].as_str().unwrap_or_default().is_empty(),
        "{adapter}"
    );
    assert!(adapter["backend"].is_string() && adapter["description"].is_string());
    for section in ["peak", "eval", "render", "window"] {
        assert!(report[section].is_null(), "{section} was not asked for");
    }

    let latency = &report["latency"];
    assert_eq!(latency["runs"], 20);
    let median = positive(&latency["median_us"], "latency median");
    let p99 = positive(&latency["p99_us"], "latency p99");
    assert!(p99 >= median, "p99 {p99} < median {median}");
    assert!(positive(&latency["min_us"], "min") <= median);

    // FLOPs of every conv and dense launch, from the model's own shapes.
    let model =
        load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
            .expect("committed model");
    let expected: Vec<(String, &str, u64)> = model
        .layers
        .iter()
        .filter_map(|layer| {
            let name = layer.plan.name.clone();
            match layer.plan.op {
                LayerOp::Conv2d(g) => {
                    let out = layer.plan.output.len() as u64;
                    let per_image = 2 * (g.in_channels * g.kernel * g.kernel) as u64 * out;
                    Some((name, "conv2d", per_image))
                }
                LayerOp::Dense {
                    in_features,
                    out_features,
                } => Some((name, "dense", 2 * (in_features * out_features) as u64)),
                _ => None,
            }
        })
        .collect();
    assert!(expected.iter().any(|(_, family, _)| *family == "conv2d"));

    let kernels = &report["kernels"];
    assert!(kernels["method"].is_string(), "{kernels}");
    let batches = kernels["batches"].as_array().expect("kernel batches");
    assert_eq!(batches.len(), 2);
    for (batch, entry) in [1u64, 3].into_iter().zip(batches) {
        assert_eq!(entry["batch"], batch);
        let rows = entry["kernels"].as_array().expect("kernel rows");
        assert!(!rows.is_empty());
        for row in rows {
            let ns = row["median_ns"].as_f64().expect("median_ns");
            assert!(ns.is_finite() && ns >= 0.0, "{row}");
        }
        if entry["method"] == "wall_clock" {
            continue; // one row for the whole inference, without costs
        }
        positive(&entry["kernels_total_ns"], "sum of the kernels");
        for (layer, family, per_image) in &expected {
            // The forward launch of this layer (and its backward one, same count).
            let launches: Vec<&Value> = rows
                .iter()
                .filter(|r| {
                    let label = r["label"].as_str().unwrap_or_default();
                    r["family"] == *family && label.split(' ').next() == Some(layer.as_str())
                })
                .collect();
            // At batch 1 the window's plan walks some layers inside `fused.*` launches.
            let walked = rows.iter().any(|r| r["family"] == "fused");
            assert!(
                !launches.is_empty() || walked,
                "no {family} launch of {layer}"
            );
            for launch in launches {
                assert_eq!(
                    launch["flops"].as_u64(),
                    Some(batch * per_image),
                    "{launch}"
                );
                assert!(launch["bytes"].as_u64().is_some_and(|b| b > 0), "{launch}");
            }
        }
    }
}

#[test]
fn bad_options_get_one_line_errors() {
    let unknown = cnnviz(&["bench", "--only", "latency,nosuch"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("nosuch"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    assert_one_line_error(&cnnviz(&["bench", "--runs", "0"]), "--runs");
    assert_one_line_error(
        &cnnviz(&["bench", "--only", "kernels", "--batches", "0"]),
        "batch",
    );
    assert_one_line_error(&cnnviz(&["bench", "--seconds", "0"]), "--seconds");
}

/// The window's path: start the map after the submit, poll, take later; recording again
/// while the timestamps are in flight is refused, never a validation error.
#[test]
fn the_kernel_timer_reads_back_without_blocking() {
    use cnnviz::gpu::{GpuContext, GpuError, GpuNetwork, InferenceRequest, KernelTimer};
    if !gpu_available() {
        return;
    }
    let ctx = GpuContext::new().expect("adapter");
    let model =
        load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
            .expect("committed model");
    let network = GpuNetwork::new(&ctx.device, &model, 1).expect("network");
    let mut timer =
        match KernelTimer::new(&ctx.device, &ctx.queue, network.max_kernels_per_inference()) {
            Ok(timer) => timer,
            Err(GpuError::TimestampsUnsupported) => return, // nothing to read back here
            Err(e) => panic!("{e}"),
        };
    network
        .write_inputs(&ctx.queue, &cnnviz::bench::synthetic_digit(&model))
        .expect("input");
    let request = InferenceRequest::default();
    let record = |timer: &mut KernelTimer| {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let recorded = network.encode_timed(&mut encoder, &request, timer);
        ctx.queue.submit([encoder.finish()]);
        recorded
    };

    assert!(timer.try_take().expect("nothing mapped").is_none());
    record(&mut timer).expect("first timed inference");
    timer.start_map();
    assert!(timer.in_flight());
    assert!(matches!(record(&mut timer), Err(GpuError::TimerBusy)));
    let mut taken = None;
    for _ in 0..1000 {
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("poll");
        if let Some(timings) = timer.try_take().expect("map") {
            taken = Some(timings);
            break;
        }
    }
    let timings = taken.expect("the timestamps arrived");
    assert!(!timer.in_flight());
    assert!(!timings.is_empty() && timings.len() <= network.max_kernels_per_inference());
    assert!(
        timings
            .iter()
            .all(|t| t.nanoseconds.is_finite() && t.nanoseconds >= 0.0)
    );
    assert!(timings.iter().any(|t| t.kernel.starts_with("conv2d.")));
    assert!(timings.iter().all(|t| t.label.ends_with(t.kernel)));

    // The blocking path still works after an asynchronous read, and vice versa.
    record(&mut timer).expect("second timed inference");
    let blocking = timer.read_blocking(&ctx.device).expect("blocking read");
    assert_eq!(blocking.len(), timings.len());
    record(&mut timer).expect("third timed inference");
    timer.start_map();
    let finished = timer
        .read_blocking(&ctx.device)
        .expect("read finishes the map");
    assert_eq!(finished.len(), timings.len());
    assert!(!timer.in_flight());
}

#[test]
fn the_window_section_reports_frames_and_their_split() {
    if !gpu_available() {
        return;
    }
    let output = cnnviz(&[
        "bench",
        "--only",
        "window",
        "--runs",
        "6",
        "--warmup",
        "1",
        "--seconds",
        "1",
        "--render-size",
        "640x360",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    let window = &report["window"];
    assert_eq!(window["width"], 640, "{window}");
    assert_eq!(window["height"], 360);
    assert!(report["render"].is_null(), "render was not asked for");
    let frames = window["paced_frames"].as_u64().expect("paced_frames");
    assert!(frames >= 6, "{window}");
    // The pen moves every frame, so every frame records an inference.
    assert_eq!(window["inference_fraction"], 1.0, "{window}");
    let fps = positive(&window["free_running_fps"], "free-running fps");
    let frame_ms = positive(&window["free_running_frame_ms"], "free-running frame");
    assert!((fps * frame_ms / 1e3 - 1.0).abs() < 1e-6, "{window}");
    // The paced frame is its CPU time plus the wait; each part of the split is within the
    // frame's CPU time.
    let split = &window["cpu_split"];
    let total = positive(&split["total_ms"], "CPU total");
    for part in [
        "overlay_build_ms",
        "overlay_tessellate_ms",
        "apply_ms",
        "inference_record_ms",
        "scene_record_ms",
        "egui_paint_ms",
        "submit_ms",
        "collect_ms",
    ] {
        let ms = split[part].as_f64().expect(part);
        assert!(
            (0.0..=total).contains(&ms),
            "{part} {ms} outside 0..{total}"
        );
    }
    let scale = split["scene_scale"].as_f64().expect("scene_scale");
    assert!((0.25..=1.0).contains(&scale), "{split}");
}
