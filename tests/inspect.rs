//! The unit inspector's arithmetic adds up: for every kind of unit (conv, ReLU after conv,
//! pool, dense, ReLU after dense) the shown terms + bias (then ReLU, or the pool's winner)
//! equal the activation the GPU network computed for the same image.

mod common;

use cnnviz::gpu::{GpuNetwork, InferenceRequest};
use cnnviz::inspect::{UnitArithmetic, source_activation, unit_arithmetic};
use cnnviz::model::Model;
use cnnviz::model::builders::{conv, dense, maxpool, relu};
use cnnviz::model::file::load_model;
use common::{architecture, flatten, random_inputs, random_model};

fn committed_model() -> Model {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    load_model(&path).expect("the committed model loads")
}

/// Stride 2, padding 0 and an odd map size: the taps and windows do not line up with the
/// output grid the way the committed model's do.
fn strided_model() -> Model {
    random_model(
        architecture(
            "strided",
            13,
            13,
            4,
            vec![
                conv("c1", 1, 3, 3, 2, 0),
                relu("r1"),
                conv("c2", 3, 5, 2, 1, 0),
                maxpool("p1", 2, 1),
                relu("r2"),
                flatten("f"),
                dense("d1", 5 * 4 * 4, 6),
                relu("r3"),
                dense("d2", 6, 4),
            ],
        ),
        7,
    )
}

/// Every unit of every activation of one image: its arithmetic's value equals the arena's.
fn check_model(model: &Model, seed: u64) {
    let Some(gpu) = common::gpu() else { return };
    let network = GpuNetwork::new(&gpu.device, model, 1).expect("network");
    let input = random_inputs(model, 1, seed);
    network
        .run_blocking(
            &gpu.device,
            &gpu.queue,
            &input,
            &InferenceRequest::default(),
        )
        .expect("inference");
    let arena = network
        .read_activations(&gpu.device, &gpu.queue, 1)
        .expect("activations")
        .remove(0);
    let mut kinds = [0usize; 4];
    for (activation, values) in arena.iter().enumerate() {
        let source = source_activation(model, activation).map(|s| arena[s].as_slice());
        for (element, &value) in values.iter().enumerate() {
            let unit = unit_arithmetic(model, activation, element, source.unwrap_or(&[]))
                .unwrap_or_else(|e| panic!("activation {activation} element {element}: {e}"));
            let (shown, kind) = match &unit {
                UnitArithmetic::Input => continue,
                UnitArithmetic::Conv { sum, .. } => (sum.value(), 0),
                UnitArithmetic::Dense { sum } => (sum.value(), 1),
                UnitArithmetic::Pool(window) => (f64::from(window.value()), 2),
                other => panic!("a conv/relu/pool/dense model has no {other:?}"),
            };
            if let UnitArithmetic::Conv { sum, .. } | UnitArithmetic::Dense { sum } = &unit {
                let terms: f64 = sum.terms.iter().map(|t| t.product()).sum();
                assert_eq!(terms, sum.sum, "the sum is the sum of the shown terms");
                if sum.relu.is_some() {
                    kinds[3] += 1;
                }
            }
            kinds[kind] += 1;
            let tolerance = 1e-4 * (1.0 + value.abs() as f64);
            assert!(
                (shown - f64::from(value)).abs() <= tolerance,
                "{} element {element}: the terms give {shown}, the GPU computed {value}",
                network.layout().slots[activation].name
            );
        }
    }
    assert!(
        kinds.iter().all(|&k| k > 0),
        "every kind of unit was checked: {kinds:?}"
    );
}

#[test]
fn terms_add_up_to_the_gpu_activation_on_the_committed_model() {
    check_model(&committed_model(), 3);
}

#[test]
fn terms_add_up_with_stride_two_and_no_padding() {
    check_model(&strided_model(), 11);
}

#[test]
fn a_bad_unit_is_an_error_not_a_panic() {
    let model = committed_model();
    assert!(unit_arithmetic(&model, 99, 0, &[]).is_err());
    assert!(unit_arithmetic(&model, 1, 16 * 28 * 28, &[0.0; 784]).is_err());
    assert!(unit_arithmetic(&model, 1, 0, &[0.0; 3]).is_err());
}
