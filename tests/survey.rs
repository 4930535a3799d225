//! The test-set survey behind the channel explorer and the failure view: its channel
//! statistics agree with a CPU pass, its confusion matrix is `cnnviz eval`'s, and its
//! cache round-trips and refuses files that do not fit.

mod common;

use cnnviz::data::{Split, default_data_dir, load_mnist};
use cnnviz::model::file::load_model;
use cnnviz::model::{Model, reference};
use cnnviz::survey::{Statistic, Survey, cache};

fn committed_model() -> Model {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    load_model(&path).expect("the committed model loads")
}

/// `(max, first argmax, mean)` of every channel of every block output, in f64 on the CPU.
fn cpu_stats(model: &Model, pixels: &[u8]) -> Vec<Vec<(f64, usize, f64)>> {
    let input: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let activations = reference::forward(model, &model.normalize(&input));
    model
        .conv_blocks()
        .iter()
        .map(|b| {
            let a = &activations[b.output_layer + 1];
            let plane = b.height * b.width;
            (0..b.channels)
                .map(|c| {
                    let values = &a[c * plane..(c + 1) * plane];
                    let argmax = reference::argmax(values);
                    let mean = values.iter().sum::<f64>() / plane as f64;
                    (values[argmax], argmax, mean)
                })
                .collect()
        })
        .collect()
}

#[test]
fn top_examples_agree_with_a_cpu_pass_over_a_subset() {
    let Some(gpu) = common::gpu() else { return };
    let model = committed_model();
    let data = load_mnist(&default_data_dir(), Split::Test)
        .expect("MNIST test set")
        .subset(0..300);
    let survey = Survey::compute(&gpu.device, &gpu.queue, &model, &data, |_| true).expect("survey");
    let cpu: Vec<_> = (0..data.len())
        .map(|i| cpu_stats(&model, data.image(i)))
        .collect();
    for (b, block) in model.conv_blocks().iter().enumerate() {
        for c in (0..block.channels).step_by(3) {
            for statistic in [Statistic::Max, Statistic::Mean] {
                let pick = |s: &(f64, usize, f64)| match statistic {
                    Statistic::Max => s.0,
                    Statistic::Mean => s.2,
                };
                let mut order: Vec<usize> = (0..data.len()).collect();
                order.sort_by(|&x, &y| pick(&cpu[y][b][c]).total_cmp(&pick(&cpu[x][b][c])));
                let gpu_top = survey.top_examples(b, c, statistic, 9);
                assert_eq!(gpu_top.len(), 9);
                for (rank, example) in gpu_top.iter().enumerate() {
                    let expected = order[rank];
                    let (value, argmax, _) = cpu[expected][b][c];
                    let value_here = pick(&cpu[example.image][b][c]);
                    // Same image, or (a near tie) one with the same value.
                    assert!(
                        example.image == expected
                            || (value_here - pick(&cpu[expected][b][c])).abs() < 1e-4,
                        "{} channel {c} {statistic:?} rank {rank}: GPU image {} CPU image {expected}",
                        block.name,
                        example.image
                    );
                    assert!(
                        (f64::from(example.value) - value_here).abs()
                            < 1e-4 * (1.0 + value_here.abs())
                    );
                    if example.image == expected && statistic == Statistic::Max {
                        let at = example.at.0 * block.width + example.at.1;
                        assert_eq!(at, argmax, "where the maximum is");
                        assert!((f64::from(example.value) - value).abs() < 1e-4 * (1.0 + value));
                    }
                }
            }
        }
    }
}

#[test]
fn the_confusion_matrix_is_evals() {
    let Some(gpu) = common::gpu() else { return };
    let cache_dir = tempfile::tempdir().expect("temp dir");
    let model = committed_model();
    let data = load_mnist(&default_data_dir(), Split::Test).expect("MNIST test set");
    let (survey, _) = Survey::load_or_compute(
        &gpu.device,
        &gpu.queue,
        &model,
        &data,
        Some(cache_dir.path()),
        |_| true,
    )
    .expect("survey");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cnnviz"))
        .args(["eval", "--json"])
        .env("CNNVIZ_CACHE_DIR", cache_dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("eval runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("eval prints JSON");
    let eval: Vec<Vec<usize>> =
        serde_json::from_value(json["confusion"].clone()).expect("a confusion matrix");
    assert_eq!(survey.confusion(), eval);
    assert_eq!(survey.images(), 10_000);

    // The second call reads the cache, and gets the same survey.
    let (again, origin) = Survey::load_or_compute(
        &gpu.device,
        &gpu.queue,
        &model,
        &data,
        Some(cache_dir.path()),
        |_| true,
    )
    .expect("cached");
    assert!(
        matches!(origin, cnnviz::survey::Origin::Cached(_)),
        "{origin:?}"
    );
    assert_eq!(again, survey);

    // A damaged cache file is refused with a reason, never a panic or a wrong survey.
    let path = match origin {
        cnnviz::survey::Origin::Cached(path) => path,
        _ => unreachable!(),
    };
    let shapes: Vec<_> = model
        .conv_blocks()
        .iter()
        .map(|b| (b.name.clone(), b.channels, b.height, b.width))
        .collect();
    let bytes = std::fs::read(&path).expect("cache file");
    std::fs::write(&path, &bytes[..bytes.len() - 5]).expect("truncate");
    let err = cache::load(
        &path,
        &survey.model_hash,
        &survey.data_hash,
        10_000,
        &shapes,
    )
    .expect_err("a truncated file");
    assert!(err.contains("bytes of data"), "{err}");
    let err = cache::load(&path, "another", &survey.data_hash, 10_000, &shapes)
        .expect_err("another model");
    assert!(err.contains("another model"), "{err}");
    std::fs::write(&path, b"garbage").expect("write");
    assert!(
        cache::load(
            &path,
            &survey.model_hash,
            &survey.data_hash,
            10_000,
            &shapes
        )
        .is_err()
    );
}
