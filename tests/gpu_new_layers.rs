//! The layers of "bring your own model" on the GPU against the CPU twin (`model::reference`,
//! f64) at 1e-4 of each tensor's scale: batch norm (on a map and after a dense layer), leaky
//! ReLU, sigmoid, tanh, dropout, average pools with padding and `count_include_pad` both
//! ways, global average pooling of a non-square map, asymmetric conv padding (more at the
//! end and more at the start) and a 3-channel 32×32 input. Every activation, gradient,
//! logit and Grad-CAM output at every conv block (`common::parity::check_parity`), under
//! every kernel variant, the tuner's gemm choices in the fused plan, batches of 1 and 5.

mod common;

use cnnviz::gpu::{
    CamTarget, GpuNetwork, KernelVariant, LayerChoices, LayerKernel, NetworkOptions,
};
use cnnviz::model::builders::{
    avgpool, batch_norm, dropout, global_avg_pool, leaky_relu, sigmoid, tanh,
};
use cnnviz::model::{Architecture, LayerOp, LayerSpec, Model};
use common::parity::{check_parity, recorded_kernels};
use common::*;

/// A conv whose bottom/right padding differs from its top/left padding.
fn asymmetric_conv(
    name: &str,
    (input, output, kernel, stride): (usize, usize, usize, usize),
    padding: usize,
    padding_end: usize,
) -> LayerSpec {
    let mut spec = conv(name, input, output, kernel, stride, padding);
    if let LayerSpec::Conv2d {
        padding_end: end, ..
    } = &mut spec
    {
        *end = Some(padding_end);
    }
    spec
}

/// An average pool whose divisor counts only the real pixels.
fn avgpool_without_padding_in_divisor(
    name: &str,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> LayerSpec {
    LayerSpec::AvgPool2d {
        name: name.to_string(),
        kernel_size: kernel,
        stride,
        padding,
        count_include_pad: false,
    }
}

fn with_channels(mut architecture: Architecture, channels: usize) -> Architecture {
    architecture.input.channels = channels;
    architecture
}

/// Every new layer type on an odd 13×11 input: conv (padding 0 above, 1 below) → batch
/// norm → leaky ReLU → 3×3 s2 average pool with padding counted; conv k5 s2 (padding 2
/// above, 1 below) → batch norm → tanh → dropout → 2×2 s1 average pool with padding not
/// counted; conv k1 → sigmoid → global average pool of a 3×4 map; dense → batch norm →
/// leaky ReLU → dropout → dense.
fn every_new_layer_on_odd_sizes() -> Model {
    random_model(
        architecture(
            "new layers, odd sizes",
            13,
            11,
            6,
            vec![
                asymmetric_conv("conv1", (1, 4, 3, 1), 0, 1),
                batch_norm("bn1", 4),
                leaky_relu("leaky1", 0.1),
                avgpool("avg1", 3, 2, 1),
                asymmetric_conv("conv2", (4, 6, 5, 2), 2, 1),
                batch_norm("bn2", 6),
                tanh("tanh2"),
                dropout("drop2", 0.3),
                avgpool_without_padding_in_divisor("avg2", 2, 1, 1),
                conv("conv3", 6, 5, 1, 1, 0),
                sigmoid("sigmoid3"),
                global_avg_pool("gap"),
                flatten("flatten"),
                dense("fc1", 5, 7),
                batch_norm("bn4", 7),
                leaky_relu("leaky4", 0.01),
                dropout("drop4", 0.5),
                dense("fc2", 7, 6),
            ],
        ),
        11,
    )
}

/// A 3-channel 32×32 input through conv → batch norm → ReLU → pool blocks (the layout of
/// a small PyTorch tutorial CNN): max pool, then an average pool, then a stride-2 conv with
/// a leaky ReLU and global average pooling.
fn colour_conv_bn_relu_pool() -> Model {
    random_model(
        with_channels(
            architecture(
                "colour conv-bn-relu-pool",
                32,
                32,
                10,
                vec![
                    conv("conv1", 3, 8, 3, 1, 1),
                    batch_norm("bn1", 8),
                    relu("relu1"),
                    pool("pool1", 2, 2),
                    conv("conv2", 8, 12, 3, 1, 1),
                    batch_norm("bn2", 12),
                    relu("relu2"),
                    avgpool("pool2", 2, 2, 0),
                    conv("conv3", 12, 16, 3, 2, 1),
                    leaky_relu("leaky3", 0.2),
                    global_avg_pool("gap"),
                    flatten("flatten"),
                    dropout("drop", 0.5),
                    dense("fc", 16, 10),
                ],
            ),
            3,
        ),
        12,
    )
}

/// The layout of a PyTorch tutorial CNN on 3×32×32: (conv → batch norm → ReLU → 2×2 max
/// pool) twice, dropout, dense.
fn tutorial_conv_bn_relu_pool() -> Model {
    random_model(
        with_channels(
            architecture(
                "tutorial conv-bn-relu-pool",
                32,
                32,
                10,
                vec![
                    conv("conv1", 3, 8, 3, 1, 1),
                    batch_norm("bn1", 8),
                    relu("relu1"),
                    pool("pool1", 2, 2),
                    conv("conv2", 8, 16, 3, 1, 1),
                    batch_norm("bn2", 16),
                    relu("relu2"),
                    pool("pool2", 2, 2),
                    flatten("flatten"),
                    dropout("drop", 0.5),
                    dense("fc", 16 * 8 * 8, 10),
                ],
            ),
            3,
        ),
        15,
    )
}

/// Only the layers every kernel variant already had, but with asymmetric conv padding: a
/// kernel that recomputed its output size from `padding` would read or write the wrong
/// rows. Wider than a 16×16 tile, so the tiled kernels span several tiles.
fn asymmetric_padding() -> Model {
    random_model(
        architecture(
            "asymmetric padding",
            19,
            23,
            5,
            vec![
                asymmetric_conv("conv1", (1, 6, 3, 1), 1, 0),
                relu("relu1"),
                asymmetric_conv("conv2", (6, 9, 4, 2), 1, 2),
                relu("relu2"),
                pool("pool", 2, 2),
                asymmetric_conv("conv3", (9, 4, 3, 1), 0, 2),
                flatten("flatten"),
                dense("fc", 4 * 4 * 5, 5),
            ],
        ),
        13,
    )
}

/// A 15×15 average pool over a 2×96×96 map loops more often than llvmpipe allows one
/// invocation of a walk (forward and backward), so it runs its own kernels between walks.
fn an_average_pool_too_long_for_a_walk() -> Model {
    random_model(
        architecture(
            "average pool too long for a walk",
            96,
            96,
            4,
            vec![
                conv("conv1", 1, 2, 3, 1, 1),
                batch_norm("bn1", 2),
                tanh("tanh1"),
                avgpool_without_padding_in_divisor("avg", 15, 1, 7),
                leaky_relu("leaky", 0.05),
                conv("conv2", 2, 3, 3, 2, 1),
                sigmoid("sigmoid2"),
                global_avg_pool("gap"),
                flatten("flatten"),
                dense("fc", 3, 4),
            ],
        ),
        14,
    )
}

fn network(model: &Model, max_batch: u32, variant: KernelVariant) -> GpuNetwork {
    let gpu = gpu().expect("callers check for a GPU first");
    GpuNetwork::with_options(
        &gpu.device,
        model,
        max_batch,
        &NetworkOptions::with_kernels(variant),
    )
    .unwrap_or_else(|e| panic!("{} with {variant}: {e}", model.architecture.name))
}

/// The one-image `auto` network with every conv as the tuner's gemm choice.
fn gemm_choice_network(model: &Model) -> GpuNetwork {
    let gpu = gpu().expect("callers check for a GPU first");
    let choices: LayerChoices = model
        .layers
        .iter()
        .map(|l| matches!(l.plan.op, LayerOp::Conv2d(_)).then_some(LayerKernel::Gemm))
        .collect();
    GpuNetwork::with_choices(&gpu.device, model, 1, KernelVariant::Auto, &choices)
        .unwrap_or_else(|e| panic!("{} with gemm choices: {e}", model.architecture.name))
}

/// Every variant on a one-image and a five-image network, plus the fused plan with gemm
/// convs; every conv block with the predicted class and the first and last class.
fn check_every_variant(model: &Model, seed: u64) {
    let Some(_) = gpu() else { return };
    let classes = model.num_classes();
    let mut networks: Vec<(String, GpuNetwork)> = Vec::new();
    for variant in KernelVariant::ALL {
        networks.push((format!("{variant}, one image"), network(model, 1, variant)));
        networks.push((
            format!("{variant}, five images"),
            network(model, 5, variant),
        ));
    }
    networks.push(("auto, gemm convs".to_string(), gemm_choice_network(model)));
    assert!(!model.conv_blocks().is_empty());
    for (what, network) in &networks {
        for block in 0..model.conv_blocks().len() {
            for (t, target) in [
                CamTarget::Predicted,
                CamTarget::Class(0),
                CamTarget::Class(classes - 1),
            ]
            .into_iter()
            .enumerate()
            {
                let images = if what.contains("five") { 5 - 2 * t } else { 1 };
                let seed = seed + 10 * block as u64 + t as u64;
                check_parity(
                    network,
                    model,
                    &random_inputs(model, images, seed),
                    target,
                    block,
                    &format!("{}, {what}", model.architecture.name),
                );
            }
        }
    }
}

#[test]
fn every_new_layer_matches_the_cpu_in_every_variant() {
    let model = every_new_layer_on_odd_sizes();
    // Grad-CAM targets run through the element-wise layers after each conv.
    let outputs: Vec<&str> = model
        .conv_blocks()
        .iter()
        .map(|b| model.layers[b.output_layer].plan.name.as_str())
        .collect();
    assert_eq!(outputs, ["leaky1", "drop2", "sigmoid3"]);
    check_every_variant(&model, 1000);
}

#[test]
fn a_colour_conv_bn_relu_pool_model_matches_the_cpu_in_every_variant() {
    check_every_variant(&colour_conv_bn_relu_pool(), 2000);
}

#[test]
fn a_tutorial_conv_bn_relu_pool_model_matches_the_cpu_in_every_variant() {
    // (Seed 5000 puts a batch-norm output at 7e-10 in f64 in a window of a dead channel's
    // zeros: f32 rounds it to the other side of the ReLU's kink and the pool routes that
    // window's gradient elsewhere, as a near tie may; no kernel is wrong there.)
    check_every_variant(&tutorial_conv_bn_relu_pool(), 5100);
}

#[test]
fn asymmetric_conv_padding_matches_the_cpu_in_every_variant() {
    let model = asymmetric_padding();
    let shapes: Vec<String> = model
        .activation_shapes()
        .iter()
        .map(|s| s.to_string())
        .collect();
    // 19×23 → k3 p(1, 0) → 18×22 → k4 s2 p(1, 2) → 9×11 → pool → 4×5 → k3 p(0, 2) → 4×5.
    assert_eq!(shapes[1], "6×18×22");
    assert_eq!(shapes[3], "9×9×11");
    assert_eq!(shapes[6], "4×4×5");
    check_every_variant(&model, 3000);
}

/// Dropout, like flatten, costs nothing: its output shares its input's region.
#[test]
fn dropout_aliases_its_input_and_runs_no_kernel() {
    let model = colour_conv_bn_relu_pool();
    let layout = cnnviz::gpu::ArenaLayout::new(&model, 3);
    let drop = model
        .layers
        .iter()
        .position(|l| l.plan.op == LayerOp::Dropout)
        .expect("the model has a dropout");
    let slot = &layout.slots[drop + 1];
    assert_eq!(slot.alias_of, Some(drop - 1), "flatten's source");
    assert_eq!(slot.offset, layout.slots[drop].offset);
    let Some(_) = gpu() else { return };
    let network = network(&model, 1, KernelVariant::Direct);
    let kernels = recorded_kernels(&network, &model, 0);
    assert!(kernels.iter().all(|k| !k.contains("drop")), "{kernels:?}");
    assert!(kernels.contains(&"pointwise.forward"), "{kernels:?}");
    assert!(kernels.contains(&"avgpool2d.backward"), "{kernels:?}");
}

/// The window's path for conv → batch norm → ReLU → pool models stays a handful of
/// dispatches: `auto` runs each conv with its batch norm, ReLU and 2×2 max pool as one
/// conv block kernel and walks the rest (the tutorial model: two block kernels, one forward
/// walk, one backward walk, as the MNIST model); other layers after a conv are walked, not
/// launched one by one; `fused` is two walks.
#[test]
fn the_interactive_path_of_conv_bn_relu_pool_models_is_a_few_dispatches() {
    let Some(_) = gpu() else { return };
    for (model, auto_limit) in [
        (tutorial_conv_bn_relu_pool(), 4),
        // Three convs, an average pool and a leaky ReLU: a walk after each block kernel.
        (colour_conv_bn_relu_pool(), 7),
    ] {
        for variant in [KernelVariant::Auto, KernelVariant::Fused] {
            let network = network(&model, 1, variant);
            let dispatches = network.interactive_dispatches();
            let last = model.conv_blocks().len() - 1;
            let kernels = recorded_kernels(&network, &model, last);
            let what = format!("{}, {variant}", model.architecture.name);
            assert_eq!(kernels.len(), dispatches, "{what}: {kernels:?}");
            eprintln!("{what}: {dispatches} dispatches: {kernels:?}");
            let limit = if variant == KernelVariant::Fused {
                2
            } else {
                auto_limit
            };
            assert!(dispatches <= limit, "{what}: {kernels:?}");
            assert!(
                kernels
                    .iter()
                    .all(|k| !k.starts_with("pointwise") && !k.starts_with("avgpool2d")),
                "{what}: {kernels:?}"
            );
        }
    }
}

#[test]
fn an_average_pool_too_long_for_a_walk_runs_unfused_between_walks_and_matches_the_cpu() {
    let Some(_) = gpu() else { return };
    let model = an_average_pool_too_long_for_a_walk();
    for variant in [KernelVariant::Fused, KernelVariant::Auto] {
        let network = network(&model, 1, variant);
        let kernels = recorded_kernels(&network, &model, 0);
        for kernel in ["avgpool2d.forward", "avgpool2d.backward"] {
            assert!(kernels.contains(&kernel), "{variant}: {kernels:?}");
        }
        assert!(kernels.contains(&"fused.forward"), "{variant}: {kernels:?}");
        assert_eq!(kernels.last(), Some(&"fused.backward"), "{kernels:?}");
    }
    check_every_variant(&model, 4000);
}

/// Feature visualisation runs its backward steps through every new layer type: a few
/// gradient-ascent steps (jitter, blur) on the GPU match the CPU twin for a channel of
/// every conv block and for the classes.
#[test]
fn feature_visualisation_through_the_new_layers_matches_the_cpu() {
    use cnnviz::feature_vis::{FeatureVisOptions, Objective};
    use cnnviz::gpu::FeatureVis;
    let Some(gpu) = gpu() else { return };
    let model = every_new_layer_on_odd_sizes();
    let steps = 4;
    let options = FeatureVisOptions {
        steps,
        blur_every: 2,
        seed: 5,
        ..FeatureVisOptions::default()
    };
    let objectives = (0..model.conv_blocks().len())
        .map(|block| Objective::Channels { block })
        .chain([Objective::Classes]);
    for objective in objectives {
        let mut vis = FeatureVis::new(&gpu.device, &gpu.queue, &model, objective, options.clone())
            .unwrap_or_else(|e| panic!("{objective:?}: {e}"));
        assert_eq!(vis.run(steps, |_| {}).expect("runs"), steps);
        let snapshot = vis.read().expect("reads back");
        assert_feature_vis_matches_twin(&model, objective, &options, steps, &snapshot);
    }
}

/// The tuner times only conv and dense layers; a model with the new layers tunes at batch
/// 1 (block kernel or gemm per conv) and at a larger batch, and the tuned networks match
/// the CPU.
#[test]
fn a_model_with_the_new_layers_tunes_and_the_tuned_network_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let model = colour_conv_bn_relu_pool();
    for (max_batch, images) in [(1u32, 1usize), (9, 9)] {
        let choice = cnnviz::gpu::tune::choose_with_cache(
            &gpu.device,
            &gpu.queue,
            &model,
            max_batch,
            &NetworkOptions::with_kernels(KernelVariant::Auto),
            Some(dir.path()),
        )
        .unwrap_or_else(|e| panic!("tuning at {max_batch}: {e}"));
        for (layer, kernel) in model.layers.iter().zip(&choice.choices) {
            let tunable = matches!(layer.plan.op, LayerOp::Conv2d(_) | LayerOp::Dense { .. });
            assert!(
                tunable || kernel.is_none(),
                "{}: {kernel:?}",
                layer.plan.name
            );
        }
        let network = GpuNetwork::with_choices(
            &gpu.device,
            &model,
            max_batch,
            choice.variant,
            &choice.choices,
        )
        .expect("tuned network");
        for block in 0..model.conv_blocks().len() {
            check_parity(
                &network,
                &model,
                &random_inputs(&model, images, 60 + block as u64),
                CamTarget::Predicted,
                block,
                &format!("tuned at {max_batch}: {:?}", network.forward_kernels()),
            );
        }
    }
}
