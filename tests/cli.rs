//! The `cnnviz` binary as a person uses it: real images in, one-line errors for bad input,
//! never a panic.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_one_line_error, cnnviz, gpu_available};
use serde_json::Value;

fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples"))
            .expect("samples folder")
            .map(|e| e.expect("entry").path())
            .collect();
    files.sort();
    files
}

/// Asserts a failed run: non-zero exit, exactly one line on stderr naming `needle`, no panic.
#[test]
fn predict_json_reports_every_field_for_every_sample() {
    if !gpu_available() {
        return;
    }
    let files = samples();
    let mut args = vec!["predict", "--json"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let output = cnnviz(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), files.len());
    for (line, file) in lines.iter().zip(&files) {
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        let expected = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n[..1].parse::<u64>().ok())
            .expect("label prefix");
        assert_eq!(
            v["file"].as_str(),
            Some(file.display().to_string().as_str())
        );
        assert_eq!(
            v["predicted"].as_u64(),
            Some(expected),
            "{}",
            file.display()
        );
        assert_eq!(
            v["target"], v["predicted"],
            "default target is the prediction"
        );
        assert_eq!(v["layer"].as_str(), Some("conv2"));
        let probabilities: Vec<f64> = v["probabilities"]
            .as_array()
            .expect("array")
            .iter()
            .map(|p| p.as_f64().expect("number"))
            .collect();
        assert_eq!(probabilities.len(), 10);
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        assert_eq!(v["logits"].as_array().map(Vec::len), Some(10));
        // conv2's block output is relu2, before pooling: 14×14.
        for (key, side) in [("input", 28), ("cam", 28), ("cam_raw", 14)] {
            let rows = v[key].as_array().expect(key);
            assert_eq!(rows.len(), side, "{key} rows");
            assert!(
                rows.iter()
                    .all(|r| r.as_array().map(Vec::len) == Some(side)),
                "{key} columns"
            );
        }
        let cam_max = v["cam"]
            .as_array()
            .expect("cam")
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_f64().expect("number"))
            })
            .fold(0.0, f64::max);
        assert!(
            (cam_max - 1.0).abs() < 1e-3,
            "normalised heatmap peaks at 1, got {cam_max}"
        );
    }
}

#[test]
fn predict_target_layer_and_heatmaps() {
    if !gpu_available() {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let sample = samples()
        .into_iter()
        .find(|f| f.to_string_lossy().contains("7-mnist"))
        .expect("a 7");
    let sample = sample.display().to_string();
    let output = cnnviz(&[
        "predict",
        "--json",
        "--target",
        "3",
        "--layer",
        "conv1",
        "--heatmap-out",
        &out.path().display().to_string(),
        &sample,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(v["target"].as_u64(), Some(3));
    assert_eq!(v["layer"].as_str(), Some("conv1"));
    assert_eq!(
        v["cam_raw"].as_array().map(Vec::len),
        Some(28),
        "conv1 works at 28×28"
    );
    let png = out.path().join("7-mnist-test-0-gradcam.png");
    let picture = image::open(&png).expect("overlay written");
    assert_eq!((picture.width(), picture.height()), (280, 280));

    let text = cnnviz(&["predict", &sample]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(": 7 ("),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    assert_one_line_error(
        &cnnviz(&["predict", "--target", "10", &sample]),
        "--target 10",
    );
    assert_one_line_error(
        &cnnviz(&["predict", "--layer", "fc1", &sample]),
        "--layer fc1",
    );
}

#[test]
fn bad_images_get_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("letter.png");
    std::fs::write(&text, "Dear reader,").expect("write");
    let empty = dir.path().join("blank.png");
    image::GrayImage::new(50, 50).save(&empty).expect("png");
    let huge = dir.path().join("huge.png");
    let mut header = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    header.extend(50_000u32.to_be_bytes());
    header.extend(50_000u32.to_be_bytes());
    header.extend([8, 0, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&header[12..]);
    header.extend(crc.sum().to_be_bytes());
    // An empty IDAT and IEND: a complete file that only lies about its size.
    for chunk in [&b"IDAT"[..], &b"IEND"[..]] {
        let mut crc = flate2::Crc::new();
        crc.update(chunk);
        header.extend(0u32.to_be_bytes());
        header.extend(chunk);
        header.extend(crc.sum().to_be_bytes());
    }
    std::fs::write(&huge, header).expect("write");

    let cases = [
        (dir.path().join("missing.png"), "missing.png"),
        (text, "letter.png"),
        (empty, "empty"),
        (huge, "50000×50000"),
    ];
    for (file, needle) in cases {
        assert_one_line_error(&cnnviz(&["predict", &file.display().to_string()]), needle);
    }
}

#[test]
fn corrupt_weights_get_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = samples()[0].display().to_string();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\x10\0\0\0\0\0\0\0{\"a\": [1, 2, 3]}trailing").expect("write");
    let truncated = dir.path().join("truncated.safetensors");
    let weights =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors"))
            .expect("committed weights");
    std::fs::write(&truncated, &weights[..weights.len() - 100]).expect("write");
    for file in [&garbage, &truncated] {
        let path = file.display().to_string();
        assert_one_line_error(&cnnviz(&["predict", "--model", &path, &sample]), "model");
        assert_one_line_error(&cnnviz(&["info", "--model", &path]), "model");
    }
    assert_one_line_error(
        &cnnviz(&["eval", "--model", "/no/such/model.safetensors"]),
        "/no/such/model.safetensors",
    );
}

/// The first `n` MNIST test digits written as a fresh IDX folder, and the whole test set.
fn first_test_digits(n: usize) -> (tempfile::TempDir, cnnviz::data::Dataset) {
    let test =
        cnnviz::data::load_mnist(&cnnviz::data::default_data_dir(), cnnviz::data::Split::Test)
            .expect("MNIST");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut images = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        images.extend(d.to_be_bytes());
    }
    images.extend(&test.images[..n * 784]);
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    labels.extend(&test.labels[..n]);
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).expect("write");
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), labels).expect("write");
    (dir, test)
}

#[test]
fn eval_on_a_small_idx_folder() {
    if !gpu_available() {
        return;
    }
    let n = 300usize;
    let (dir, _) = first_test_digits(n);

    let output = cnnviz(&[
        "eval",
        "--json",
        "--batch",
        "64",
        "--data",
        &dir.path().display().to_string(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(v["images"].as_u64(), Some(n as u64));
    assert!(v["accuracy"].as_f64().expect("accuracy") > 0.97, "{v}");
    let confusion: u64 = v["confusion"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|c| c.as_u64().expect("count"))
        })
        .sum();
    assert_eq!(confusion, n as u64);
}

#[test]
fn info_names_the_adapter_and_the_layers() {
    if !gpu_available() {
        return;
    }
    let output = cnnviz(&["info"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in ["adapter:", "conv1", "conv2", "fc2", "parameters:"] {
        assert!(stdout.contains(needle), "`{needle}` missing: {stdout}");
    }
}

#[test]
fn render_writes_a_picture_of_the_scene() {
    if !gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("scene.png");
    let sample = samples()
        .into_iter()
        .find(|f| f.to_string_lossy().contains("7-mnist"))
        .expect("a 7");
    let output = cnnviz(&[
        "render",
        "--input",
        &sample.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--width",
        "320",
        "--height",
        "200",
        "--yaw",
        "-20",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let picture = image::open(&out).expect("a PNG").to_rgba8();
    assert_eq!(picture.dimensions(), (320, 200));
    let distinct: std::collections::HashSet<[u8; 4]> = picture.pixels().map(|p| p.0).collect();
    assert!(
        distinct.len() > 50,
        "only {} colours: blank?",
        distinct.len()
    );

    assert_one_line_error(
        &cnnviz(&[
            "render",
            "--input",
            "/no/such.png",
            "--out",
            &out.display().to_string(),
        ]),
        "/no/such.png",
    );
    assert_one_line_error(
        &cnnviz(&[
            "render",
            "--input",
            &sample.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--width",
            "0",
        ]),
        "--width",
    );
}

#[test]
fn a_model_without_conv_layers_predicts_and_renders_with_grad_cam_off() {
    if !gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let model = common::dense_only_model(dir.path());
    let model = model.to_str().expect("utf-8 path");
    let sample = "samples/7-mnist-test-0.png";

    let output = cnnviz(&["predict", "--json", "--model", model, sample]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "predict failed: {stderr}");
    assert!(stderr.contains("Grad-CAM is off"), "a clear note: {stderr}");
    let line: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(line["probabilities"].as_array().map(Vec::len), Some(10));
    assert!(line["cam"].is_null(), "no Grad-CAM: {line}");

    let refused = cnnviz(&["predict", "--model", model, "--layer", "0", sample]);
    assert_one_line_error(&refused, "no conv layer");

    for overlay in [false, true] {
        let out = dir.path().join(format!("scene-{overlay}.png"));
        let out = out.to_str().expect("utf-8 path");
        let mut args = vec![
            "render", "--model", model, "--input", sample, "--out", out, "--width", "320",
            "--height", "200",
        ];
        if overlay {
            args.push("--overlay");
        }
        let output = cnnviz(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "render (overlay {overlay}): {stderr}"
        );
        let picture = image::open(out).expect("a picture").to_rgba8();
        assert_eq!(picture.dimensions(), (320, 200));
    }
}

#[test]
fn eval_resizes_the_test_digits_for_a_model_of_another_size() {
    if !gpu_available() {
        return;
    }
    use cnnviz::data::model_input::{replicate, resize_plane};
    use cnnviz::data::preprocess::InkImage;
    // The README's 3×32×32 example, on the first 300 test digits.
    let n = 300usize;
    let (dir, test) = first_test_digits(n);
    let model_path = "docs/byom/digits_rgb32.onnx";
    let output = cnnviz(&[
        "eval",
        "--json",
        "--model",
        model_path,
        "--data",
        &dir.path().display().to_string(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(
        v["resized"]
            .as_str()
            .expect("says it resized")
            .contains("32×32"),
        "{v}"
    );
    // The CPU twin on the same resized, replicated, normalised digits.
    let model = cnnviz::model::load_model(std::path::Path::new(model_path)).expect("loads");
    let correct = (0..n)
        .filter(|&i| {
            let grey: Vec<f32> = test.image(i).iter().map(|&p| p as f32 / 255.0).collect();
            let plane = resize_plane(&InkImage::new(28, 28, grey), 32, 32);
            let input = model.normalize(&replicate(&plane, 3));
            let logits = cnnviz::model::reference::forward(&model, &input)
                .pop()
                .expect("logits");
            cnnviz::model::reference::argmax(&logits) == test.labels[i] as usize
        })
        .count();
    let gpu_correct = v["correct"].as_u64().expect("correct") as usize;
    assert!(
        gpu_correct.abs_diff(correct) <= 1,
        "GPU {gpu_correct} vs CPU twin {correct}"
    );
    assert!(
        correct > 270,
        "the example model reads digits: {correct}/300"
    );
}
