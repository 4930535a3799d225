//! The fused interactive path (`shaders/fused.wgsl`: one persistent workgroup per image
//! walks the layers; under `auto`, `conv2d_tiled.wgsl`'s conv block kernel runs each conv
//! with its ReLU, 2×2 pool and value-range partials between the walks) against the CPU twin (`model::reference`, f64): every activation,
//! every gradient down to the target block, probabilities, prediction, target, channel
//! weights, raw and normalised maps, heatmap and value ranges, at 1e-4 relative
//! (`common::TOLERANCE`). Awkward shapes: odd and non-square inputs, padding 0/1/2, stride
//! 2, kernels 1/3/5, channel counts that are not multiples of the conv op's block of 8,
//! overlapping pools and pools that drop a trailing row, several conv blocks, a block with
//! no ReLU, no pool at all, no dense layer at all, more classes than the workgroup has
//! invocations, walks cut by llvmpipe's loop limit and layers too long for any walk
//! (they must fall back to the unfused kernels). Plus the structural property the window
//! relies on: the shipped model's interactive inference is at most 6 dispatches.

mod common;

use std::path::Path;

use cnnviz::gpu::{
    CamTarget, GpuNetwork, KernelVariant, LayerChoices, LayerKernel, NetworkOptions,
};
use cnnviz::model::LayerOp;
use cnnviz::model::train::default_architecture;
use cnnviz::model::{Model, load_model};
use common::parity::{check_parity, recorded_kernels};
use common::*;

/// Three conv blocks: k3 s1 p1 on 13×11 with 11 output channels (a partial block of 8),
/// k5 s2 p2 without ReLU then an overlapping k3 s2 pool, k1 with ReLU; then dense layers.
fn three_blocks() -> Model {
    random_model(
        architecture(
            "three-blocks",
            13,
            11,
            6,
            vec![
                conv("conv1", 1, 11, 3, 1, 1),
                relu("relu1"),
                conv("conv2", 11, 9, 5, 2, 2),
                pool("pool", 3, 2),
                conv("conv3", 9, 5, 1, 1, 0),
                relu("relu3"),
                flatten("flatten"),
                dense("fc1", 5 * 3 * 2, 17),
                relu("relu4"),
                dense("fc2", 17, 6),
            ],
        ),
        31,
    )
}

/// No pool anywhere, padding 2, stride 2, and 300 classes (more than the 256 invocations).
fn no_pool_many_classes() -> Model {
    random_model(
        architecture(
            "no-pool",
            17,
            15,
            300,
            vec![
                conv("conv1", 1, 3, 5, 1, 2),
                relu("relu1"),
                conv("conv2", 3, 8, 3, 2, 0),
                relu("relu2"),
                flatten("flatten"),
                dense("fc", 8 * 8 * 7, 300),
            ],
        ),
        32,
    )
}

/// No dense layer: the logits are a flattened 1×1 conv output after a pool that drops a
/// trailing row and column (9×9 → 4×4 → the last conv reads all of it with k4).
fn no_dense_layer() -> Model {
    random_model(
        architecture(
            "no-dense",
            9,
            9,
            5,
            vec![
                conv("conv1", 1, 4, 3, 1, 1),
                relu("relu1"),
                pool("pool1", 2, 2),
                conv("conv2", 4, 5, 4, 1, 0),
                flatten("flatten"),
            ],
        ),
        33,
    )
}

/// conv2's forward op (64 input channels, 40 output channels, 5×5, 40×40) loops far more often than llvmpipe
/// allows one invocation, so it must run its unfused kernel between two walks; the rest of
/// the forward and the backward still walk.
fn a_layer_too_long_for_a_walk() -> Model {
    random_model(
        architecture(
            "too-long",
            40,
            40,
            3,
            vec![
                conv("conv1", 1, 64, 3, 1, 1),
                relu("relu1"),
                conv("conv2", 64, 40, 5, 1, 2),
                relu("relu2"),
                pool("pool", 4, 4),
                flatten("flatten"),
                dense("fc", 40 * 10 * 10, 3),
            ],
        ),
        34,
    )
}

/// A conv straight into a 2×2 pool (no ReLU between: the conv block kernel pools the conv
/// output), on a 10×9 input whose 8×7 conv output leaves a column no window reads, and a
/// ReLU after the pool.
fn pool_without_relu() -> Model {
    random_model(
        architecture(
            "pool-without-relu",
            10,
            9,
            4,
            vec![
                conv("conv1", 1, 3, 3, 1, 0),
                pool("pool1", 2, 2),
                relu("relu1"),
                flatten("flatten"),
                dense("fc", 3 * 4 * 3, 4),
            ],
        ),
        35,
    )
}

/// The shipped model when it exists, else random weights of its architecture.
fn shipped_model() -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    load_model(&path).unwrap_or_else(|e| {
        eprintln!(
            "note: {} does not load ({e}); random weights",
            path.display()
        );
        random_model(default_architecture(), 42)
    })
}

fn fused_network(model: &Model, max_batch: u32) -> GpuNetwork {
    let gpu = gpu().expect("callers check for a GPU first");
    GpuNetwork::with_options(
        &gpu.device,
        model,
        max_batch,
        &NetworkOptions::with_kernels(KernelVariant::Fused),
    )
    .unwrap_or_else(|e| panic!("fused network of {}: {e}", model.architecture.name))
}

/// Per-layer choices giving the `n`-th conv (0-based) `gemm` where `gemm(n)` holds and
/// its conv block kernel elsewhere (what the batch-1 tuner chooses between).
fn conv_choices(model: &Model, gemm: impl Fn(usize) -> bool) -> LayerChoices {
    let mut n = 0;
    model
        .layers
        .iter()
        .map(|layer| {
            let LayerOp::Conv2d(_) = layer.plan.op else {
                return None;
            };
            n += 1;
            Some(if gemm(n - 1) {
                LayerKernel::Gemm
            } else {
                LayerKernel::Tiled
            })
        })
        .collect()
}

/// The one-image `auto` network (the window's) with `choices`.
fn auto_network(model: &Model, choices: &LayerChoices) -> GpuNetwork {
    let gpu = gpu().expect("callers check for a GPU first");
    GpuNetwork::with_choices(&gpu.device, model, 1, KernelVariant::Auto, choices)
        .unwrap_or_else(|e| panic!("auto network of {}: {e}", model.architecture.name))
}

/// Every block and several targets on a one-image network (the window's), then batches of
/// 3 and 1 on one network (one workgroup per image; the batch is only the dispatch size).
fn check_fused(model: &Model, seed: u64) {
    let Some(gpu) = gpu() else { return };
    let classes = model.num_classes();
    let single = fused_network(model, 1);
    let batched = fused_network(model, 3);
    // `auto` on one image (the window's network): conv block kernels between walks.
    let auto = GpuNetwork::with_options(
        &gpu.device,
        model,
        1,
        &NetworkOptions::with_kernels(KernelVariant::Auto),
    )
    .unwrap_or_else(|e| panic!("auto network of {}: {e}", model.architecture.name));
    // The tuner's batch-1 alternatives: gemm convs (their pools and ranges walked) mixed
    // with conv block kernels both ways round, so every conv runs as gemm once and each
    // kind follows the other.
    let mixed = [
        (
            "even convs gemm",
            auto_network(model, &conv_choices(model, |n| n % 2 == 0)),
        ),
        (
            "odd convs gemm",
            auto_network(model, &conv_choices(model, |n| n % 2 == 1)),
        ),
    ];
    let gemm_convs = mixed
        .iter()
        .flat_map(|(_, network)| network.forward_kernels())
        .filter(|label| label.contains("_gemm"))
        .count();
    assert!(
        gemm_convs > 0,
        "{}: no conv ran gemm",
        model.architecture.name
    );
    for block in 0..model.conv_blocks().len() {
        for (t, target) in [
            CamTarget::Predicted,
            CamTarget::Class(0),
            CamTarget::Class(classes - 1),
        ]
        .into_iter()
        .enumerate()
        {
            let seed = seed + 10 * block as u64 + t as u64;
            let what = format!("{}, fused", model.architecture.name);
            check_parity(
                &single,
                model,
                &random_inputs(model, 1, seed),
                target,
                block,
                &what,
            );
            let auto_what = format!("{}, auto (conv blocks and walks)", model.architecture.name);
            let inputs = random_inputs(model, 1, seed + 7);
            check_parity(&auto, model, &inputs, target, block, &auto_what);
            for (name, network) in &mixed {
                let what = format!("{}, auto ({name})", model.architecture.name);
                check_parity(network, model, &inputs, target, block, &what);
            }
            for images in [3, 1] {
                check_parity(
                    &batched,
                    model,
                    &random_inputs(model, images, seed + 100 * images as u64),
                    target,
                    block,
                    &format!("{what}, batch {images}"),
                );
            }
        }
    }
}

#[test]
fn three_blocks_with_partial_channel_blocks_match_the_cpu() {
    check_fused(&three_blocks(), 100);
}

#[test]
fn a_model_without_pools_and_with_many_classes_matches_the_cpu() {
    check_fused(&no_pool_many_classes(), 200);
}

#[test]
fn a_pool_right_after_a_conv_matches_the_cpu() {
    check_fused(&pool_without_relu(), 600);
}

#[test]
fn a_model_without_dense_layers_matches_the_cpu() {
    check_fused(&no_dense_layer(), 300);
}

#[test]
fn a_layer_too_long_for_a_walk_falls_back_and_matches_the_cpu() {
    let Some(_) = gpu() else { return };
    let model = a_layer_too_long_for_a_walk();
    check_fused(&model, 400);
    let kernels = recorded_kernels(&fused_network(&model, 1), &model, 1);
    assert!(
        kernels.contains(&"conv2d.forward_tiled") || kernels.contains(&"conv2d.forward"),
        "conv2 runs unfused: {kernels:?}"
    );
    assert_eq!(kernels.first(), Some(&"fused.forward"), "{kernels:?}");
    assert_eq!(kernels.last(), Some(&"fused.backward"), "{kernels:?}");
    assert!(!kernels.contains(&"value_range.main"), "{kernels:?}");
}

#[test]
fn the_shipped_model_matches_the_cpu_in_two_walks() {
    let Some(_) = gpu() else { return };
    let model = shipped_model();
    check_fused(&model, 500);
    let network = fused_network(&model, 1);
    for block in 0..model.conv_blocks().len() {
        assert_eq!(
            recorded_kernels(&network, &model, block),
            ["fused.forward", "fused.backward"],
            "block {block}"
        );
    }
}

/// The window's network (the tuned plan of the default options at batch 1) records at most 6 dispatches
/// for forward, softmax, Grad-CAM and value ranges of the committed model.
#[test]
fn the_interactive_path_of_the_shipped_model_is_at_most_six_dispatches() {
    let Some(gpu) = gpu() else { return };
    let model = shipped_model();
    let network = match std::env::var("CNNVIZ_KERNELS") {
        // The default is what the window runs; a forced variant is not the window's path.
        Ok(_) => fused_network(&model, 1),
        // The window's: the tuner's choice (tuned here, no cache).
        Err(_) => {
            let options = NetworkOptions::default();
            let choice = cnnviz::gpu::tune::choose_with_cache(
                &gpu.device,
                &gpu.queue,
                &model,
                1,
                &options,
                None,
            )
            .expect("tuning runs");
            GpuNetwork::with_choices(&gpu.device, &model, 1, choice.variant, &choice.choices)
                .expect("network builds")
        }
    };
    let dispatches = network.interactive_dispatches();
    assert!(dispatches <= 6, "{dispatches} dispatches");
    let last = model.conv_blocks().len() - 1;
    assert_eq!(recorded_kernels(&network, &model, last).len(), dispatches);
}

/// Every plan the batch-1 tuner can choose for the shipped model (each conv as its block
/// kernel or as gemm) stays within 6 dispatches, and a gemm choice runs the gemm conv.
#[test]
fn every_tunable_plan_of_the_shipped_model_is_at_most_six_dispatches() {
    let Some(_) = gpu() else { return };
    let model = shipped_model();
    let convs = model
        .layers
        .iter()
        .filter(|l| matches!(l.plan.op, LayerOp::Conv2d(_)))
        .count();
    for mask in 0..1usize << convs {
        let network = auto_network(&model, &conv_choices(&model, |n| mask >> n & 1 == 1));
        let dispatches = network.interactive_dispatches();
        assert!(dispatches <= 6, "plan {mask:b}: {dispatches} dispatches");
        let last = model.conv_blocks().len() - 1;
        let kernels = recorded_kernels(&network, &model, last);
        assert_eq!(kernels.len(), dispatches, "plan {mask:b}: {kernels:?}");
        let gemms = kernels
            .iter()
            .filter(|k| **k == "conv2d.forward_relu_gemm")
            .count();
        assert_eq!(
            gemms,
            mask.count_ones() as usize,
            "plan {mask:b}: {kernels:?}"
        );
    }
}
