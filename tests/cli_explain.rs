//! `cnnviz predict --method`: every explanation method from the command line, its JSON
//! and its overlays, checked against the CPU twin called directly.

mod common;

use std::path::Path;

use cnnviz::explain::reference::ReferenceExplainer;
use cnnviz::explain::reference::faithfulness::area_under_curve;
use cnnviz::explain::{ExplainOptions, ExplainRequest, Explainer, Method};
use cnnviz::model::load_model;
use common::{assert_one_line_error, cnnviz, gpu_available};
use serde_json::Value;

const SEVEN: &str = "samples/7-mnist-test-0.png";

fn json_line(args: &[&str]) -> Value {
    let output = cnnviz(args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn floats(v: &Value) -> Vec<f32> {
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Number(n) => out.push(n.as_f64().expect("a number") as f32),
            other => panic!("not a number array: {other}"),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// The twin's answer for the input the JSON reports.
fn twin(line: &Value, request: &ExplainRequest) -> cnnviz::explain::Explained {
    let model = load_model(Path::new("weights/mnist-cnn.safetensors")).expect("model loads");
    let input = model.normalize(&floats(&line["input"]));
    ReferenceExplainer::new(model, ExplainOptions::default())
        .explain(&input, request)
        .expect("the twin explains")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn an_unknown_method_is_a_one_line_usage_error() {
    let output = cnnviz(&["predict", "--method", "gradcam+++", SEVEN]);
    assert_one_line_error(&output, "gradcam+++");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("integrated-gradients"),
        "lists the methods: {stderr}"
    );
}

#[test]
fn all_writes_one_overlay_per_image_and_method() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().display().to_string();
    let three = "samples/3-pen-on-paper.jpg";
    let output = cnnviz(&[
        "predict",
        "--method",
        "all",
        "--reference",
        "--ig-steps",
        "4",
        "--smoothgrad-samples",
        "2",
        "--heatmap-out",
        &out,
        SEVEN,
        three,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for stem in ["7-mnist-test-0", "3-pen-on-paper"] {
        for method in Method::ALL {
            let png = dir.path().join(format!("{stem}-{}.png", method.name()));
            let picture = image::open(&png)
                .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
                .to_rgb8();
            assert_eq!(picture.dimensions(), (280, 280));
            assert!(
                stdout.contains(&format!("  {}: class", method.name())),
                "{stdout}"
            );
        }
    }
    assert!(stdout.contains("samples/7-mnist-test-0.png: 7"), "{stdout}");
}

#[test]
fn json_fields_agree_with_the_twin() {
    let line = json_line(&[
        "predict",
        "--method",
        "gradcam++",
        "--reference",
        "--json",
        "--target",
        "3",
        "--counterfactual",
        SEVEN,
    ]);
    assert_eq!(line["engine"], "reference");
    assert_eq!(line["predicted"].as_u64(), Some(7));
    let entries = line["explanations"].as_array().expect("explanations");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["method"], "gradcam++");
    assert_eq!(e["family"], "cam");
    assert_eq!(e["class"].as_u64(), Some(3));
    assert_eq!(e["counterfactual"], true);
    assert_eq!(e["block"].as_u64(), Some(1));
    assert_eq!(e["layer"], "conv2");
    assert_eq!(e["map"].as_array().map(Vec::len), Some(28));
    assert_eq!(e["raw"].as_array().map(Vec::len), Some(14));
    let deletion = floats(&e["deletion"]);
    assert_eq!(deletion.len(), 29);
    let d64: Vec<f64> = deletion.iter().map(|&v| v as f64).collect();
    assert!((area_under_curve(&d64) - e["deletion_auc"].as_f64().unwrap()).abs() < 1e-6);

    let expected = twin(
        &line,
        &ExplainRequest {
            class: Some(3),
            counterfactual: true,
            ..ExplainRequest::new(Method::GradCamPlusPlus)
        },
    );
    assert!(max_diff(&floats(&e["attribution"]), &expected.attribution) < 1e-6);
    assert!(max_diff(&floats(&e["raw"]), &expected.raw) < 1e-6);
    assert!(max_diff(&deletion, &expected.faithfulness.unwrap().deletion) < 1e-6);

    // An attribution method: channels × rows × columns, and the noise SmoothGrad used.
    let line = json_line(&[
        "predict",
        "--method",
        "smoothgrad",
        "--reference",
        "--json",
        "--smoothgrad-samples",
        "3",
        SEVEN,
    ]);
    let e = &line["explanations"][0];
    assert_eq!(e["attribution"].as_array().map(Vec::len), Some(1));
    assert_eq!(floats(&e["noise"]).len(), 3 * 784);
    assert!(e.get("raw").is_none());

    let bare = json_line(&[
        "predict",
        "--method",
        "saliency",
        "--reference",
        "--json",
        "--no-maps",
        SEVEN,
    ]);
    let e = &bare["explanations"][0];
    for field in ["map", "attribution", "raw", "noise"] {
        assert!(e.get(field).is_none(), "{field} left out: {e}");
    }
    assert!(e["insertion_auc"].as_f64().is_some());
}

/// The default engine (the GPU explainer once merged) against the twin: maps and scores.
#[test]
fn the_default_engine_agrees_with_the_twin() {
    if !gpu_available() {
        return;
    }
    let line = json_line(&["predict", "--method", "all", "--json", SEVEN]);
    for e in line["explanations"].as_array().expect("explanations") {
        let method = Method::parse(e["method"].as_str().unwrap()).unwrap();
        let expected = twin(&line, &ExplainRequest::new(method));
        let diff = max_diff(&floats(&e["map"]), &expected.map);
        assert!(diff < 5e-3, "{method}: map differs by {diff}");
        let auc = e["deletion_auc"].as_f64().unwrap() as f32;
        let want = expected.faithfulness.unwrap().deletion_auc;
        assert!(
            (auc - want).abs() < 0.02,
            "{method}: deletion AUC {auc} vs {want}"
        );
    }
}

#[test]
fn without_conv_layers_all_keeps_the_methods_that_need_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = common::dense_only_model(dir.path());
    let model = path.to_str().expect("utf-8 path");
    let output = cnnviz(&[
        "predict",
        "--method",
        "all",
        "--reference",
        "--json",
        "--no-maps",
        "--model",
        model,
        SEVEN,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("no conv layer"), "{stderr}");
    let line: Value = serde_json::from_slice(&output.stdout).expect("json");
    let names: Vec<&str> = line["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = Method::ALL
        .into_iter()
        .filter(|m| !m.uses_block())
        .map(Method::name)
        .collect();
    assert_eq!(names, expected);
    assert_one_line_error(
        &cnnviz(&[
            "predict",
            "--method",
            "scorecam",
            "--reference",
            "--model",
            model,
            SEVEN,
        ]),
        "conv block",
    );
}
