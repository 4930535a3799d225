//! The trainer's backward pass agrees with finite differences of its own forward pass,
//! training is bit-reproducible from a seed whatever the thread count, and the committed
//! architecture is what the rest of the program expects.

use cnnviz::data::{Split, default_data_dir, load_mnist};
use cnnviz::model::reference;
use cnnviz::model::rng::Rng;
use cnnviz::model::spec::{ARCHITECTURE_FORMAT, ARCHITECTURE_VERSION};
use cnnviz::model::train::{
    self, TrainConfig, TrainEvent, conv, default_architecture, dense, gradients, maxpool, relu,
};
use cnnviz::model::{
    Architecture, InputSpec, LayerOp, LayerParams, LayerSpec, Model, Normalization,
    save_model_bytes,
};

fn architecture(name: &str, side: usize, classes: usize, layers: Vec<LayerSpec>) -> Architecture {
    Architecture {
        format: ARCHITECTURE_FORMAT.into(),
        version: ARCHITECTURE_VERSION,
        name: name.into(),
        input: InputSpec {
            channels: 1,
            height: side,
            width: side,
        },
        classes: (0..classes).map(|c| c.to_string()).collect(),
        normalization: Normalization::uniform(0.1307, 0.3081),
        preprocessing: None,
        layers,
    }
}

/// Two conv blocks with awkward geometry: an odd input, kernel 5 with stride 2 and padding
/// 2 (the strided im2col path), a stride-1 conv (the wide-row path), overlapping pooling.
fn awkward_architecture() -> Architecture {
    architecture(
        "awkward",
        13,
        3,
        vec![
            conv("conv1", 1, 3, 5, 2, 2), // 13 → 7
            relu("relu1"),
            maxpool("pool1", 3, 2),       // 7 → 3, windows overlap
            conv("conv2", 3, 4, 3, 1, 1), // 3 → 3
            relu("relu2"),
            maxpool("pool2", 2, 1), // 3 → 2, overlap
            LayerSpec::Flatten {
                name: "flatten".into(),
            },
            dense("fc1", 16, 6),
            relu("relu3"),
            dense("fc2", 6, 3),
        ],
    )
}

/// The committed layout in miniature: 2×2/2 pooling (the fast path), padding 1.
fn small_default_architecture(side: usize) -> Architecture {
    let pooled = side / 4;
    architecture(
        "small",
        side,
        10,
        vec![
            conv("conv1", 1, 4, 3, 1, 1),
            relu("relu1"),
            maxpool("pool1", 2, 2),
            conv("conv2", 4, 6, 3, 1, 1),
            relu("relu2"),
            maxpool("pool2", 2, 2),
            LayerSpec::Flatten {
                name: "flatten".into(),
            },
            dense("fc1", 6 * pooled * pooled, 10),
        ],
    )
}

fn random_model(architecture: Architecture, rng: &mut Rng) -> Model {
    let params = architecture
        .plan()
        .expect("test architecture is valid")
        .iter()
        .filter_map(|plan| match plan.op {
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
                (0..b).map(|_| rng.uniform(-0.1, 0.1)).collect(),
            )
        })
        .collect();
    Model::from_parts(architecture, params).expect("shapes match")
}

/// Mean softmax cross-entropy through the f64 CPU twin: finite differences then need no
/// large step to rise above f32 round-off, so they rarely straddle a ReLU or max-pool kink.
fn loss(model: &Model, inputs: &[f32], labels: &[u8]) -> f64 {
    let total: f64 = inputs
        .chunks_exact(model.input_len())
        .zip(labels)
        .map(|(image, &label)| {
            let activations = reference::forward(model, image);
            let logits = activations.last().expect("at least one layer");
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = logits.iter().map(|z| (z - max).exp()).sum();
            sum.ln() + max - logits[usize::from(label)]
        })
        .sum();
    total / labels.len() as f64
}

/// Central difference of the loss along `direction` applied by `perturb`.
fn central_difference(h: f32, mut at: impl FnMut(f32) -> f64) -> f64 {
    (at(h) - at(-h)) / (2.0 * f64::from(h))
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Compares analytic and finite-difference derivatives: along a random ±1 direction over a
/// whole tensor (robust: every element counts) and for a few single elements.
fn check_tensor(
    what: &str,
    analytic: &[f32],
    rng: &mut Rng,
    mut loss_at: impl FnMut(&[f32]) -> f64,
) {
    // 2⁻¹² keeps every perturbed f32 value exact (all values here are below 4 in size).
    let h = 1.0 / 4096.0;
    let direction: Vec<f32> = (0..analytic.len())
        .map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 })
        .collect();
    let numeric = central_difference(h, |t| {
        let step: Vec<f32> = direction.iter().map(|d| d * t).collect();
        loss_at(&step)
    });
    let exact = dot(analytic, &direction);
    let tolerance = 1e-4 + 1e-3 * exact.abs();
    assert!(
        (numeric - exact).abs() <= tolerance,
        "{what}: directional derivative {exact:.6} vs finite difference {numeric:.6}"
    );
    for _ in 0..4 {
        let i = rng.below(analytic.len() as u64) as usize;
        let numeric = central_difference(h, |t| {
            let mut step = vec![0.0; analytic.len()];
            step[i] = t;
            loss_at(&step)
        });
        let exact = f64::from(analytic[i]);
        assert!(
            (numeric - exact).abs() <= 1e-4 + 1e-3 * exact.abs(),
            "{what}[{i}]: gradient {exact:.6} vs finite difference {numeric:.6}"
        );
    }
}

fn check_gradients(architecture: Architecture, seed: u64) {
    let mut rng = Rng::new(seed);
    let model = random_model(architecture, &mut rng);
    let batch = 3;
    let inputs: Vec<f32> = (0..batch * model.input_len())
        .map(|_| rng.uniform(-1.0, 2.5))
        .collect();
    let labels: Vec<u8> = (0..batch)
        .map(|_| rng.below(model.num_classes() as u64) as u8)
        .collect();
    let grads = gradients(&model, &inputs, &labels).expect("valid batch");
    let twin = loss(&model, &inputs, &labels);
    assert!(
        (grads.loss - twin).abs() < 1e-4 * twin.max(1.0),
        "f32 trainer loss {} vs f64 twin {twin}",
        grads.loss
    );

    check_tensor("input", &grads.input, &mut rng, |step| {
        let shifted: Vec<f32> = inputs.iter().zip(step).map(|(x, s)| x + s).collect();
        loss(&model, &shifted, &labels)
    });
    let with_params = |layer: usize, weight: bool, step: &[f32]| {
        let mut params: Vec<LayerParams> = model
            .layers
            .iter()
            .filter_map(|l| l.params.clone())
            .collect();
        let values = if weight {
            &mut params[layer].weight
        } else {
            &mut params[layer].bias
        };
        for (v, s) in values.iter_mut().zip(step) {
            *v += s;
        }
        let moved = Model::from_parts(model.architecture.clone(), params).expect("same shapes");
        loss(&moved, &inputs, &labels)
    };
    for (layer, g) in grads.params.iter().enumerate() {
        check_tensor(&format!("layer {layer} weight"), &g.weight, &mut rng, |s| {
            with_params(layer, true, s)
        });
        check_tensor(&format!("layer {layer} bias"), &g.bias, &mut rng, |s| {
            with_params(layer, false, s)
        });
    }
}

#[test]
fn gradients_match_finite_differences_on_awkward_geometry() {
    for seed in [1, 2, 3] {
        check_gradients(awkward_architecture(), seed);
    }
}

#[test]
fn gradients_match_finite_differences_on_the_default_layout() {
    check_gradients(small_default_architecture(12), 4);
}

#[test]
fn gradients_reject_mismatched_batches() {
    let model = random_model(awkward_architecture(), &mut Rng::new(1));
    assert!(gradients(&model, &[0.0; 10], &[0]).is_err());
    assert!(
        gradients(&model, &vec![0.0; 169], &[3]).is_err(),
        "label 3 of 3 classes"
    );
}

/// Trains a small net on 400 MNIST images with `threads` worker threads; returns the
/// model file's bytes and the per-epoch mean losses.
fn tiny_training_run(threads: usize) -> (Vec<u8>, Vec<f32>, f32) {
    let dir = default_data_dir();
    let train_set = load_mnist(&dir, Split::Train)
        .expect("MNIST training set")
        .subset(0..400);
    let test_set = load_mnist(&dir, Split::Test)
        .expect("MNIST test set")
        .subset(0..200);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 24, // not a multiple of the chunk size
        learning_rate: 1e-2,
        seed: 11,
        max_shift: 1,
    };
    let mut epoch_losses = Vec::new();
    let mut accuracy = 0.0;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let model = pool
        .install(|| {
            train::train(
                &small_default_architecture(28),
                &config,
                &train_set,
                &test_set,
                &mut |event| {
                    if let TrainEvent::Epoch {
                        mean_loss,
                        test_accuracy,
                        ..
                    } = *event
                    {
                        epoch_losses.push(mean_loss);
                        accuracy = test_accuracy;
                    }
                },
            )
        })
        .expect("training runs");
    (
        save_model_bytes(&model).expect("serialises"),
        epoch_losses,
        accuracy,
    )
}

#[test]
fn tiny_training_is_bit_reproducible_and_learns() {
    let (bytes, losses, accuracy) = tiny_training_run(1);
    eprintln!("epoch losses {losses:?}, test accuracy {accuracy}");
    let (again, losses_again, _) = tiny_training_run(1);
    let (threaded, _, _) = tiny_training_run(3);
    assert_eq!(losses, losses_again);
    assert!(bytes == again, "same seed, same thread count: same bytes");
    assert!(
        bytes == threaded,
        "the thread count must not change a single bit"
    );
    assert_eq!(losses.len(), 3);
    assert!(
        losses[0] < 2.3 && losses[2] < 0.75 * losses[0],
        "loss should drop: {losses:?}"
    );
    assert!(
        accuracy > 0.5,
        "400 images and 3 epochs should beat chance: {accuracy}"
    );
}

#[test]
fn default_architecture_plans_with_two_conv_blocks() {
    let architecture = default_architecture();
    let plans = architecture
        .plan()
        .expect("the committed architecture is valid");
    assert_eq!(architecture.format, ARCHITECTURE_FORMAT);
    assert_eq!(architecture.name, "mnist-cnn");
    assert_eq!(
        architecture.classes,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(plans.last().map(|p| p.output.len()), Some(10));
    let params = architecture
        .expected_tensors()
        .chunks(2)
        .map(|pair| {
            LayerParams::new(
                vec![0.0; pair[0].1.iter().product()],
                vec![0.0; pair[1].1.iter().product()],
            )
        })
        .collect();
    let names: Vec<String> = architecture
        .expected_tensors()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"conv1.weight".to_string()) && names.contains(&"fc2.bias".to_string()));
    let model = Model::from_parts(architecture, params).expect("zero weights are valid");
    let blocks = model.conv_blocks();
    assert!(blocks.len() >= 2, "{} conv blocks", blocks.len());
    assert!(
        blocks.iter().all(|b| b.output_layer == b.conv_layer + 1),
        "every conv has its ReLU"
    );
}

/// The committed model loads, and the trainer's f32 evaluation agrees with the f64 CPU
/// twin image by image (the twin is what the GPU path is checked against).
#[test]
fn committed_model_is_accurate_and_evaluation_agrees_with_the_twin() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    let model = cnnviz::model::load_model(&path).expect("committed model loads");
    let test_set = load_mnist(&default_data_dir(), Split::Test).expect("MNIST test set");
    let accuracy = train::evaluate_cpu(&model, &test_set);
    assert!(accuracy >= 0.99, "committed model scores {accuracy}");

    let sample = test_set.subset(0..500);
    let twin_correct = (0..sample.len())
        .filter(|&i| {
            let pixels: Vec<f32> = sample
                .image(i)
                .iter()
                .map(|&p| f32::from(p) / 255.0)
                .collect();
            let activations = reference::forward(&model, &model.normalize(&pixels));
            let logits = activations.last().expect("at least one layer");
            reference::argmax(logits) == usize::from(sample.labels[i])
        })
        .count();
    let cpu_correct = (train::evaluate_cpu(&model, &sample) * sample.len() as f32).round() as usize;
    assert_eq!(
        cpu_correct, twin_correct,
        "f32 evaluation and f64 twin disagree"
    );
}
