//! `--arch`: the short architecture text (good and bad), a bare PyTorch state_dict
//! (tests/fixtures/state_dict, written by tests/fixtures/onnx/make_fixtures.py with
//! PyTorch's logits beside it) loaded with it or with a JSON architecture file, and what
//! `cnnviz info` says about a state_dict without an architecture.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cnnviz::model::arch_text::{ArchText, guess_arch_line};
use cnnviz::model::file::tensor_shapes;
use cnnviz::model::{
    LayerOp, LayerSpec, Model, ModelError, ModelSource, load_model, reference, save_model_bytes,
};
use common::*;
use safetensors::SafeTensors;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn bare() -> PathBuf {
    repo("tests/fixtures/state_dict/bare_net.safetensors")
}

/// The fixture's --arch text, inputs and PyTorch's logits.
fn expected() -> (String, Vec<Vec<f32>>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(repo("tests/fixtures/state_dict/bare_net.json"))
        .expect("fixture JSON");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parses");
    let rows = |key: &str| json_rows(&json, key);
    let inputs = rows("inputs")
        .into_iter()
        .map(|r| r.into_iter().map(|v| v as f32).collect())
        .collect();
    (
        json["arch"].as_str().expect("arch text").to_string(),
        inputs,
        rows("logits"),
    )
}

fn with_arch(path: &Path, arch: &str) -> Result<Model, ModelError> {
    ModelSource {
        path: path.to_path_buf(),
        arch: Some(arch.to_string()),
    }
    .load()
}

fn shapes_of(path: &Path) -> Vec<(String, Vec<usize>)> {
    let bytes = std::fs::read(path).expect("file");
    tensor_shapes(&SafeTensors::deserialize(&bytes).expect("safetensors"))
}

#[test]
fn a_bare_state_dict_with_its_arch_text_gives_pytorchs_logits() {
    let (arch, inputs, logits) = expected();
    let model = with_arch(&bare(), &arch).expect("loads with --arch");
    for (n, (input, expected)) in inputs.iter().zip(&logits).enumerate() {
        let ours: Vec<f32> = reference::forward(&model, input)
            .pop()
            .expect("logits")
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_close(&format!("input {n}"), &ours, expected);
    }
    // Modules in natural order (`features.10` after `features.8`), layers named after them.
    let convs: Vec<&str> = model
        .architecture
        .layers
        .iter()
        .filter(|l| matches!(l, LayerSpec::Conv2d { .. }))
        .map(|l| l.name())
        .collect();
    assert_eq!(
        convs,
        ["features.0", "features.4", "features.8", "features.10"]
    );
    assert!(matches!(
        &model.architecture.layers[1],
        LayerSpec::BatchNorm { running_var, .. } if running_var == "features.1.running_var"
    ));
    assert_eq!(model.architecture.name, "bare_net");
    assert_eq!(model.num_classes(), 10);
}

#[test]
fn a_json_architecture_file_loads_the_state_dict_too() {
    let (arch, inputs, _) = expected();
    let from_text = with_arch(&bare(), &arch).expect("loads");
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("arch.json");
    std::fs::write(
        &json,
        serde_json::to_string(&from_text.architecture).expect("serialises"),
    )
    .expect("write");
    let from_json = with_arch(&bare(), json.to_str().expect("utf-8")).expect("loads");
    assert_eq!(from_json, from_text);
    assert_eq!(
        reference::forward(&from_json, &inputs[0]),
        reference::forward(&from_text, &inputs[0])
    );
}

#[test]
fn every_item_of_the_grammar_parses_into_its_layer() {
    let text = "input(3, 32, 32) norm([0.485,0.456,0.406],[0.229,0.224,0.225]) \
                conv(3,8,3,s2,p0/1) bn(0.001) leaky_relu(0.2) dropout(0.3) \
                avgpool(3,s1,p1,exclude_pad) conv(8,8,3,p1) sigmoid maxpool(2,s2) tanh gap \
                flatten dense(8,4) relu linear(4,3) classes(cat,dog,bird) preprocess(resize)";
    let names = [
        "c1.weight",
        "c1.bias",
        "c2.weight",
        "d1.weight",
        "d2.weight",
    ];
    let shapes = [
        vec![8, 3, 3, 3],
        vec![8],
        vec![8, 8, 3, 3],
        vec![4, 8],
        vec![3, 4],
    ];
    let mut tensors: Vec<(String, Vec<usize>)> =
        names.iter().map(|n| n.to_string()).zip(shapes).collect();
    for suffix in ["weight", "bias", "running_mean", "running_var"] {
        tensors.push((format!("b1.{suffix}"), vec![8]));
    }
    tensors.push(("b1.num_batches_tracked".to_string(), vec![]));
    let architecture = ArchText::parse(text, "net")
        .expect("parses")
        .bind(&tensors)
        .expect("binds");
    let plans = architecture.plan().expect("consistent");
    let ops: Vec<LayerOp> = plans.iter().map(|p| p.op).collect();
    let LayerOp::Conv2d(conv) = ops[0] else {
        panic!("conv first: {ops:?}")
    };
    assert_eq!((conv.stride, conv.padding, conv.padding_end), (2, 0, 1));
    assert_eq!(
        plans[0].output.dims(),
        [8, 16, 16],
        "(32 + 0 + 1 - 3) / 2 + 1"
    );
    assert!(matches!(ops[1], LayerOp::BatchNorm { channels: 8, eps } if eps == 0.001));
    assert!(matches!(ops[2], LayerOp::LeakyRelu { negative_slope } if negative_slope == 0.2));
    assert!(matches!(ops[3], LayerOp::Dropout));
    let LayerOp::AvgPool2d(pool) = ops[4] else {
        panic!("avgpool: {ops:?}")
    };
    assert_eq!(
        (
            pool.kernel,
            pool.stride,
            pool.padding,
            pool.count_include_pad
        ),
        (3, 1, 1, false)
    );
    assert!(matches!(ops[6], LayerOp::Sigmoid));
    assert!(matches!(
        ops[7],
        LayerOp::MaxPool2d {
            kernel: 2,
            stride: 2
        }
    ));
    assert!(matches!(ops[8], LayerOp::Tanh));
    assert!(matches!(ops[9], LayerOp::GlobalAvgPool));
    assert_eq!(architecture.classes, ["cat", "dog", "bird"]);
    assert_eq!(architecture.normalization.of_channel(2), (0.406, 0.225));
    assert_eq!(
        architecture.preprocessing,
        Some(cnnviz::model::spec::Preprocessing::Resize)
    );
    // The bias is taken where the file has one.
    assert!(
        matches!(&architecture.layers[0], LayerSpec::Conv2d { bias: Some(b), .. } if b == "c1.bias")
    );
    assert!(matches!(
        &architecture.layers[5],
        LayerSpec::Conv2d { bias: None, .. }
    ));
}

#[test]
fn bad_arch_text_is_refused_in_one_line_naming_the_item() {
    let tensors = shapes_of(&bare());
    let cases: [(&str, &str); 12] = [
        ("", "empty"),
        ("conv(1,8,3) dense(8,10)", "starts with input(C,H,W)"),
        (
            "input(1,28) dense(784,10)",
            "`input(1,28)`: takes (channels, height, width)",
        ),
        (
            "input(1,28,28) conv(1,8) flatten dense(10,10)",
            "`conv(1,8)`: takes (in, out, kernel",
        ),
        (
            "input(1,28,28) conv(1,8,3,q2) flatten dense(10,10)",
            "unknown option `q2`",
        ),
        (
            "input(1,28,28) conv(1,x,3) flatten dense(10,10)",
            "out channels `x` is not a number",
        ),
        (
            "input(1,28,28) maxpool(2 flatten dense(10,10)",
            "unbalanced",
        ),
        (
            "input(1,28,28) softmax flatten dense(784,10)",
            "unknown item `softmax`",
        ),
        (
            "input(1,28,28) flatten maxpool(2) dense(10,10)",
            "`maxpool(2)`: needs a C×H×W input",
        ),
        (
            "input(1,4,4) conv(1,8,7) flatten dense(10,10)",
            "does not fit the 4×4 input",
        ),
        ("input(1,28,28) conv(1,8,3) relu", "no dense layer"),
        (
            "input(1,28,28) flatten dense(784,10) input(1,28,28)",
            "may only come first",
        ),
    ];
    for (text, needle) in cases {
        let error = match ArchText::parse(text, "x").and_then(|a| a.bind(&tensors)) {
            Ok(_) => panic!("`{text}` parses"),
            Err(e) => e.to_string(),
        };
        assert!(!error.contains('\n'), "`{text}`: not one line: {error}");
        assert!(error.starts_with("--arch: "), "{error}");
        assert!(
            error.contains(needle),
            "`{text}`: `{needle}` not in: {error}"
        );
    }
}

#[test]
fn a_text_that_does_not_fit_the_state_dict_names_the_layer_and_tensor() {
    let (arch, _, _) = expected();
    let cases = [
        // The second conv written with a 5×5 kernel.
        (
            arch.replacen("conv(8,16,3,p1)", "conv(8,16,5,p2)", 1),
            "tensor `features.4.weight` has shape [16, 8, 3, 3], the text says [16, 8, 5, 5]",
        ),
        // A batch norm left out: its tensors are read by no layer.
        (
            arch.replacen(" bn leaky_relu", " leaky_relu", 1),
            "no layer of the text reads `features.5.bias` [16]",
        ),
        // One conv too many.
        (
            arch.replacen("tanh", "tanh conv(8,8,1)", 1),
            "the file has no more conv tensors",
        ),
    ];
    for (text, needle) in cases {
        let error = with_arch(&bare(), &text)
            .expect_err("does not fit")
            .to_string();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains(needle), "`{needle}` not in: {error}");
    }
    // An ONNX file carries its architecture.
    let onnx = repo("tests/fixtures/onnx/mnist_cnn.onnx");
    let error = with_arch(&onnx, &arch).expect_err("refused").to_string();
    assert!(error.contains("is an ONNX file"), "{error}");
}

/// The committed model's tensors without its metadata: a bare state_dict.
fn strip_metadata(model: &Model, dir: &Path) -> PathBuf {
    let bytes = save_model_bytes(model).expect("serialises");
    let tensors = SafeTensors::deserialize(&bytes).expect("parses");
    let owned: Vec<(String, safetensors::tensor::TensorView)> = tensors.tensors();
    let path = dir.join("state_dict.safetensors");
    let data: HashMap<String, safetensors::tensor::TensorView> = owned.into_iter().collect();
    std::fs::write(
        &path,
        safetensors::serialize(&data, None).expect("serialises"),
    )
    .expect("write");
    path
}

#[test]
fn the_guessed_arch_line_of_the_committed_model_is_its_architecture() {
    let committed = load_model(&repo("weights/mnist-cnn.safetensors")).expect("loads");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = strip_metadata(&committed, dir.path());
    assert!(matches!(
        load_model(&path),
        Err(ModelError::MissingMetadata { .. })
    ));
    let line = guess_arch_line(&shapes_of(&path)).expect("a guess");
    assert_eq!(
        line,
        "input(1,28,28) conv(1,16,3,p1) relu maxpool(2) conv(16,32,3,p1) relu maxpool(2) flatten dense(1568,64) relu dense(64,10)"
    );
    let model = with_arch(&path, &line).expect("the guess loads");
    let input = random_inputs(&model, 1, 7);
    assert_eq!(
        reference::forward(&model, &input).pop(),
        reference::forward(&committed, &input).pop()
    );
    // The bare fixture's guess at least loads (its pools and activations differ).
    let guess = guess_arch_line(&shapes_of(&bare())).expect("a guess");
    with_arch(&bare(), &guess).expect("the guess fits the tensors");
}

#[test]
fn info_explains_what_a_bare_state_dict_is_missing() {
    let path = bare();
    let output = cnnviz(&["info", "--model", path.to_str().expect("utf-8")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_one_line_error(&output, "has no architecture: give it with --arch");
    for needle in [
        "no \"architecture\" entry",
        "features.0.weight",
        "[8, 1, 3, 3]",
        "features.1.running_var",
        "classifier.2.weight",
        "[10, 392]",
        "--arch \"input(1,28,28) conv(1,8,3,p1) bn relu maxpool(2)",
    ] {
        assert!(stdout.contains(needle), "`{needle}` not in:\n{stdout}");
    }
    // In natural order: features.4 before features.10.
    let at = |s: &str| stdout.find(s).unwrap_or_else(|| panic!("{s} listed"));
    assert!(at("features.4.weight") < at("features.10.weight"));
    // Other commands point to --arch and info in one line.
    let predict = cnnviz(&[
        "predict",
        "--model",
        path.to_str().expect("utf-8"),
        "samples/7-mnist-test-0.png",
    ]);
    assert_one_line_error(&predict, "give its architecture with --arch");
}

#[test]
fn convert_writes_a_state_dict_with_its_arch_as_a_cnnviz_model_file() {
    let (arch, inputs, logits) = expected();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("net.safetensors");
    cnnviz_succeeds(&[
        "convert",
        bare().to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--arch",
        &arch,
        "--name",
        "my-net",
    ]);
    let model = load_model(&out).expect("the converted file loads without --arch");
    assert_eq!(model.architecture.name, "my-net");
    let ours: Vec<f32> = reference::forward(&model, &inputs[0])
        .pop()
        .expect("logits")
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_close("converted", &ours, &logits[0]);
    // A bad text through the CLI: one line.
    let bad = cnnviz(&[
        "convert",
        bare().to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--arch",
        "input(1,28,28) conv(1,8,3,z) flatten dense(1,1)",
    ]);
    assert_one_line_error(&bad, "--arch: `conv(1,8,3,z)`: unknown option `z`");
}
