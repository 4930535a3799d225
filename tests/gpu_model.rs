//! End-to-end parity on real MNIST test digits: the shipped model (or, until
//! `weights/mnist-cnn.safetensors` exists, a randomly initialised model of the same
//! architecture), every target class and every conv block, as one batch of digits each.

mod common;

use std::path::Path;

use cnnviz::data::{Split, default_data_dir, load_mnist};
use cnnviz::gpu::{CamTarget, GpuNetwork};
use cnnviz::model::default_architecture;
use cnnviz::model::{Model, load_model, reference};
use common::parity::check_parity;
use common::*;

/// Digits per batch: enough variety, modest time on lavapipe.
const DIGITS: usize = 20;

/// The trained model when it exists (`true`), else random weights of its architecture.
fn model() -> (Model, bool) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    if path.exists() {
        let model =
            load_model(&path).unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
        (model, true)
    } else {
        eprintln!("note: {} is missing; using random weights", path.display());
        (random_model(default_architecture(), 42), false)
    }
}

/// The first `DIGITS` test digits, normalised for `model`, and their labels.
fn digits(model: &Model) -> (Vec<f32>, Vec<u8>) {
    let test = load_mnist(&default_data_dir(), Split::Test)
        .unwrap_or_else(|e| panic!("MNIST test set: {e}"))
        .subset(0..DIGITS);
    let pixels: Vec<f32> = test.images.iter().map(|&p| f32::from(p) / 255.0).collect();
    assert_eq!(pixels.len(), DIGITS * model.input_len());
    (model.normalize(&pixels), test.labels)
}

#[test]
fn logits_and_grad_cam_match_the_cpu_for_every_class_and_block_on_mnist() {
    let Some(gpu) = gpu() else { return };
    let (model, trained) = model();
    let (inputs, labels) = digits(&model);
    let network = GpuNetwork::new(&gpu.device, &model, DIGITS as u32).expect("network builds");
    let targets =
        std::iter::once(CamTarget::Predicted).chain((0..model.num_classes()).map(CamTarget::Class));
    for target in targets {
        for block in 0..model.conv_blocks().len() {
            let Some(output) = check_parity(&network, &model, &inputs, target, block, "MNIST")
            else {
                return;
            };
            if trained && target == CamTarget::Predicted && block == 0 {
                let correct = output
                    .images
                    .iter()
                    .zip(&labels)
                    .filter(|(image, label)| image.predicted == usize::from(**label))
                    .count();
                assert!(
                    correct >= DIGITS - 1,
                    "the trained model gets {correct}/{DIGITS} right"
                );
            }
        }
    }
}

#[test]
fn the_heatmap_has_the_input_size_and_spans_zero_to_one() {
    let Some(gpu) = gpu() else { return };
    let (model, _) = model();
    let (inputs, _) = digits(&model);
    let network = GpuNetwork::new(&gpu.device, &model, DIGITS as u32).expect("network builds");
    let output = network
        .run_blocking(&gpu.device, &gpu.queue, &inputs, &Default::default())
        .expect("inference runs");
    let input = model.architecture.input;
    for (n, image) in output.images.iter().enumerate() {
        let cam = image.grad_cam.as_ref().expect("Grad-CAM by default");
        assert_eq!(cam.heatmap.len(), input.height * input.width);
        let (lo, hi) = reference::value_range(
            &cam.heatmap
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>(),
        );
        // A flat map (every weighted sum ≤ 0) normalises to all zeros; otherwise 0..1.
        assert!(lo.abs() < 1e-6, "image {n}: heatmap min {lo}");
        assert!(
            hi < 1.0 + 1e-6 && (hi > 0.99 || hi.abs() < 1e-6),
            "image {n}: heatmap max {hi}"
        );
    }
}
