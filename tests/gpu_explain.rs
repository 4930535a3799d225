//! The GPU explainer (`cnnviz::gpu::explain::GpuExplainer`) against the CPU twin
//! (`cnnviz::explain::reference`, f64): every method's answer (logits, class, raw map at the
//! block, heatmap or attribution, display map) and the deletion/insertion curves, within
//! 1e-4 of the tensor's scale, on the committed model with sample drawings and MNIST test
//! images, and on a random model with random inputs; both conv blocks, the counterfactual,
//! a class other than the predicted one. Plus the errors a caller can cause.

mod common;

use std::path::Path;

use cnnviz::data::preprocess::{ink_from_image, load_image, mnist_input};
use cnnviz::data::{Split, load_mnist};
use cnnviz::explain::reference::faithfulness::{area_under_curve, faithfulness_curves};
use cnnviz::explain::reference::{ReferenceExplainer, blank_values};
use cnnviz::explain::{
    ExplainError, ExplainOptions, ExplainRequest, Explained, Explainer, Family, Method,
};
use cnnviz::gpu::GpuError;
use cnnviz::gpu::explain::GpuExplainer;
use cnnviz::model::builders::default_architecture;
use cnnviz::model::spec::ChannelValues;
use cnnviz::model::{Model, Normalization, load_model};

use common::{
    architecture, assert_close, conv, dense, flatten, gpu, pool, random_inputs, random_model, relu,
};

fn committed_model() -> Model {
    load_model(Path::new("weights/mnist-cnn.safetensors")).expect("the committed model loads")
}

fn sample_input(model: &Model, file: &str) -> Vec<f32> {
    let image = load_image(&Path::new("samples").join(file)).expect("sample loads");
    let pixels = mnist_input(&ink_from_image(&image), 28, 28).expect("sample has ink");
    model.normalize(&pixels)
}

fn mnist_test_input(model: &Model, index: usize) -> Vec<f32> {
    let test = load_mnist(Path::new("data/mnist"), Split::Test).expect("MNIST test set loads");
    let pixels: Vec<f32> = test
        .image(index)
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    model.normalize(&pixels)
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Both engines on one input and request; everything but the curves compared.
fn compare(
    gpu_engine: &mut GpuExplainer,
    twin: &mut ReferenceExplainer,
    input: &[f32],
    request: &ExplainRequest,
    what: &str,
) -> Explained {
    let at = format!(
        "{what}, {} class {:?} block {:?}{}",
        request.method.name(),
        request.class,
        request.block,
        if request.counterfactual {
            " counterfactual"
        } else {
            ""
        }
    );
    let gpu = gpu_engine
        .explain(input, request)
        .unwrap_or_else(|e| panic!("{at}: GPU: {e}"));
    let cpu_request = ExplainRequest {
        faithfulness: false,
        ..*request
    };
    let cpu = twin
        .explain(input, &cpu_request)
        .unwrap_or_else(|e| panic!("{at}: twin: {e}"));
    assert_eq!(gpu.class, cpu.class, "{at}: class");
    assert_eq!(gpu.block, cpu.block, "{at}: block");
    assert_eq!(gpu.counterfactual, request.counterfactual, "{at}");
    assert_close(&format!("{at}: logits"), &gpu.logits, &to_f64(&cpu.logits));
    assert_eq!(
        (gpu.raw_height, gpu.raw_width),
        (cpu.raw_height, cpu.raw_width),
        "{at}: raw size"
    );
    if request.method.family() == Family::Cam {
        assert_close(&format!("{at}: raw map"), &gpu.raw, &to_f64(&cpu.raw));
    }
    assert_close(
        &format!("{at}: attribution"),
        &gpu.attribution,
        &to_f64(&cpu.attribution),
    );
    assert_close(&format!("{at}: display map"), &gpu.map, &to_f64(&cpu.map));
    gpu
}

/// The curves of `gpu` against the twin's curves for the GPU's own display map (so a tie
/// broken differently by a rounding cannot reorder pixels between the engines).
fn compare_curves(model: &Model, input: &[f32], gpu: &Explained, options: &ExplainOptions) {
    let what = format!("{} class {}", gpu.method.name(), gpu.class);
    let f = gpu.faithfulness.as_ref().expect("curves were asked for");
    let (deletion, insertion) = faithfulness_curves(
        model,
        &to_f64(input),
        &gpu.map,
        gpu.class,
        &blank_values(model),
        options.faithfulness_steps,
    );
    assert_close(&format!("{what}: deletion"), &f.deletion, &deletion);
    assert_close(&format!("{what}: insertion"), &f.insertion, &insertion);
    assert_close(
        &format!("{what}: areas"),
        &[f.deletion_auc, f.insertion_auc],
        &[area_under_curve(&deletion), area_under_curve(&insertion)],
    );
}

fn engines(model: &Model, options: &ExplainOptions) -> Option<(GpuExplainer, ReferenceExplainer)> {
    let gpu = gpu()?;
    let engine = GpuExplainer::new(&gpu.device, &gpu.queue, model, options.clone())
        .expect("the GPU explainer builds");
    Some((
        engine,
        ReferenceExplainer::new(model.clone(), options.clone()),
    ))
}

#[test]
fn every_method_matches_the_twin_on_drawings_at_both_blocks() {
    let model = committed_model();
    let options = ExplainOptions::default();
    let Some((mut engine, mut twin)) = engines(&model, &options) else {
        return;
    };
    let drawings = [
        (
            "samples/3-pen-on-paper.jpg",
            sample_input(&model, "3-pen-on-paper.jpg"),
        ),
        ("MNIST test image 0", mnist_test_input(&model, 0)),
    ];
    for (what, input) in &drawings {
        for method in Method::ALL {
            let blocks: &[Option<usize>] = if method.uses_block() {
                &[Some(0), None]
            } else {
                &[None]
            };
            for &block in blocks {
                let request = ExplainRequest {
                    block,
                    faithfulness: false,
                    ..ExplainRequest::new(method)
                };
                compare(&mut engine, &mut twin, input, &request, what);
            }
        }
    }
}

#[test]
fn counterfactuals_and_other_classes_match_the_twin_on_a_random_model() {
    let model = random_model(default_architecture(), 11);
    // Smaller batched methods keep the twin quick; the GPU runs the same kernels.
    let options = ExplainOptions {
        ig_steps: 8,
        smoothgrad_samples: 4,
        occlusion_window: 6,
        occlusion_stride: 4,
        ..ExplainOptions::default()
    };
    let Some((mut engine, mut twin)) = engines(&model, &options) else {
        return;
    };
    let input = random_inputs(&model, 1, 5);
    let predicted = engine
        .explain(&input, &ExplainRequest::new(Method::Saliency))
        .expect("explains")
        .class;
    let other = (predicted + 3) % model.num_classes();
    for method in Method::ALL {
        for (class, counterfactual, block) in [
            (Some(other), false, Some(0)),
            (None, true, None),
            (Some(other), true, Some(1)),
        ] {
            let request = ExplainRequest {
                method,
                class,
                counterfactual,
                block,
                faithfulness: false,
            };
            let got = compare(&mut engine, &mut twin, &input, &request, "random input");
            if class.is_some() {
                assert_eq!(got.class, other);
            }
        }
    }
}

#[test]
fn deletion_and_insertion_curves_match_the_twin() {
    let model = committed_model();
    let options = ExplainOptions::default();
    let Some((mut engine, mut twin)) = engines(&model, &options) else {
        return;
    };
    let input = sample_input(&model, "7-mnist-test-0.png");
    for method in [Method::GradCam, Method::Saliency, Method::Occlusion] {
        let request = ExplainRequest::new(method);
        let gpu = compare(&mut engine, &mut twin, &input, &request, "7-mnist-test-0");
        compare_curves(&model, &input, &gpu, &options);
        let f = gpu.faithfulness.as_ref().expect("curves");
        assert_eq!(f.deletion.len(), options.faithfulness_steps + 1);
        // Step 0 deletes nothing and the last step reveals everything: the input itself.
        let probability = {
            let logits = &gpu.logits;
            let max = logits.iter().cloned().fold(f32::MIN, f32::max);
            let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            (logits[gpu.class] - max).exp() / sum
        };
        assert!((f.deletion[0] - probability).abs() < 1e-5, "{method}");
        assert!(
            (f.insertion[options.faithfulness_steps] - probability).abs() < 1e-5,
            "{method}"
        );
    }
    // The same curves for a counterfactual of another class on a random input.
    let input = random_inputs(&model, 1, 9);
    let request = ExplainRequest {
        class: Some(4),
        counterfactual: true,
        ..ExplainRequest::new(Method::GuidedBackprop)
    };
    let gpu = compare(&mut engine, &mut twin, &input, &request, "random input");
    compare_curves(&model, &input, &gpu, &options);
}

#[test]
fn mistakes_are_errors_not_panics() {
    let model = committed_model();
    let Some((mut engine, _)) = engines(&model, &ExplainOptions::default()) else {
        return;
    };
    let input = mnist_test_input(&model, 1);
    let ask = |engine: &mut GpuExplainer, input: &[f32], request: ExplainRequest| {
        engine.explain(input, &request).unwrap_err()
    };
    let bad_class = ExplainRequest {
        class: Some(10),
        ..ExplainRequest::new(Method::GradCam)
    };
    assert!(matches!(
        ask(&mut engine, &input, bad_class),
        ExplainError::BadClass { class: 10, .. }
    ));
    let bad_block = ExplainRequest {
        block: Some(2),
        ..ExplainRequest::new(Method::ScoreCam)
    };
    assert!(matches!(
        ask(&mut engine, &input, bad_block),
        ExplainError::BadBlock { block: 2, .. }
    ));
    assert!(matches!(
        ask(
            &mut engine,
            &input[1..],
            ExplainRequest::new(Method::Saliency)
        ),
        ExplainError::InputLength { .. }
    ));
    // An answer after the errors is still right (nothing half-recorded stayed behind).
    let ok = engine
        .explain(&input, &ExplainRequest::new(Method::GradCam))
        .expect("explains");
    assert_eq!(ok.map.len(), 28 * 28);

    let gpu = gpu().expect("checked above");
    let bad = ExplainOptions {
        occlusion_stride: 5,
        occlusion_window: 4,
        ..ExplainOptions::default()
    };
    match GpuExplainer::new(&gpu.device, &gpu.queue, &model, bad) {
        Err(GpuError::BadExplainOption(message)) => {
            assert!(message.contains("occlusion_stride"), "{message}")
        }
        other => panic!("expected a bad option, got {:?}", other.err()),
    }

    // More noisy copies than the device holds at once: a clear error before any buffer.
    let huge = ExplainOptions {
        smoothgrad_samples: 10_000_000,
        ..ExplainOptions::default()
    };
    match GpuExplainer::new(&gpu.device, &gpu.queue, &model, huge) {
        Err(e @ GpuError::BatchTooLarge { .. }) => {
            assert!(e.to_string().contains("SmoothGrad"), "{e}")
        }
        other => panic!("expected a batch too large, got {:?}", other.err()),
    }

    // A model without conv blocks: the attribution methods run, the CAM family says why not.
    let dense_only = random_model(
        architecture(
            "dense only",
            28,
            28,
            10,
            vec![
                flatten("flatten"),
                dense("fc1", 784, 16),
                relu("relu1"),
                dense("fc2", 16, 10),
            ],
        ),
        3,
    );
    let options = ExplainOptions::default();
    let mut plain =
        GpuExplainer::new(&gpu.device, &gpu.queue, &dense_only, options.clone()).expect("builds");
    let mut twin = ReferenceExplainer::new(dense_only.clone(), options);
    let input = random_inputs(&dense_only, 1, 4);
    for method in Method::ALL {
        let request = ExplainRequest {
            faithfulness: false,
            ..ExplainRequest::new(method)
        };
        if method.uses_block() {
            assert!(matches!(
                plain.explain(&input, &request),
                Err(ExplainError::NoConvBlock { .. })
            ));
        } else {
            compare(&mut plain, &mut twin, &input, &request, "dense-only model");
        }
    }
}

#[test]
fn the_bench_section_times_every_method_with_and_without_curves() {
    let Some(context) = gpu() else { return };
    let model = committed_model();
    let gpu = cnnviz::bench::Gpu {
        adapter: &context.adapter,
        device: &context.device,
        queue: &context.queue,
    };
    let once = cnnviz::bench::Schedule {
        warmup: 0,
        runs: 1,
        min_runs: 1,
        budget: std::time::Duration::ZERO,
    };
    let mut lines = Vec::new();
    let report = cnnviz::bench::explain::measure_explain(
        &gpu,
        &model,
        &cnnviz::bench::synthetic_digit(&model),
        &once,
        &mut |line: &str| lines.push(line.to_string()),
    )
    .expect("the section runs");
    assert_eq!(report.methods.len(), 2 * Method::ALL.len());
    assert_eq!(report.adapter, context.info.name);
    assert!(report.network_batch >= 169, "{}", report.network_batch);
    for (timing, method) in report.methods.iter().zip(
        Method::ALL
            .iter()
            .flat_map(|m| [(m.name(), false), (m.name(), true)]),
    ) {
        assert_eq!((timing.method, timing.faithfulness), method);
        assert!(timing.median_ms > 0.0 && timing.p99_ms >= timing.median_ms);
    }
    let mut text = String::new();
    report.write_text(&mut text).expect("text");
    for method in Method::ALL {
        assert!(text.contains(method.name()), "{text}");
    }
    let json = serde_json::to_value(&report).expect("serialises");
    assert_eq!(json["methods"][0]["method"], "gradcam");
    assert!(json["methods"][1]["median_ms"].as_f64().is_some());
    assert_eq!(lines.len(), 2 * Method::ALL.len());
}

#[test]
fn a_non_square_input_matches_the_twin_with_its_curves() {
    // A 3×12×10 input, blocks of 12×10 and 6×5, 5 classes: every index the kernels derive
    // (pixel of an element, patch, mask, nearest and bilinear sources) off the square, and
    // a normalisation per channel (so each channel's blank canvas differs in the curves).
    let mut arch = architecture(
        "non-square",
        12,
        10,
        5,
        vec![
            conv("conv1", 3, 4, 3, 1, 1),
            relu("relu1"),
            pool("pool1", 2, 2),
            conv("conv2", 4, 6, 3, 1, 1),
            relu("relu2"),
            flatten("flatten"),
            dense("fc", 6 * 6 * 5, 5),
        ],
    );
    arch.input.channels = 3;
    arch.normalization = Normalization {
        mean: ChannelValues::Each(vec![0.1, 0.5, 0.9]),
        std: ChannelValues::Each(vec![0.3, 0.25, 0.2]),
    };
    let model = random_model(arch, 21);
    let options = ExplainOptions {
        ig_steps: 4,
        smoothgrad_samples: 3,
        occlusion_window: 3,
        occlusion_stride: 2,
        faithfulness_steps: 7,
        ..ExplainOptions::default()
    };
    let Some((mut engine, mut twin)) = engines(&model, &options) else {
        return;
    };
    let input = random_inputs(&model, 1, 8);
    for method in Method::ALL {
        for (block, counterfactual) in [(Some(0), false), (None, true)] {
            let request = ExplainRequest {
                block,
                counterfactual,
                ..ExplainRequest::new(method)
            };
            let gpu = compare(&mut engine, &mut twin, &input, &request, "non-square input");
            compare_curves(&model, &input, &gpu, &options);
        }
    }
}

/// Every method on models with the layers of imported networks: batch norm, leaky ReLU,
/// tanh, dropout, average and global average pooling, asymmetric conv padding
/// (the backward passes run through each; guided backpropagation changes only ReLUs,
/// as in Captum), on a grey non-square input and on a 3-channel one.
#[test]
fn models_with_the_new_layer_types_match_the_twin_in_every_method() {
    use cnnviz::model::builders::{
        avgpool, batch_norm, dropout, global_avg_pool, leaky_relu, tanh,
    };
    let mut first = conv("conv1", 1, 4, 3, 1, 0);
    if let cnnviz::model::LayerSpec::Conv2d { padding_end, .. } = &mut first {
        *padding_end = Some(1);
    }
    let grey = random_model(
        architecture(
            "new layers",
            12,
            10,
            5,
            vec![
                first,
                batch_norm("bn1", 4),
                leaky_relu("leaky1", 0.1),
                avgpool("avg1", 3, 2, 1),
                conv("conv2", 4, 6, 3, 1, 1),
                relu("relu2"),
                tanh("tanh2"),
                dropout("drop2", 0.2),
                global_avg_pool("gap"),
                flatten("flatten"),
                dense("fc1", 6, 8),
                batch_norm("bn3", 8),
                // A sigmoid here squashes the occlusion differences into f32 rounding of
                // the logits; sigmoid is checked in tests/gpu_new_layers.rs.
                leaky_relu("leaky3", 0.2),
                dense("fc2", 8, 5),
            ],
        ),
        31,
    );
    let mut colour_architecture = architecture(
        "colour",
        16,
        16,
        4,
        vec![
            conv("conv1", 3, 5, 3, 1, 1),
            batch_norm("bn1", 5),
            relu("relu1"),
            avgpool("avg1", 2, 2, 0),
            conv("conv2", 5, 6, 3, 1, 1),
            relu("relu2"),
            flatten("flatten"),
            dense("fc", 6 * 8 * 8, 4),
        ],
    );
    colour_architecture.input.channels = 3;
    let colour = random_model(colour_architecture, 32);
    let options = ExplainOptions {
        ig_steps: 4,
        smoothgrad_samples: 3,
        occlusion_window: 3,
        occlusion_stride: 2,
        faithfulness_steps: 7,
        ..ExplainOptions::default()
    };
    for model in [grey, colour] {
        let Some((mut engine, mut twin)) = engines(&model, &options) else {
            return;
        };
        let input = random_inputs(&model, 1, 9);
        let what = model.architecture.name.clone();
        for method in Method::ALL {
            for (block, counterfactual) in [(Some(0), false), (Some(1), true)] {
                let request = ExplainRequest {
                    block,
                    counterfactual,
                    ..ExplainRequest::new(method)
                };
                let gpu = compare(&mut engine, &mut twin, &input, &request, &what);
                compare_curves(&model, &input, &gpu, &options);
            }
        }
    }
}

#[test]
fn intermediate_tensors_match_the_twin() {
    use cnnviz::explain::reference::attribution::{gradient_at, smoothgrad_noise};
    use cnnviz::explain::reference::backward::{ReluRule, gradients};
    use cnnviz::explain::reference::cam::score_cam_masks;
    use cnnviz::explain::reference::quadrature::integrated_gradients_path;
    use cnnviz::explain::reference::score_cam_scores;
    use cnnviz::model::reference::forward_f64;

    let model = random_model(default_architecture(), 13);
    let options = ExplainOptions {
        ig_steps: 6,
        smoothgrad_samples: 3,
        ..ExplainOptions::default()
    };
    let Some((mut engine, _)) = engines(&model, &options) else {
        return;
    };
    let input = random_inputs(&model, 1, 17);
    let x = to_f64(&input);
    let (class, sign) = (2, -1.0);
    let request = |method, block| ExplainRequest {
        method,
        class: Some(class),
        counterfactual: true,
        block,
        faithfulness: false,
    };
    let read = |engine: &GpuExplainer, gradients: bool, activation: usize, images: u32| {
        engine
            .read_arena(gradients, activation, images)
            .expect("reads back")
    };

    // IG: every point of the path and the gradient there.
    engine
        .explain(&input, &request(Method::IntegratedGradients, None))
        .expect("explains");
    let (alphas, _) = integrated_gradients_path(options.ig_steps);
    let points = read(&engine, false, 0, 6);
    let grads = read(&engine, true, 0, 6);
    for (n, alpha) in alphas.iter().enumerate() {
        let scaled: Vec<f64> = x.iter().map(|v| alpha * v).collect();
        assert_close(&format!("IG point {n}"), &points[n], &scaled);
        let twin = gradient_at(&model, &scaled, class, sign, ReluRule::Plain);
        assert_close(&format!("IG gradient {n}"), &grads[n], &twin);
    }

    // SmoothGrad: every noisy copy and its gradient.
    engine
        .explain(&input, &request(Method::SmoothGrad, None))
        .expect("explains");
    let noise = smoothgrad_noise(
        options.seed,
        3,
        x.len(),
        f64::from(options.smoothgrad_stdev),
    );
    let copies = read(&engine, false, 0, 3);
    let grads = read(&engine, true, 0, 3);
    for (n, noise) in noise.chunks(x.len()).enumerate() {
        let noisy: Vec<f64> = x.iter().zip(noise).map(|(x, e)| x + e).collect();
        assert_close(&format!("SmoothGrad copy {n}"), &copies[n], &noisy);
        let twin = gradient_at(&model, &noisy, class, sign, ReluRule::Plain);
        assert_close(&format!("SmoothGrad gradient {n}"), &grads[n], &twin);
    }

    // Grad-CAM at each block: the block's activations A and the gradient G there; then the
    // guided gradient at the input.
    let activations = forward_f64(&model, x.clone());
    for (b, block) in model.conv_blocks().iter().enumerate() {
        engine
            .explain(&input, &request(Method::GradCam, Some(b)))
            .expect("explains");
        let target = block.output_layer + 1;
        let twin_g = gradients(&model, &activations, class, sign, ReluRule::Plain, target)
            .swap_remove(target)
            .expect("down to the block");
        assert_close(
            &format!("A at block {b}"),
            &read(&engine, false, target, 1)[0],
            &activations[target],
        );
        assert_close(
            &format!("G at block {b}"),
            &read(&engine, true, target, 1)[0],
            &twin_g,
        );
    }
    engine
        .explain(&input, &request(Method::GuidedBackprop, None))
        .expect("explains");
    assert_close(
        "guided gradient",
        &read(&engine, true, 0, 1)[0],
        &gradient_at(&model, &x, class, sign, ReluRule::Guided),
    );

    // Score-CAM at block 0: every masked input and its score.
    let block = &model.conv_blocks()[0];
    engine
        .explain(&input, &request(Method::ScoreCam, Some(0)))
        .expect("explains");
    let masks = score_cam_masks(
        &activations[block.output_layer + 1],
        block.height,
        block.width,
        28,
        28,
    );
    let masked = read(&engine, false, 0, block.channels as u32);
    for (k, mask) in masks.iter().enumerate() {
        let twin: Vec<f64> = x.iter().zip(mask).map(|(x, m)| x * m).collect();
        assert_close(&format!("Score-CAM input {k}"), &masked[k], &twin);
    }
    let logits = read(&engine, false, model.layers.len(), block.channels as u32);
    let scores: Vec<f32> = logits.iter().map(|l| sign as f32 * l[class]).collect();
    assert_close(
        "Score-CAM scores",
        &scores,
        &score_cam_scores(&model, &x, &masks, class, sign),
    );
}

#[test]
fn eigencam_on_a_block_past_llvmpipes_loop_limit_is_refused_there() {
    let Some(context) = gpu() else { return };
    // A 256×256 block: 65 536 pixels, one more than llvmpipe lets a loop run.
    let model = random_model(
        architecture(
            "large block",
            256,
            256,
            2,
            vec![
                conv("conv", 1, 1, 3, 1, 1),
                relu("relu"),
                flatten("flatten"),
                dense("fc", 256 * 256, 2),
            ],
        ),
        5,
    );
    let options = ExplainOptions {
        ig_steps: 1,
        smoothgrad_samples: 1,
        occlusion_window: 256,
        occlusion_stride: 256,
        faithfulness_steps: 1,
        ..ExplainOptions::default()
    };
    let mut engine = GpuExplainer::new(&context.device, &context.queue, &model, options)
        .expect("the explainer builds");
    let input = random_inputs(&model, 1, 2);
    let request = ExplainRequest {
        faithfulness: false,
        ..ExplainRequest::new(Method::EigenCam)
    };
    let answer = engine.explain(&input, &request);
    if context.info.name.contains("llvmpipe") || context.info.driver.contains("llvmpipe") {
        match answer {
            Err(ExplainError::Gpu(GpuError::ModelTooLarge(why))) => {
                assert!(why.contains("EigenCAM") && why.contains("65536"), "{why}")
            }
            other => panic!("expected EigenCAM to be refused, got {other:?}"),
        }
    } else {
        assert_eq!(answer.expect("runs on a real GPU").map.len(), 256 * 256);
    }
    // Grad-CAM on the same block stays inside the limit and runs.
    let grad_cam = ExplainRequest {
        method: Method::GradCam,
        ..request
    };
    let explained = engine.explain(&input, &grad_cam).expect("Grad-CAM runs");
    assert_eq!(explained.raw.len(), 256 * 256);
}
