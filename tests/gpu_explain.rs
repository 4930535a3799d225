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
use cnnviz::explain::reference::{ReferenceExplainer, blank_value};
use cnnviz::explain::{
    ExplainError, ExplainOptions, ExplainRequest, Explained, Explainer, Family, Method,
};
use cnnviz::gpu::GpuError;
use cnnviz::gpu::explain::GpuExplainer;
use cnnviz::model::builders::default_architecture;
use cnnviz::model::{Model, load_model};

use common::{architecture, assert_close, dense, flatten, gpu, random_inputs, random_model, relu};

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
        blank_value(model),
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
