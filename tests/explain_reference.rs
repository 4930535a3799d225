//! The CPU twin of the explanation methods: properties each method must have whatever the
//! weights (completeness, linearity in the seed, agreement of methods that coincide), on
//! seeded random models and on the committed model with the sample images.

mod common;

use std::path::Path;

use cnnviz::data::preprocess::{ink_from_image, load_image, mnist_input};
use cnnviz::explain::reference::attribution::{
    gradient_at, guided_backprop, guided_grad_cam, integrated_gradients, occlusion,
    occlusion_offsets, saliency, score_of, smoothgrad, smoothgrad_noise,
};
use cnnviz::explain::reference::backward::{ReluRule, gradients};
use cnnviz::explain::reference::cam::{
    cam_heatmap, grad_cam_weights, hires_cam_raw, nearest_resize, weighted_sum_raw,
};
use cnnviz::explain::reference::faithfulness::area_under_curve;
use cnnviz::explain::reference::{ReferenceExplainer, blank_values};
use cnnviz::explain::{ExplainError, ExplainOptions, ExplainRequest, Explainer, Family, Method};
use cnnviz::model::reference::{forward, forward_f64, grad_cam, softmax};
use cnnviz::model::{LayerOp, Model, load_model};
use common::{architecture, conv, dense, flatten, pool, random_inputs, random_model, relu};

/// Two conv blocks on a 12×12 input, small enough that every batched method is quick.
fn small_model(seed: u64) -> Model {
    random_model(
        architecture(
            "small",
            12,
            12,
            5,
            vec![
                conv("conv1", 1, 4, 3, 1, 1),
                relu("relu1"),
                pool("pool1", 2, 2),
                conv("conv2", 4, 6, 3, 1, 1),
                relu("relu2"),
                flatten("flatten"),
                dense("fc", 6 * 6 * 6, 5),
            ],
        ),
        seed,
    )
}

fn committed_model() -> Model {
    load_model(Path::new("weights/mnist-cnn.safetensors")).expect("the committed model loads")
}

fn sample_input(model: &Model, file: &str) -> Vec<f32> {
    let image = load_image(Path::new("samples").join(file).as_path()).expect("sample loads");
    let pixels = mnist_input(&ink_from_image(&image), 28, 28).expect("sample has ink");
    model.normalize(&pixels)
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn input_gradients_match_finite_differences() {
    let model = small_model(1);
    let x = to_f64(&random_inputs(&model, 1, 2));
    for sign in [1.0, -1.0] {
        let g = gradient_at(&model, &x, 3, sign, ReluRule::Plain);
        for &i in &[0usize, 17, 40, 77, 100, 143] {
            let h = 1e-6;
            let mut up = x.clone();
            up[i] += h;
            let mut down = x.clone();
            down[i] -= h;
            let numeric =
                (score_of(&model, up, 3, sign) - score_of(&model, down, 3, sign)) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() <= 1e-6 * (1.0 + g[i].abs()),
                "element {i}: analytic {} numeric {numeric}",
                g[i]
            );
        }
    }
}

#[test]
fn guided_backprop_passes_only_positive_gradients_through_relus() {
    let model = small_model(3);
    let x = to_f64(&random_inputs(&model, 1, 4));
    let activations = forward_f64(&model, x.clone());
    let guided = gradients(&model, &activations, 2, 1.0, ReluRule::Guided, 0);
    let plain = gradients(&model, &activations, 2, 1.0, ReluRule::Plain, 0);
    let mut some_differ = false;
    for (i, layer) in model.layers.iter().enumerate() {
        if layer.plan.op == LayerOp::Relu {
            let below = guided[i].as_ref().unwrap();
            assert!(below.iter().all(|&g| g >= 0.0), "layer {i}");
            some_differ |= plain[i].as_ref().unwrap().iter().any(|&g| g < 0.0);
        }
    }
    assert!(
        some_differ,
        "the plain gradient should have negative entries to clamp"
    );
    // Above the top ReLU both rules agree.
    let top = model.layers.len();
    assert_eq!(guided[top], plain[top]);
    assert_eq!(guided[top - 1], plain[top - 1]);
    assert_eq!(
        guided_backprop(&model, &x, 2, 1.0),
        guided[0].clone().unwrap()
    );
}

#[test]
fn integrated_gradients_are_complete() {
    let model = small_model(5);
    let x = to_f64(&random_inputs(&model, 1, 6));
    for (class, sign) in [(0, 1.0), (4, -1.0)] {
        let attribution = integrated_gradients(&model, &x, class, sign, 256);
        let total: f64 = attribution.iter().sum();
        let expected = score_of(&model, x.clone(), class, sign)
            - score_of(&model, vec![0.0; x.len()], class, sign);
        assert!(
            (total - expected).abs() <= 0.01 * expected.abs().max(0.1),
            "sum {total} vs score difference {expected}"
        );
    }
}

#[test]
fn the_counterfactual_negates_every_method_linear_in_the_seed() {
    let model = small_model(7);
    let x = to_f64(&random_inputs(&model, 1, 8));
    let negated = |a: Vec<f64>| -> Vec<f64> { a.into_iter().map(|v| -v).collect() };
    assert_eq!(
        integrated_gradients(&model, &x, 1, -1.0, 8),
        negated(integrated_gradients(&model, &x, 1, 1.0, 8))
    );
    assert_eq!(
        occlusion(&model, &x, 1, -1.0, (12, 12), 3, 2),
        negated(occlusion(&model, &x, 1, 1.0, (12, 12), 3, 2))
    );
    assert_eq!(saliency(&model, &x, 1, -1.0), saliency(&model, &x, 1, 1.0));
    // Grad-CAM's channel weights flip sign: the counterfactual map of the Grad-CAM paper.
    let activations = forward_f64(&model, x.clone());
    let target = model.conv_blocks()[1].output_layer + 1;
    let plane = 36;
    let weights = |sign: f64| {
        let g = gradients(&model, &activations, 1, sign, ReluRule::Plain, target)[target]
            .clone()
            .unwrap();
        grad_cam_weights(&g, plane)
    };
    assert_eq!(weights(-1.0), negated(weights(1.0)));
}

#[test]
fn grad_cam_matches_the_existing_twin_and_hirescam_equals_it_for_constant_gradients() {
    let model = committed_model();
    let input = sample_input(&model, "7-mnist-test-0.png");
    let mut explainer = ReferenceExplainer::new(model.clone(), ExplainOptions::default());
    let ours = explainer
        .explain(&input, &ExplainRequest::new(Method::GradCam))
        .unwrap();
    let activations = forward(&model, &input);
    let theirs = grad_cam(&model, &activations, ours.class, 1);
    assert_eq!(ours.class, 7);
    assert_eq!(
        ours.raw,
        theirs.raw.iter().map(|&v| v as f32).collect::<Vec<_>>()
    );
    assert_eq!(
        ours.attribution,
        theirs.cam.iter().map(|&v| v as f32).collect::<Vec<_>>()
    );

    // HiResCAM weights each activation by its own gradient; with a gradient constant over
    // each channel that is Grad-CAM's mean.
    let a: Vec<f64> = (0..3 * 16).map(|i| ((i * 7) % 11) as f64 - 3.0).collect();
    let g: Vec<f64> = (0..3 * 16).map(|i| [0.5, -0.25, 1.5][i / 16]).collect();
    let hires = hires_cam_raw(&a, &g, 16);
    let gradcam = weighted_sum_raw(&grad_cam_weights(&g, 16), &a, 16);
    for (h, c) in hires.iter().zip(&gradcam) {
        assert!((h - c).abs() < 1e-12);
    }
    assert!(hires.iter().any(|&v| v > 0.0));
}

#[test]
fn occlusion_of_a_blank_region_gives_zero() {
    let model = small_model(9);
    // Zero (the occlusion baseline) in the top-left 6×6 corner.
    let mut x = to_f64(&random_inputs(&model, 1, 10));
    for y in 0..6 {
        for c in 0..6 {
            x[y * 12 + c] = 0.0;
        }
    }
    let attribution = occlusion(&model, &x, 2, 1.0, (12, 12), 3, 2);
    // Every window covering a pixel of the top-left 4×4 lies inside the zero corner.
    for y in 0..4 {
        for c in 0..4 {
            assert_eq!(attribution[y * 12 + c], 0.0, "pixel {y},{c}");
        }
    }
    assert!(attribution.iter().any(|&v| v != 0.0));
    // Captum's positions: ceil((side − window) / stride) + 1, the last one cut at the edge.
    assert_eq!(occlusion_offsets(12, 3, 2), vec![0, 2, 4, 6, 8, 10]);
    assert_eq!(occlusion_offsets(28, 5, 2).len(), 13);
    assert_eq!(occlusion_offsets(3, 4, 1), vec![0]);
    assert!(
        occlusion(&model, &vec![0.0; 144], 2, 1.0, (12, 12), 3, 2)
            .iter()
            .all(|&v| v == 0.0)
    );
}

#[test]
fn smoothgrad_noise_is_seeded_gaussian_and_without_noise_is_saliency() {
    let noise = smoothgrad_noise(42, 20, 1000, 0.5);
    assert_eq!(noise, smoothgrad_noise(42, 20, 1000, 0.5));
    assert_ne!(noise, smoothgrad_noise(43, 20, 1000, 0.5));
    let n = noise.len() as f64;
    let mean = noise.iter().sum::<f64>() / n;
    let std = (noise.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.02, "mean {mean}");
    assert!((std - 0.5).abs() < 0.02, "std {std}");
    let model = small_model(11);
    let x = to_f64(&random_inputs(&model, 1, 12));
    let quiet = smoothgrad(&model, &x, 0, 1.0, &vec![0.0; 3 * x.len()]);
    let plain = saliency(&model, &x, 0, 1.0);
    for (a, b) in quiet.iter().zip(&plain) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn guided_grad_cam_is_guided_backprop_times_the_nearest_upsampled_grad_cam() {
    let model = small_model(13);
    let input = random_inputs(&model, 1, 14);
    let mut explainer = ReferenceExplainer::new(model.clone(), ExplainOptions::default());
    let request = ExplainRequest {
        block: Some(0),
        ..ExplainRequest::new(Method::GuidedGradCam)
    };
    let ours = explainer.explain(&input, &request).unwrap();
    let x = to_f64(&input);
    let cam = grad_cam(&model, &forward(&model, &input), ours.class, 0);
    let guided = guided_backprop(&model, &x, ours.class, 1.0);
    let expected = guided_grad_cam(&guided, &cam.raw, (12, 12), (12, 12));
    let up = nearest_resize(&cam.raw, 12, 12, 12, 12);
    assert_eq!(up, cam.raw);
    for ((o, e), (g, r)) in ours
        .attribution
        .iter()
        .zip(&expected)
        .zip(guided.iter().zip(&cam.raw))
    {
        assert!((*o as f64 - e).abs() <= 1e-6 * (1.0 + e.abs()));
        assert!((e - g * r).abs() < 1e-12);
    }
    // A 2×2 map to 4×4: each source pixel fills a 2×2 block.
    assert_eq!(
        nearest_resize(&[1.0, 2.0, 3.0, 4.0], 2, 2, 4, 4),
        vec![
            1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
        ]
    );
}

#[test]
fn faithfulness_curves_start_and_end_where_the_definition_says() {
    let model = committed_model();
    let input = sample_input(&model, "3-mnist-test-18.png");
    let mut explainer = ReferenceExplainer::new(model.clone(), ExplainOptions::default());
    let explained = explainer
        .explain(&input, &ExplainRequest::new(Method::Saliency))
        .unwrap();
    let f = explained.faithfulness.as_ref().unwrap();
    let steps = ExplainOptions::default().faithfulness_steps;
    assert_eq!(f.deletion.len(), steps + 1);
    let p_input = softmax(&forward(&model, &input).pop().unwrap())[explained.class];
    let plane = input.len() / model.architecture.input.channels;
    let per_channel = blank_values(&model);
    let blank: Vec<f64> = (0..input.len()).map(|i| per_channel[i / plane]).collect();
    let p_blank = softmax(forward_f64(&model, blank).last().unwrap())[explained.class];
    let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-6;
    assert!(
        close(f.deletion[0], p_input),
        "{} vs {p_input}",
        f.deletion[0]
    );
    assert!(close(f.insertion[steps], p_input));
    assert!(close(f.deletion[steps], p_blank));
    assert!(close(f.insertion[0], p_blank));
    let auc = area_under_curve(&to_f64(&f.deletion));
    assert!((auc - f.deletion_auc as f64).abs() < 1e-6);
    assert!((area_under_curve(&[0.0, 1.0]) - 0.5).abs() < 1e-15);
    assert!((area_under_curve(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-15);
    // Saliency of a confident digit: deleting its most salient pixels hurts more than
    // revealing them helps the blank.
    assert!(f.deletion_auc < f.insertion_auc, "{f:?}");
}

#[test]
fn every_method_answers_with_well_formed_maps_for_a_sample() {
    let model = committed_model();
    let options = ExplainOptions {
        ig_steps: 8,
        smoothgrad_samples: 4,
        faithfulness_steps: 8,
        ..ExplainOptions::default()
    };
    let mut explainer = ReferenceExplainer::new(model.clone(), options);
    let input = sample_input(&model, "0-mnist-test-3.png");
    for method in Method::ALL {
        for counterfactual in [false, true] {
            let request = ExplainRequest {
                counterfactual,
                ..ExplainRequest::new(method)
            };
            let e = explainer.explain(&input, &request).unwrap();
            assert_eq!(e.map.len(), 784, "{method}");
            assert!(e.map.iter().all(|v| (0.0..=1.0).contains(v)), "{method}");
            assert!(e.attribution.iter().all(|v| v.is_finite()), "{method}");
            assert!(e.map.iter().any(|&v| v > 0.0), "{method} map is empty");
            match method.family() {
                Family::Cam => {
                    assert_eq!(e.raw.len(), e.raw_height * e.raw_width);
                    assert_eq!((e.raw_height, e.block), (14, Some(1)), "{method}");
                    assert_eq!(e.map, e.attribution);
                }
                Family::Attribution => assert_eq!(e.attribution.len(), 784),
            }
            let f = e.faithfulness.unwrap();
            assert_eq!(f.insertion.len(), 9);
        }
    }
}

#[test]
fn bad_requests_and_options_are_errors_not_panics() {
    let model = small_model(15);
    let input = random_inputs(&model, 1, 16);
    let mut explainer = ReferenceExplainer::new(model.clone(), ExplainOptions::default());
    let request = ExplainRequest::new(Method::GradCam);
    let err = |e: &mut ReferenceExplainer, input: &[f32], r: ExplainRequest| {
        e.explain(input, &r).unwrap_err()
    };
    assert!(matches!(
        err(
            &mut explainer,
            &input,
            ExplainRequest {
                class: Some(5),
                ..request
            }
        ),
        ExplainError::BadClass {
            class: 5,
            classes: 5
        }
    ));
    assert!(matches!(
        err(
            &mut explainer,
            &input,
            ExplainRequest {
                block: Some(2),
                ..request
            }
        ),
        ExplainError::BadBlock {
            block: 2,
            blocks: 2
        }
    ));
    assert!(matches!(
        err(&mut explainer, &input[1..], request),
        ExplainError::InputLength { .. }
    ));
    let mut wide = ReferenceExplainer::new(
        model,
        ExplainOptions {
            occlusion_window: 13,
            ..ExplainOptions::default()
        },
    );
    assert!(matches!(
        err(&mut wide, &input, ExplainRequest::new(Method::Occlusion)),
        ExplainError::BadOption(_)
    ));
    let dense_only = random_model(
        architecture("dense", 4, 4, 3, vec![flatten("f"), dense("fc", 16, 3)]),
        17,
    );
    let mut no_blocks = ReferenceExplainer::new(dense_only, ExplainOptions::default());
    let x = vec![0.5; 16];
    assert!(matches!(
        err(&mut no_blocks, &x, ExplainRequest::new(Method::ScoreCam)),
        ExplainError::NoConvBlock { .. }
    ));
    // Methods without a block still work there.
    assert!(
        no_blocks
            .explain(&x, &ExplainRequest::new(Method::Saliency))
            .is_ok()
    );
}

#[test]
fn score_cam_and_eigen_cam_heatmaps_are_normalised_and_eigen_cam_ignores_the_class() {
    let model = small_model(19);
    let input = random_inputs(&model, 1, 20);
    let mut explainer = ReferenceExplainer::new(model, ExplainOptions::default());
    let eigen = |e: &mut ReferenceExplainer, class| {
        e.explain(
            &input,
            &ExplainRequest {
                class: Some(class),
                ..ExplainRequest::new(Method::EigenCam)
            },
        )
        .unwrap()
        .attribution
    };
    assert_eq!(eigen(&mut explainer, 0), eigen(&mut explainer, 3));
    let score = explainer
        .explain(&input, &ExplainRequest::new(Method::ScoreCam))
        .unwrap();
    let max = score.attribution.iter().cloned().fold(0.0, f32::max);
    let min = score.attribution.iter().cloned().fold(1.0, f32::min);
    assert!((max - 1.0).abs() < 1e-5 && min.abs() < 1e-6, "{min}..{max}");
    assert_eq!(
        to_f64(&score.attribution).len(),
        cam_heatmap(&to_f64(&score.raw), 6, 6, 12, 12).len()
    );
    assert!(max_abs(&to_f64(&score.raw)) > 0.0);
}
