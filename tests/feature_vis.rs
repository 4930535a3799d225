//! Feature visualisation on the GPU (`gpu::FeatureVis`) against its CPU twin
//! (`feature_vis::reference`), and what a run must show: the objective grows, a seed
//! reproduces a run, another seed gives other images, class objectives work, and what the
//! visualisation cannot do is an error, not a panic.

mod common;

use std::path::Path;

use cnnviz::feature_vis::{FeatureVisError, FeatureVisOptions, Objective, input_range};
use cnnviz::gpu::{FeatureVis, FeatureVisSnapshot, GpuError};
use cnnviz::model::{Model, load_model};

use common::{
    architecture, assert_feature_vis_matches_twin, conv, dense, flatten, gpu, pool, random_model,
    relu,
};

fn committed_model() -> Model {
    load_model(Path::new("weights/mnist-cnn.safetensors")).expect("the committed model loads")
}

/// A small conv net on 12×12 inputs: quick for the f64 twin.
fn small_model() -> Model {
    random_model(
        architecture(
            "small",
            12,
            12,
            4,
            vec![
                conv("conv1", 1, 3, 3, 1, 1),
                relu("relu1"),
                pool("pool1", 2, 2),
                conv("conv2", 3, 4, 3, 1, 0),
                relu("relu2"),
                flatten("flatten"),
                dense("fc", 4 * 4 * 4, 4),
            ],
        ),
        17,
    )
}

fn run(
    model: &Model,
    objective: Objective,
    options: &FeatureVisOptions,
    steps: usize,
) -> Option<FeatureVisSnapshot> {
    let gpu = gpu()?;
    let mut vis = FeatureVis::new(&gpu.device, &gpu.queue, model, objective, options.clone())
        .expect("feature visualisation builds");
    let mut reported = Vec::new();
    let done = vis.run(steps, |d| reported.push(d)).expect("run");
    assert_eq!(done, steps);
    assert_eq!(reported.last(), Some(&steps));
    Some(vis.read().expect("read back"))
}

fn options(steps: usize, seed: u64) -> FeatureVisOptions {
    FeatureVisOptions {
        steps,
        blur_every: 4,
        seed,
        ..FeatureVisOptions::default()
    }
}

/// The objective of every image grows, compared at the same phase of the blur cycle (the
/// blur every `blur_every` steps takes back some of what the steps between gained, so the
/// history is a rising saw): right after the first blur and after the last, every image;
/// and the mean over images after every blur, rising within noise.
fn assert_grows(what: &str, history: &[Vec<f32>], blur_every: usize) {
    let after_blurs: Vec<&Vec<f32>> = history
        .iter()
        .skip(blur_every)
        .step_by(blur_every)
        .collect();
    assert!(after_blurs.len() >= 3, "{what}: too few steps to compare");
    let (first, last) = (after_blurs[0], after_blurs[after_blurs.len() - 1]);
    for (n, (a, b)) in first.iter().zip(last).enumerate() {
        assert!(b > a, "{what}: objective {n} went from {a} to {b}");
    }
    let means: Vec<f64> = after_blurs
        .iter()
        .map(|h| h.iter().map(|&v| f64::from(v)).sum::<f64>() / h.len() as f64)
        .collect();
    // Non-decreasing within noise: the mean rises overall, and no step back between two
    // blurs undoes more than a tenth of the rise.
    let rise = means[means.len() - 1] - means[0];
    assert!(
        rise > 0.0 && means.windows(2).all(|w| w[0] - w[1] < 0.1 * rise),
        "{what}: means after each blur {means:?}"
    );
}

#[test]
fn every_channel_objective_grows_on_the_committed_model() {
    let model = committed_model();
    for block in 0..model.conv_blocks().len() {
        let Some(s) = run(&model, Objective::Channels { block }, &options(21, 3), 21) else {
            return;
        };
        assert_eq!(s.history.len(), 21);
        assert_eq!(s.history[0].len(), model.conv_blocks()[block].channels);
        assert_grows(&format!("block {block}"), &s.history, 4);
        let (low, high) = input_range(&model);
        assert!(s.images.iter().all(|&v| (low..=high).contains(&v)));
    }
}

#[test]
fn every_class_logit_grows() {
    let model = committed_model();
    let Some(s) = run(&model, Objective::Classes, &options(21, 5), 21) else {
        return;
    };
    assert_eq!(s.history[0].len(), model.num_classes());
    assert_eq!(s.images.len(), model.num_classes() * model.input_len());
    assert_grows("classes", &s.history, 4);
}

#[test]
fn a_seed_reproduces_a_run_and_another_seed_does_not() {
    let model = committed_model();
    let objective = Objective::Channels { block: 0 };
    let Some(a) = run(&model, objective, &options(8, 11), 8) else {
        return;
    };
    let b = run(&model, objective, &options(8, 11), 8).expect("gpu");
    assert_eq!(a, b, "same seed, same images and history");
    let c = run(&model, objective, &options(8, 12), 8).expect("gpu");
    assert_ne!(a.images, c.images, "another seed, other images");
}

#[test]
fn gpu_steps_match_the_cpu_twin() {
    let model = small_model();
    for (objective, steps) in [
        (Objective::Channels { block: 0 }, 5),
        (Objective::Channels { block: 1 }, 5),
        (Objective::Classes, 5),
    ] {
        // Blur on step 2 and 4 and jitter on every step, so every part of a step is compared.
        let options = FeatureVisOptions {
            blur_every: 2,
            ..options(steps, 7)
        };
        let Some(gpu) = run(&model, objective, &options, steps) else {
            return;
        };
        assert_feature_vis_matches_twin(&model, objective, &options, steps, &gpu);
    }
}

#[test]
fn what_cannot_be_visualised_is_an_error() {
    let Some(gpu) = gpu() else {
        return;
    };
    let new = |model: &Model, objective, options| {
        FeatureVis::new(&gpu.device, &gpu.queue, model, objective, options).err()
    };
    // An input larger than the workgroup memory that holds an image.
    let large = random_model(
        architecture(
            "large",
            60,
            60,
            2,
            vec![
                conv("conv1", 1, 2, 3, 2, 0),
                relu("relu1"),
                flatten("flatten"),
                dense("fc", 2 * 29 * 29, 2),
            ],
        ),
        1,
    );
    match new(&large, Objective::Classes, FeatureVisOptions::default()) {
        Some(e @ GpuError::FeatureVis(FeatureVisError::InputTooLarge { .. })) => {
            assert!(e.to_string().contains("3600"), "{e}")
        }
        other => panic!("expected an input too large, got {other:?}"),
    }
    let model = small_model();
    match new(
        &model,
        Objective::Channels { block: 2 },
        FeatureVisOptions::default(),
    ) {
        Some(GpuError::FeatureVis(FeatureVisError::BadBlock {
            block: 2,
            blocks: 2,
        })) => {}
        other => panic!("expected a bad block, got {other:?}"),
    }
    let zero_rate = FeatureVisOptions {
        learning_rate: 0.0,
        ..FeatureVisOptions::default()
    };
    match new(&model, Objective::Classes, zero_rate) {
        Some(e @ GpuError::FeatureVis(FeatureVisError::BadOption(_))) => {
            assert!(e.to_string().contains("learning_rate"), "{e}")
        }
        other => panic!("expected a bad option, got {other:?}"),
    }
}

#[test]
fn a_run_stops_at_its_planned_steps() {
    let model = small_model();
    let Some(gpu) = gpu() else {
        return;
    };
    let mut vis = FeatureVis::new(
        &gpu.device,
        &gpu.queue,
        &model,
        Objective::Classes,
        options(3, 1),
    )
    .expect("builds");
    assert_eq!(vis.run(2, |_| {}).expect("run"), 2);
    assert_eq!(vis.run(5, |_| {}).expect("run"), 3);
    let s = vis.read().expect("read");
    assert_eq!((s.steps, s.history.len()), (3, 3));
}

#[test]
fn channels_classes_writes_the_class_strip_and_json() {
    if !common::gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8 path");
    let output = common::cnnviz(&[
        "channels",
        "--classes",
        "--vis-steps",
        "8",
        "--seed",
        "4",
        "--json",
        "--out",
        out,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(line["objective"], "classes");
    assert_eq!(line["steps"], 8);
    assert_eq!(line["logits"].as_array().map(Vec::len), Some(10));
    let strip = image::open(dir.path().join("classes.png")).expect("classes.png");
    // Ten 28×28 images at 4× with gaps.
    assert!(strip.width() > 10 * 28 * 4 && strip.height() > 28 * 4);

    let output = common::cnnviz(&["channels", "--classes", "--vis-steps", "0"]);
    common::assert_one_line_error(&output, "--vis-steps");
}
