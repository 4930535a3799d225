//! ONNX import: the committed fixtures (made by tests/fixtures/onnx/make_fixtures.py from
//! PyTorch, with ONNX Runtime's logits stored beside each) load, give ONNX Runtime's logits
//! on the CPU twin and the WGSL path, run Grad-CAM at every conv block, convert to a cnnviz
//! model file with the same logits, and every malformed fixture is refused in one line.

mod common;

use std::path::{Path, PathBuf};

use cnnviz::gpu::{CamTarget, GpuNetwork};
use cnnviz::model::onnx::{ImportOptions, load_onnx_bytes, looks_like_onnx};
use cnnviz::model::{LayerOp, Model, ModelError, load_model, reference};
use common::parity::check_parity;
use common::*;

/// The good fixtures: exported by the TorchScript exporter (opsets 11, 13) and the dynamo
/// exporter (opset 18+), one with F16 weights.
const GOOD: [&str; 5] = [
    "mnist_cnn",
    "mnist_cnn_f16",
    "stride2_nopad_matmul",
    "dropout_reshape_logsoftmax",
    "conv_nobias_softmax",
];

/// Fixtures with the layers added for imported models (batch norm, average and global
/// pooling, leaky ReLU, sigmoid, tanh, dropout, asymmetric padding, 3-channel and
/// non-28 inputs), from PyTorch and in tf2onnx's Keras form.
const NEW_LAYERS: [&str; 8] = [
    "bn_avgpool_gap",
    "avgpool_pads",
    "sigmoid_tanh",
    "gap_dynamo",
    "rgb32",
    "dropout_layers",
    "keras_same_nhwc",
    "keras_gap_rgb",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

fn load(name: &str) -> Model {
    let path = fixture(&format!("{name}.onnx"));
    load_model(&path).unwrap_or_else(|e| panic!("{name}.onnx does not load: {e}"))
}

/// ONNX Runtime's inputs (already normalised) and logits for a fixture.
struct Expected {
    inputs: Vec<Vec<f32>>,
    logits: Vec<Vec<f64>>,
}

fn expected(name: &str) -> Expected {
    let path = fixture(&format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON parses");
    let rows = |key: &str| json_rows(&json, key);
    let inputs = rows("inputs")
        .into_iter()
        .map(|r| r.into_iter().map(|v| v as f32).collect())
        .collect();
    let expected = Expected {
        inputs,
        logits: rows("logits"),
    };
    assert!(!expected.inputs.is_empty());
    assert_eq!(expected.inputs.len(), expected.logits.len());
    expected
}

/// `|a - b|` over the largest |ONNX Runtime logit|, as every parity check here measures.
fn assert_logits_match(what: &str, ours: &[f64], onnx_runtime: &[f64]) {
    let ours: Vec<f32> = ours.iter().map(|&v| v as f32).collect();
    assert_close(what, &ours, onnx_runtime);
}

fn cpu_logits(model: &Model, input: &[f32]) -> Vec<f64> {
    reference::forward(model, input)
        .pop()
        .expect("the forward pass has an output")
}

#[test]
fn every_good_fixture_gives_onnx_runtimes_logits_on_the_cpu_twin() {
    for name in GOOD.iter().chain(&NEW_LAYERS) {
        let model = load(name);
        let expected = expected(name);
        assert_eq!(model.num_classes(), expected.logits[0].len(), "{name}");
        assert_eq!(model.input_len(), expected.inputs[0].len(), "{name}");
        for (n, (input, logits)) in expected.inputs.iter().zip(&expected.logits).enumerate() {
            let ours = cpu_logits(&model, input);
            assert_logits_match(&format!("{name} input {n} (CPU)"), &ours, logits);
        }
    }
}

#[test]
fn every_good_fixture_matches_onnx_runtime_and_the_cpu_on_the_gpu_with_grad_cam_at_every_block() {
    let Some(gpu) = gpu() else { return };
    for name in GOOD.iter().chain(&NEW_LAYERS) {
        let model = load(name);
        let expected = expected(name);
        let inputs: Vec<f32> = expected.inputs.concat();
        let batch = expected.inputs.len() as u32;
        let network = GpuNetwork::new(&gpu.device, &model, batch)
            .unwrap_or_else(|e| panic!("{name}: network builds: {e}"));
        let blocks = model.conv_blocks().len();
        assert!(blocks >= 1, "{name} has conv blocks");
        for block in 0..blocks {
            // Every activation, gradient and Grad-CAM map against the CPU twin...
            let output = check_parity(&network, &model, &inputs, CamTarget::Predicted, block, name)
                .expect("a GPU is there");
            // ...and the logits against ONNX Runtime.
            for (n, (image, logits)) in output.images.iter().zip(&expected.logits).enumerate() {
                let ours: Vec<f64> = image.logits.iter().map(|&v| f64::from(v)).collect();
                assert_logits_match(
                    &format!("{name} input {n} block {block} (GPU)"),
                    &ours,
                    logits,
                );
                let cam = image.grad_cam.as_ref().expect("Grad-CAM ran");
                assert_eq!(cam.block, block, "{name}");
                let input = model.architecture.input;
                assert_eq!(cam.heatmap.len(), input.height * input.width, "{name}");
                assert!(cam.heatmap.iter().all(|v| v.is_finite()), "{name}");
            }
        }
    }
}

#[test]
fn every_new_layer_fixture_runs_grad_cam_at_every_conv_block_on_the_cpu_twin() {
    for name in NEW_LAYERS {
        let model = load(name);
        let expected = expected(name);
        let blocks = model.conv_blocks();
        assert!(!blocks.is_empty(), "{name} has conv blocks");
        let input = model.architecture.input;
        for image in &expected.inputs {
            let activations = reference::forward(&model, image);
            let class = reference::argmax(activations.last().expect("logits"));
            for (block, conv_block) in blocks.iter().enumerate() {
                let cam = reference::grad_cam(&model, &activations, class, block);
                assert_eq!(cam.block, block);
                assert_eq!(cam.cam.len(), input.height * input.width, "{name}");
                assert_eq!(
                    cam.channel_weights.len(),
                    conv_block.channels,
                    "{name} block {block}"
                );
                assert!(
                    cam.cam
                        .iter()
                        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
                    "{name} block {block}: heatmap outside 0..1"
                );
                // The gradient reached the block through every layer after it.
                assert!(
                    cam.channel_weights.iter().any(|&w| w != 0.0),
                    "{name} block {block}: no gradient reached the block"
                );
            }
        }
    }
}

fn kinds(model: &Model) -> Vec<&str> {
    model
        .architecture
        .layers
        .iter()
        .map(|l| l.kind_name())
        .collect()
}

#[test]
fn the_new_layers_are_imported_as_their_own_layers() {
    use cnnviz::model::LayerSpec;
    assert_eq!(
        kinds(&load("bn_avgpool_gap")),
        [
            "conv2d",
            "batchnorm",
            "relu",
            "avgpool2d",
            "conv2d",
            "batchnorm",
            "leaky_relu",
            "global_avg_pool",
            "flatten",
            "dense"
        ]
    );
    let bn = load("bn_avgpool_gap");
    let LayerOp::BatchNorm { channels: 8, eps } = bn.layers[1].plan.op else {
        panic!(
            "layer 1 is an 8-channel batch norm: {:?}",
            bn.layers[1].plan.op
        )
    };
    assert!((eps - 1e-5).abs() < 1e-9, "PyTorch's eps: {eps}");
    assert!(matches!(
        &bn.architecture.layers[1],
        LayerSpec::BatchNorm { running_mean, .. } if running_mean == "bn1.running_mean"
    ));
    assert!(matches!(
        bn.layers[6].plan.op,
        LayerOp::LeakyRelu { negative_slope } if (negative_slope - 0.1).abs() < 1e-7
    ));

    let pools: Vec<_> = load("avgpool_pads")
        .layers
        .iter()
        .filter_map(|l| match l.plan.op {
            LayerOp::AvgPool2d(g) => Some((g.kernel, g.stride, g.padding, g.count_include_pad)),
            _ => None,
        })
        .collect();
    assert_eq!(pools, [(3, 2, 1, true), (3, 2, 1, false)]);

    assert_eq!(
        kinds(&load("sigmoid_tanh")),
        [
            "conv2d",
            "sigmoid",
            "maxpool2d",
            "conv2d",
            "tanh",
            "maxpool2d",
            "flatten",
            "dense",
            "tanh",
            "dense"
        ]
    );
    // The dynamo exporter's ReduceMean over height and width is a global average pool.
    assert!(kinds(&load("gap_dynamo")).contains(&"global_avg_pool"));

    let rgb = load("rgb32");
    assert_eq!(
        (
            rgb.architecture.input.channels,
            rgb.architecture.input.height
        ),
        (3, 32)
    );

    let dropout = load("dropout_layers");
    assert_eq!(
        kinds(&dropout),
        [
            "conv2d",
            "relu",
            "dropout",
            "maxpool2d",
            "flatten",
            "dense",
            "relu",
            "dropout",
            "dense"
        ]
    );
    assert!(matches!(
        &dropout.architecture.layers[2],
        LayerSpec::Dropout { p, .. } if *p == 0.25
    ));
}

#[test]
fn keras_graphs_read_their_nhwc_input_and_same_padding() {
    let keras = load("keras_same_nhwc");
    let input = keras.architecture.input;
    assert_eq!((input.channels, input.height, input.width), (1, 28, 28));
    let convs: Vec<_> = keras
        .layers
        .iter()
        .filter_map(|l| match l.plan.op {
            LayerOp::Conv2d(g) => Some((g.stride, g.padding, g.padding_end)),
            _ => None,
        })
        .collect();
    // Stride 2 `same`: the extra row and column below and right; SAME_UPPER of an odd
    // kernel at stride 1: one on every side.
    assert_eq!(convs, [(2, 0, 1), (1, 1, 1)]);
    assert_eq!(
        kinds(&keras),
        [
            "conv2d",
            "relu",
            "conv2d",
            "batchnorm",
            "relu",
            "maxpool2d",
            "flatten",
            "dense",
            "relu",
            "dense"
        ]
    );
    let rgb = load("keras_gap_rgb");
    let input = rgb.architecture.input;
    assert_eq!((input.channels, input.height, input.width), (3, 32, 32));
    let LayerOp::Conv2d(g) = rgb.layers[0].plan.op else {
        panic!("a conv first")
    };
    assert_eq!((g.kernel, g.padding, g.padding_end), (4, 1, 2));
}

#[test]
fn the_imported_layers_are_the_exported_ones() {
    let mnist = load("mnist_cnn");
    let committed =
        load_model(&Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
            .expect("the committed model loads");
    // The fixture was exported from the committed weights: same layers, same parameters.
    let ops = |m: &Model| m.layers.iter().map(|l| l.plan.op).collect::<Vec<_>>();
    assert_eq!(ops(&mnist), ops(&committed));
    for (a, b) in mnist.layers.iter().zip(&committed.layers) {
        assert_eq!(a.params, b.params, "layer {}", a.plan.name);
    }
    assert_eq!(
        mnist.architecture.classes,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(
        mnist.architecture.normalization,
        committed.architecture.normalization
    );

    // F16 weights are the F32 ones rounded to half precision.
    let half = load("mnist_cnn_f16");
    for (h, f) in half.layers.iter().zip(&mnist.layers) {
        if let (Some(h), Some(f)) = (&h.params, &f.params) {
            for (a, b) in h.weight.iter().zip(&f.weight) {
                assert!((a - b).abs() <= b.abs() / 1024.0 + 1e-7, "{a} vs {b}");
            }
        }
    }

    // Stride 2, no padding, a 5×5 kernel; MatMul + Add is a dense layer with its bias.
    let strided = load("stride2_nopad_matmul");
    let LayerOp::Conv2d(g) = strided.layers[0].plan.op else {
        panic!("first layer is a conv")
    };
    assert_eq!((g.kernel, g.stride, g.padding), (5, 2, 0));
    let last = strided.layers.last().expect("layers");
    assert!(matches!(
        last.plan.op,
        LayerOp::Dense {
            in_features: 300,
            out_features: 10
        }
    ));
    assert!(
        last.params
            .as_ref()
            .expect("params")
            .bias
            .iter()
            .any(|&b| b != 0.0)
    );

    // The conv without bias keeps no bias tensor; dropout and the softmax leave no layer.
    let no_bias = load("conv_nobias_softmax");
    match &no_bias.architecture.layers[0] {
        cnnviz::model::LayerSpec::Conv2d { bias, .. } => assert_eq!(*bias, None),
        other => panic!("first layer is {other:?}"),
    }
    let dropout = load("dropout_reshape_logsoftmax");
    let kinds: Vec<&str> = dropout
        .architecture
        .layers
        .iter()
        .map(|l| l.kind_name())
        .collect();
    assert_eq!(
        kinds,
        [
            "conv2d",
            "relu",
            "maxpool2d",
            "flatten",
            "dense",
            "relu",
            "dense"
        ]
    );
}

/// Each malformed fixture, and what its one-line error must name.
const MALFORMED: [(&str, &[&str]); 13] = [
    ("bad_truncated", &["not a valid ONNX file"]),
    (
        "bad_wrong_op",
        &["node /act/Elu (Elu)", "operator Elu is not supported"],
    ),
    (
        "bad_bn_training",
        &[
            "node /bn/BatchNormalization (BatchNormalization)",
            "training mode",
            "eval()",
        ],
    ),
    (
        "bad_avgpool_ceil",
        &["node /pool/AveragePool (AveragePool)", "ceil_mode 1"],
    ),
    (
        "bad_transpose",
        &["node /Transpose (Transpose)", "perm [0, 1, 3, 2]"],
    ),
    (
        "bad_nonsquare_kernel",
        &["node /conv/Conv (Conv)", "kernel 3×5 is not square"],
    ),
    (
        "bad_uneven_pads",
        &[
            "node /conv/Conv (Conv)",
            "pads [1, 0, 1, 1]",
            "rows and columns differently",
        ],
    ),
    ("bad_absurd_input", &["`input`", "100000×100000"]),
    (
        "bad_residual",
        &[
            "/layer1/Add",
            "(Add)",
            "residual connections are not supported",
        ],
    ),
    ("bad_absurd_dims", &["conv.weight", "100000"]),
    (
        "bad_external_data",
        &["conv.weight", "external file", "weights.bin"],
    ),
    (
        "bad_asymmetric_pads",
        &[
            "node /conv/Conv (Conv)",
            "pads [1, 1, 0, 0]",
            "extra padding above and left",
        ],
    ),
    ("bad_two_outputs", &["2 outputs", "exactly one"]),
];

#[test]
fn every_malformed_fixture_is_refused_in_one_line_naming_the_problem() {
    for (name, needles) in MALFORMED {
        let error = match load_model(&fixture(&format!("{name}.onnx"))) {
            Ok(_) => panic!("{name}.onnx loads"),
            Err(e) => e.to_string(),
        };
        assert!(!error.contains('\n'), "{name}: not one line: {error}");
        for needle in needles {
            assert!(error.contains(needle), "{name}: `{needle}` not in: {error}");
        }
    }
}

#[test]
fn the_cli_refuses_a_malformed_fixture_in_one_line() {
    let path = fixture("bad_residual.onnx");
    let output = cnnviz(&["convert", path.to_str().expect("utf-8"), "/dev/null"]);
    assert_one_line_error(&output, "node /layer1/Add (Add): residual connections");
}

#[test]
fn every_prefix_of_a_fixture_is_refused_or_loaded_without_panicking() {
    let bytes = std::fs::read(fixture("stride2_nopad_matmul.onnx")).expect("fixture");
    let options = ImportOptions::for_path(Path::new("prefix.onnx"));
    let mut refused = 0;
    for len in (0..bytes.len()).step_by(37) {
        match load_onnx_bytes(&bytes[..len], &options) {
            Ok(_) => {}
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().contains('\n'), "prefix {len}: {e}");
            }
        }
    }
    assert!(refused > 0);
    let empty = load_onnx_bytes(&[], &options).expect_err("an empty file is refused");
    assert!(empty.to_string().contains("the file is empty"), "{empty}");
    assert!(load_onnx_bytes(&bytes, &options).is_ok());
}

#[test]
fn onnx_is_recognised_by_extension_or_content_and_safetensors_is_not_taken_for_it() {
    let onnx = std::fs::read(fixture("mnist_cnn.onnx")).expect("fixture");
    let safetensors =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
            .expect("committed model");
    assert!(looks_like_onnx(Path::new("x.ONNX"), b""));
    assert!(looks_like_onnx(Path::new("model.bin"), &onnx));
    assert!(!looks_like_onnx(Path::new("model.bin"), &safetensors));
    assert!(!looks_like_onnx(
        Path::new("model.safetensors"),
        &safetensors
    ));
    // An ONNX file under another name still loads through the one loader.
    let dir = tempfile::tempdir().expect("temp dir");
    let renamed = dir.path().join("model.bin");
    std::fs::write(&renamed, &onnx).expect("write");
    let model = load_model(&renamed).expect("content sniffing finds ONNX");
    assert_eq!(model.layers.len(), load("mnist_cnn").layers.len());
    // And an error from the import is the ONNX variant.
    assert!(matches!(
        load_model(&fixture("bad_wrong_op.onnx")),
        Err(ModelError::Onnx(_))
    ));
}

#[test]
fn convert_writes_a_model_file_with_the_same_logits() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in GOOD.iter().chain(&NEW_LAYERS) {
        let out = dir.path().join(format!("{name}.safetensors"));
        let input = fixture(&format!("{name}.onnx"));
        cnnviz_succeeds(&[
            "convert",
            input.to_str().expect("utf-8"),
            out.to_str().expect("utf-8"),
        ]);
        let converted = load_model(&out).expect("the converted file loads");
        let imported = load(name);
        assert_eq!(
            converted, imported,
            "{name}: the file holds the imported model"
        );
        let expected = expected(name);
        for (input, logits) in expected.inputs.iter().zip(&expected.logits) {
            assert_logits_match(name, &cpu_logits(&converted, input), logits);
        }
    }
}

#[test]
fn convert_takes_the_normalisation_and_name_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("net.safetensors");
    let input = fixture("conv_nobias_softmax.onnx");
    cnnviz_succeeds(&[
        "convert",
        input.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--mean",
        "0.5",
        "--std",
        "0.25",
        "--name",
        "my-net",
    ]);
    let model = load_model(&out).expect("loads");
    assert_eq!(model.architecture.name, "my-net");
    assert_eq!(model.architecture.normalization.of_channel(0), (0.5, 0.25));
    // A safetensors input is not converted (without --arch).
    let again = cnnviz(&["convert", out.to_str().expect("utf-8"), "/dev/null"]);
    assert_one_line_error(&again, "is not an ONNX file");

    // One value per channel for a colour model; three for a grey one are refused.
    let rgb_out = dir.path().join("rgb.safetensors");
    let rgb = fixture("rgb32.onnx");
    cnnviz_succeeds(&[
        "convert",
        rgb.to_str().expect("utf-8"),
        rgb_out.to_str().expect("utf-8"),
        "--mean",
        "0.485,0.456,0.406",
        "--std",
        "0.229,0.224,0.225",
    ]);
    let model = load_model(&rgb_out).expect("loads");
    assert_eq!(
        model.architecture.normalization.of_channel(1),
        (0.456, 0.224)
    );
    let grey = cnnviz(&[
        "convert",
        input.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--mean",
        "0.485,0.456,0.406",
    ]);
    assert_one_line_error(&grey, "normalization has 3 values for a 1-channel input");
}

#[test]
fn predict_reads_an_onnx_model() {
    if !gpu_available() {
        return;
    }
    let model = fixture("mnist_cnn.onnx");
    let output = cnnviz(&[
        "predict",
        "--json",
        "--model",
        model.to_str().expect("utf-8"),
        "samples/7-mnist-test-0.png",
        "samples/2-mnist-test-1.png",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The fixture carries the committed weights, so it reads the samples' digits.
    let predicted: Vec<u64> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["predicted"].as_u64())
        .collect();
    assert_eq!(predicted, [7, 2], "{stdout}");
}
