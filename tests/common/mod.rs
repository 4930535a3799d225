//! Shared helpers of the GPU tests: a device (failing under `CI` when there is none), a
//! seeded PRNG, programmatic architectures with random weights, and error measures.
#![allow(dead_code)] // each test binary uses a different subset

pub mod parity;
pub mod viewer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use cnnviz::gpu::GpuContext;
use cnnviz::model::spec::{ARCHITECTURE_FORMAT, ARCHITECTURE_VERSION};
use cnnviz::model::{
    Architecture, InputSpec, LayerOp, LayerParams, LayerSpec, Model, Normalization, RunningStats,
};

/// One device for all tests of a binary: creating a lavapipe device per test costs time
/// and nothing is learnt from doing it again. `None` (with a note) when no adapter exists
/// outside CI; under `CI` a missing adapter panics, so the test fails instead of skipping.
pub fn gpu() -> Option<&'static GpuContext> {
    static CONTEXT: OnceLock<Option<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match GpuContext::new() {
            Ok(context) => {
                eprintln!("GPU tests run on {}", context.describe());
                Some(context)
            }
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("CI is set, so a GPU adapter is required: {e}")
            }
            Err(e) => {
                eprintln!("note: skipping GPU test: {e}");
                None
            }
        })
        .as_ref()
}

/// SplitMix64: tiny, seedable, good enough for weights and test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-scale, scale).
    pub fn symmetric(&mut self, scale: f32) -> f32 {
        (2.0 * self.unit() - 1.0) * scale
    }

    pub fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.symmetric(scale)).collect()
    }
}

// The layer builders are the library's own (the trainer uses them too).
#[allow(unused_imports)] // not every test binary builds models
pub use cnnviz::model::builders::{conv, dense, maxpool as pool, relu};

pub fn flatten(name: &str) -> LayerSpec {
    LayerSpec::Flatten {
        name: name.to_string(),
    }
}

pub fn architecture(
    name: &str,
    height: usize,
    width: usize,
    classes: usize,
    layers: Vec<LayerSpec>,
) -> Architecture {
    Architecture {
        format: ARCHITECTURE_FORMAT.to_string(),
        version: ARCHITECTURE_VERSION,
        name: name.to_string(),
        input: InputSpec {
            channels: 1,
            height,
            width,
        },
        classes: (0..classes).map(|c| format!("class {c}")).collect(),
        normalization: Normalization::uniform(0.1307, 0.3081),
        preprocessing: None,
        layers,
    }
}

/// PyTorch's default initialisation, U(-1/√fan_in, 1/√fan_in), weights and biases alike.
pub fn random_model(architecture: Architecture, seed: u64) -> Model {
    let mut rng = Rng::new(seed);
    let plans = architecture.plan().expect("test architectures are valid");
    let params = plans
        .iter()
        .filter_map(|plan| {
            let (weights, outputs, fan_in) = match plan.op {
                LayerOp::Conv2d(g) => {
                    let fan_in = g.in_channels * g.kernel * g.kernel;
                    (g.out_channels * fan_in, g.out_channels, fan_in)
                }
                LayerOp::Dense {
                    in_features,
                    out_features,
                } => (out_features * in_features, out_features, in_features),
                // γ near 1, β, mean near 0 and variance in 0.5..1.5: a trained layer's range.
                LayerOp::BatchNorm { channels, .. } => {
                    let gamma = (0..channels).map(|_| 1.0 + rng.symmetric(0.3)).collect();
                    let running = RunningStats {
                        mean: rng.vec(channels, 0.3),
                        var: (0..channels).map(|_| 1.0 + rng.symmetric(0.5)).collect(),
                    };
                    return Some(LayerParams::batch_norm(
                        gamma,
                        rng.vec(channels, 0.2),
                        running,
                    ));
                }
                _ => return None,
            };
            let scale = 1.0 / (fan_in as f32).sqrt();
            Some(LayerParams::new(
                rng.vec(weights, scale),
                rng.vec(outputs, scale),
            ))
        })
        .collect();
    Model::from_parts(architecture, params).expect("random parameters fit the architecture")
}

/// Largest absolute difference divided by the largest |reference| value. Measured against
/// the tensor's scale, not element by element, so elements that are near zero (where f32
/// and f64 legitimately differ in every digit) do not blow the error up.
pub fn relative_error(gpu: &[f32], cpu: &[f64]) -> f64 {
    assert_eq!(gpu.len(), cpu.len(), "lengths differ");
    let scale = cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = gpu
        .iter()
        .zip(cpu)
        .fold(0.0f64, |m, (&g, &c)| m.max((g as f64 - c).abs()));
    if scale == 0.0 { diff } else { diff / scale }
}

/// Tolerance of every GPU-vs-CPU comparison (relative to the tensor's max |value|).
pub const TOLERANCE: f64 = 1e-4;

pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f64]) {
    let error = relative_error(gpu, cpu);
    assert!(
        error <= TOLERANCE,
        "{what}: relative error {error:.3e} > {TOLERANCE:.0e} over {} values",
        cpu.len()
    );
}

/// Runs the `cnnviz` binary from the repository root.
pub fn cnnviz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnviz"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// Runs the `cnnviz` binary and asserts that it succeeds (showing its stderr if not).
pub fn cnnviz_succeeds(args: &[&str]) -> Output {
    let output = cnnviz(args);
    assert!(
        output.status.success(),
        "cnnviz {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `json[key]` as rows of numbers (the fixtures' inputs and expected logits).
pub fn json_rows(json: &serde_json::Value, key: &str) -> Vec<Vec<f64>> {
    json[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` rows"))
        .iter()
        .map(|row| {
            row.as_array()
                .expect("a row")
                .iter()
                .map(|v| v.as_f64().expect("a number"))
                .collect()
        })
        .collect()
}

/// Whether the binary's GPU commands can run; with `CI` set a missing adapter is a failure,
/// not a skip.
pub fn gpu_available() -> bool {
    gpu().is_some()
}

/// The command failed with exactly one line on stderr that mentions `needle`, and no panic.
pub fn assert_one_line_error(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
}

/// `images` seeded random inputs of `model` (values in ±2, as drawn inputs after
/// normalisation reach).
pub fn random_inputs(model: &Model, images: usize, seed: u64) -> Vec<f32> {
    Rng::new(seed).vec(images * model.input_len(), 2.0)
}

/// Saves a model of one dense layer (no conv layer, so no Grad-CAM) into `dir`.
pub fn dense_only_model(dir: &Path) -> PathBuf {
    let architecture = architecture(
        "dense-only",
        28,
        28,
        10,
        vec![flatten("flatten"), dense("fc", 28 * 28, 10)],
    );
    let model = random_model(architecture, 11);
    let path = dir.join("dense-only.safetensors");
    cnnviz::model::save_model(&model, &path).expect("model saves");
    path
}

/// A GPU feature visualisation's objective history and images against the CPU twin's run
/// of the same options (1e-3 relative: hundreds of steps accumulate f32 rounding).
pub fn assert_feature_vis_matches_twin(
    model: &Model,
    objective: cnnviz::feature_vis::Objective,
    options: &cnnviz::feature_vis::FeatureVisOptions,
    steps: usize,
    gpu: &cnnviz::gpu::FeatureVisSnapshot,
) {
    let len = model.input_len();
    for n in 0..gpu.history[0].len() {
        let twin = cnnviz::feature_vis::reference::optimise(model, objective, options, n, steps)
            .expect("twin");
        let history: Vec<f32> = gpu.history.iter().map(|h| h[n]).collect();
        let what = format!("{objective:?} image {n}");
        let e = relative_error(&history, &twin.history);
        assert!(
            e < 1e-3,
            "{what}: history {history:?} vs {:?}",
            twin.history
        );
        let e = relative_error(&gpu.images[n * len..(n + 1) * len], &twin.image);
        assert!(e < 1e-3, "{what}: image relative error {e:.2e}");
    }
}
