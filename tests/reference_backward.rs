//! The CPU twin's backward pass agrees with finite differences of its own forward pass, and
//! its Grad-CAM follows DESIGN.md step by step.

use cnnviz::model::reference::{self, activation_gradients, grad_cam};
use cnnviz::model::rng::Rng;
use cnnviz::model::{
    Architecture, InputSpec, LayerOp, LayerParams, LayerSpec, Model, Normalization,
};

fn conv(name: &str, i: usize, o: usize, k: usize, s: usize, p: usize) -> LayerSpec {
    LayerSpec::Conv2d {
        name: name.into(),
        in_channels: i,
        out_channels: o,
        kernel_size: k,
        stride: s,
        padding: p,
        padding_end: None,
        weight: format!("{name}.weight"),
        bias: Some(format!("{name}.bias")),
    }
}

/// Two conv blocks with awkward geometry: odd sizes, stride 2, padding 2, kernel 5,
/// overlapping pooling.
fn awkward_model(seed: u64) -> Model {
    let relu = |n: &str| LayerSpec::Relu { name: n.into() };
    let arch = Architecture {
        format: cnnviz::model::spec::ARCHITECTURE_FORMAT.into(),
        version: 1,
        name: "awkward".into(),
        input: InputSpec {
            channels: 1,
            height: 13,
            width: 11,
        },
        classes: (0..4).map(|c| c.to_string()).collect(),
        normalization: Normalization::uniform(0.0, 1.0),
        preprocessing: None,
        layers: vec![
            conv("c1", 1, 3, 5, 1, 2),
            relu("r1"),
            LayerSpec::MaxPool2d {
                name: "p1".into(),
                kernel_size: 3,
                stride: 2,
            },
            conv("c2", 3, 4, 3, 2, 1),
            relu("r2"),
            LayerSpec::Flatten { name: "f".into() },
            LayerSpec::Dense {
                name: "d1".into(),
                in_features: 4 * 3 * 3,
                out_features: 6,
                weight: "d1.weight".into(),
                bias: Some("d1.bias".into()),
            },
            relu("r3"),
            LayerSpec::Dense {
                name: "d2".into(),
                in_features: 6,
                out_features: 4,
                weight: "d2.weight".into(),
                bias: Some("d2.bias".into()),
            },
        ],
    };
    let plans = arch.plan().expect("plans");
    let mut rng = Rng::new(seed);
    let params = plans
        .iter()
        .filter_map(|p| match p.op {
            LayerOp::Conv2d(g) => Some((
                g.out_channels * g.in_channels * g.kernel * g.kernel,
                g.out_channels,
            )),
            LayerOp::Dense {
                in_features,
                out_features,
            } => Some((in_features * out_features, out_features)),
            _ => None,
        })
        .map(|(w, b)| {
            LayerParams::new(
                (0..w).map(|_| rng.uniform(-0.6, 0.6)).collect(),
                (0..b).map(|_| rng.uniform(-0.1, 0.3)).collect(),
            )
        })
        .collect();
    Model::from_parts(arch, params).expect("model")
}

/// Every layer type after the first five, on awkward geometry: asymmetric conv padding,
/// batch norm on maps and on a vector, leaky ReLU, an average pool with padding that does
/// not count, tanh, dropout, a global average pool and a sigmoid.
fn new_layers_model(seed: u64) -> Model {
    use cnnviz::model::builders::*;
    let mut first = conv("c1", 1, 3, 3, 2, 0);
    if let LayerSpec::Conv2d { padding_end, .. } = &mut first {
        *padding_end = Some(1);
    }
    let arch = Architecture {
        format: cnnviz::model::spec::ARCHITECTURE_FORMAT.into(),
        version: 1,
        name: "new layers".into(),
        input: InputSpec {
            channels: 1,
            height: 12,
            width: 10,
        },
        classes: (0..3).map(|c| c.to_string()).collect(),
        normalization: Normalization::uniform(0.0, 1.0),
        preprocessing: None,
        layers: vec![
            first,
            batch_norm("bn1", 3),
            leaky_relu("lr1", 0.1),
            LayerSpec::AvgPool2d {
                name: "ap".into(),
                kernel_size: 3,
                stride: 2,
                padding: 1,
                count_include_pad: false,
            },
            conv("c2", 3, 4, 2, 1, 0),
            batch_norm("bn2", 4),
            tanh("t2"),
            dropout("d2", 0.25),
            avgpool("ap2", 2, 1, 1),
            global_avg_pool("gap"),
            LayerSpec::Flatten { name: "f".into() },
            dense("fc1", 4, 5),
            batch_norm("bn3", 5),
            sigmoid("s3"),
            dense("fc2", 5, 3),
        ],
    };
    let mut rng = Rng::new(seed);
    Model::filled(arch, || rng.uniform(-0.8, 0.8)).expect("model")
}

/// Logits when activation `index` is replaced by `value`.
fn logits_from(model: &Model, index: usize, value: Vec<f64>) -> Vec<f64> {
    model.layers[index..]
        .iter()
        .fold(value, |x, layer| reference::layer_forward(layer, &x))
}

#[test]
fn backward_matches_finite_differences() {
    for seed in 0..4 {
        let model = if seed % 2 == 0 {
            awkward_model(seed)
        } else {
            new_layers_model(seed)
        };
        let mut rng = Rng::new(100 + seed);
        let input: Vec<f32> = (0..model.input_len())
            .map(|_| rng.uniform(-1.0, 2.0))
            .collect();
        let acts = reference::forward(&model, &input);
        // Check at the input and at every conv output (pre-ReLU values are never exactly
        // zero, so no kink lies within the step).
        let checked: Vec<usize> = std::iter::once(0)
            .chain(
                model
                    .layers
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| {
                        matches!(
                            l.plan.op,
                            LayerOp::Conv2d(_) | LayerOp::BatchNorm { .. } | LayerOp::Tanh
                        )
                    })
                    .map(|(i, _)| i + 1),
            )
            .collect();
        for class in 0..model.num_classes() {
            let grads = activation_gradients(&model, &acts, class, 0);
            for &index in &checked {
                let g = grads[index].as_ref().expect("gradient down to the input");
                let h = 1e-6;
                let mut worst: f64 = 0.0;
                let scale = g.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                for e in 0..g.len() {
                    let mut plus = acts[index].clone();
                    plus[e] += h;
                    let mut minus = acts[index].clone();
                    minus[e] -= h;
                    let numeric = (logits_from(&model, index, plus)[class]
                        - logits_from(&model, index, minus)[class])
                        / (2.0 * h);
                    worst = worst.max((numeric - g[e]).abs() / scale);
                }
                assert!(
                    worst < 1e-5,
                    "seed {seed} class {class} activation {index}: error {worst}"
                );
            }
        }
    }
}

#[test]
fn grad_cam_follows_the_definition() {
    let model = awkward_model(9);
    let mut rng = Rng::new(5);
    let input: Vec<f32> = (0..model.input_len())
        .map(|_| rng.uniform(0.0, 1.0))
        .collect();
    let acts = reference::forward(&model, &input);
    for (b, block) in model.conv_blocks().iter().enumerate() {
        for class in 0..model.num_classes() {
            let cam = grad_cam(&model, &acts, class, b);
            assert_eq!(cam.raw.len(), block.height * block.width);
            assert_eq!(cam.cam.len(), model.input_len());
            assert!(cam.raw.iter().all(|&v| v >= 0.0), "ReLU applied");
            for map in [&cam.low_res, &cam.cam] {
                let (lo, hi) = reference::value_range(map);
                assert!(lo.abs() < 1e-12, "normalised minimum is 0, got {lo}");
                let raw_hi = reference::value_range(&cam.raw);
                if raw_hi.1 - raw_hi.0 > 1e-3 {
                    assert!((hi - 1.0).abs() < 1e-4, "normalised maximum is 1, got {hi}");
                }
            }
        }
    }
}

#[test]
fn bilinear_resize_uses_half_pixel_centres() {
    // 2×2 → 4×4 with align_corners = false: the first output pixel sits at source -0.25,
    // clamped to 0; the second at 0.25.
    let src = [0.0, 1.0, 2.0, 3.0];
    let out = reference::bilinear_resize(&src, 2, 2, 4, 4);
    let expected_row0 = [0.0, 0.25, 0.75, 1.0];
    for (o, e) in out[..4].iter().zip(expected_row0) {
        assert!((o - e).abs() < 1e-12, "{out:?}");
    }
    assert!((out[15] - 3.0).abs() < 1e-12);
    // Same size is the identity.
    assert_eq!(reference::bilinear_resize(&src, 2, 2, 2, 2), src.to_vec());
}

#[test]
fn maxpool_ties_route_to_the_first_maximum() {
    let x = [1.0, 1.0, 0.5, 1.0];
    let dx = reference::maxpool_backward(&x, &[2.0], 1, 2, 2, 2, 2);
    assert_eq!(dx, vec![2.0, 0.0, 0.0, 0.0]);
}

#[test]
fn conv_blocks_run_through_every_element_wise_layer() {
    let model = new_layers_model(3);
    let blocks = model.conv_blocks();
    let outputs: Vec<(usize, usize)> = blocks
        .iter()
        .map(|b| (b.conv_layer, b.output_layer))
        .collect();
    // conv → bn → leaky ReLU; conv → bn → tanh → dropout.
    assert_eq!(outputs, vec![(0, 2), (4, 7)]);
    assert_eq!(
        (blocks[0].height, blocks[0].width),
        (6, 5),
        "asymmetric padding"
    );
}

#[test]
fn a_model_with_every_layer_type_round_trips_through_its_file() {
    let model = new_layers_model(4);
    let bytes = cnnviz::model::save_model_bytes(&model).expect("saved");
    let loaded = cnnviz::model::load_model_bytes(&bytes).expect("loaded");
    assert_eq!(loaded, model);
    // Batch norm is the definition, channel by channel, on a map and on a vector.
    let input: Vec<f32> = (0..model.input_len())
        .map(|i| (i % 7) as f32 * 0.3)
        .collect();
    let acts = reference::forward(&model, &input);
    for (layer_index, plane) in [(1usize, 6 * 5), (12, 1)] {
        let layer = &model.layers[layer_index];
        let LayerOp::BatchNorm { eps, .. } = layer.plan.op else {
            panic!("layer {layer_index} is a batch norm");
        };
        let p = layer.params.as_ref().expect("parameters");
        let r = p.running.as_ref().expect("running statistics");
        for (i, (&x, &y)) in acts[layer_index]
            .iter()
            .zip(&acts[layer_index + 1])
            .enumerate()
        {
            let c = i / plane;
            let expected = (x - r.mean[c] as f64) / (r.var[c] as f64 + eps as f64).sqrt()
                * p.weight[c] as f64
                + p.bias[c] as f64;
            assert!((y - expected).abs() < 1e-9, "bn {layer_index} element {i}");
        }
    }
}
