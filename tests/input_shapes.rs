//! Models whose input is not MNIST's 1×28×28 in the window and in `cnnviz predict`: a
//! 3×32×32 colour model and a non-square grey 1×20×36 one. The window runs, its input is
//! the prepared drawing (grey replicated into R, G and B for the colour model), its
//! prediction is the CPU twin's on that input, the scene draws every layer, and the panels
//! have the model's sizes.

mod common;

use std::path::Path;

use cnnviz::app::HeadlessViewer;
use cnnviz::data::model_input::{input_from_image, input_from_ink};
use cnnviz::data::preprocess::load_image;
use cnnviz::model::spec::{InputSpec, Normalization};
use cnnviz::model::{LayerOp, LayerParams, LayerSpec, Model, Shape, reference};
use common::viewer::{put_sample_on_canvas, run_until_rest, viewer_gpu};
use common::{architecture, conv, dense, flatten, pool, random_model, relu};

/// conv → relu → pool → conv → relu → pool → dense for `channels × height × width`.
fn small_cnn(name: &str, channels: usize, height: usize, width: usize) -> Model {
    let features = 8 * (height / 4) * (width / 4);
    let mut arch = architecture(
        name,
        height,
        width,
        10,
        vec![
            conv("conv1", channels, 6, 3, 1, 1),
            relu("relu1"),
            pool("pool1", 2, 2),
            conv("conv2", 6, 8, 3, 1, 1),
            relu("relu2"),
            pool("pool2", 2, 2),
            flatten("flatten"),
            dense("fc", features, 10),
        ],
    );
    arch.input = InputSpec {
        channels,
        height,
        width,
    };
    if channels == 3 {
        arch.normalization = Normalization {
            mean: cnnviz::model::spec::ChannelValues::Each(vec![0.49, 0.48, 0.45]),
            std: cnnviz::model::spec::ChannelValues::Each(vec![0.25, 0.24, 0.26]),
        };
    }
    random_model(arch, 17)
}

fn colour_model() -> Model {
    small_cnn("colour-32", 3, 32, 32)
}

fn wide_grey_model() -> Model {
    small_cnn("grey-20x36", 1, 20, 36)
}

const SIZE: [u32; 2] = [1280, 800];

fn window(model: Model) -> Option<HeadlessViewer> {
    common::viewer::quiet_viewer_of(model, SIZE)
}

/// Softmax of the CPU twin's logits for `pixels` (0..1, before normalisation).
fn cpu_probabilities(model: &Model, pixels: &[f32]) -> Vec<f32> {
    let activations = reference::forward(model, &model.normalize(pixels));
    reference::softmax(activations.last().expect("logits"))
        .into_iter()
        .map(|p| p as f32)
        .collect()
}

fn check_window(model: Model, shot: &str) {
    let Some(mut headless) = window(model.clone()) else {
        return;
    };
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    run_until_rest(&mut headless);
    let arch = &model.architecture;
    let InputSpec {
        channels,
        height,
        width,
    } = arch.input;
    let viewer = headless.viewer();

    // The input: the prepared drawing, grey in every channel.
    let ink = viewer.overlay().canvas().ink();
    let expected =
        input_from_ink(&ink, arch.input, arch.preprocessing()).expect("the sample has ink");
    let input = viewer.model_input().expect("an input");
    assert_eq!(input, expected.as_slice());
    assert_eq!(input.len(), channels * height * width);
    let plane = height * width;
    for c in 1..channels {
        assert_eq!(
            input[c * plane..(c + 1) * plane],
            input[..plane],
            "channel {c}"
        );
    }
    assert!(
        input.iter().any(|&v| v > 0.5),
        "the drawing reached the input"
    );
    if channels == 3 {
        assert!(viewer.input_note().contains("grey in R, G and B"));
    }

    // The prediction: the CPU twin's on the same input.
    let (shown, predicted) = viewer.prediction().expect("a prediction");
    let cpu = cpu_probabilities(&model, input);
    for (class, (a, b)) in shown.iter().zip(&cpu).enumerate() {
        assert!((a - b).abs() < 1e-3, "class {class}: window {a}, CPU {b}");
    }
    let cpu_best = cpu
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i);
    assert_eq!(Some(predicted), cpu_best);

    // The scene: a board for every activation but the flatten output, whole.
    let layout = viewer.scene_layout().expect("a scene");
    let shapes = model.activation_shapes();
    for (j, shape) in shapes.iter().enumerate() {
        let is_flatten = j > 0 && model.layers[j - 1].plan.op == LayerOp::Flatten;
        let placement = layout.placement(j).expect("every activation has cubes");
        if is_flatten {
            continue;
        }
        assert_eq!(placement.shape, *shape, "activation {j}");
        assert_eq!(placement.len, shape.len(), "activation {j} is drawn whole");
        assert!(
            placement.label.contains(&shape.to_string()),
            "{}",
            placement.label
        );
        assert!(viewer.cube_on_screen(j, 0).is_some());
    }
    let drawn: usize = layout.layers.iter().map(|l| l.len).sum();
    assert_eq!(layout.instance_count() as usize, drawn);

    // The panels: input and Grad-CAM at H×W, one atlas per conv block at its shape.
    let images = viewer.feature_map_images().expect("GPU images");
    assert_eq!([images.input.width, images.input.height], [width, height]);
    assert_eq!(
        [images.grad_cam.width, images.grad_cam.height],
        [width, height]
    );
    let blocks = model.conv_blocks();
    assert_eq!(images.blocks.len(), blocks.len());
    for (atlas, block) in images.blocks.iter().zip(&blocks) {
        assert_eq!(
            (atlas.channels, atlas.height, atlas.width),
            (block.channels, block.height, block.width)
        );
    }

    let picture = headless.screenshot().expect("a picture");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-shots");
    std::fs::create_dir_all(&dir).expect("shot folder");
    picture.save(dir.join(shot)).expect("shot saved");
}

#[test]
fn a_colour_32x32_model_runs_in_the_window() {
    check_window(colour_model(), "input-shapes-colour-32.png");
}

#[test]
fn a_non_square_grey_model_runs_in_the_window() {
    check_window(wide_grey_model(), "input-shapes-grey-20x36.png");
}

/// `cnnviz predict --json` on a colour picture for the colour model: the input is the
/// picture resized in colour, and the probabilities are the CPU twin's on it.
#[test]
fn predict_keeps_a_colour_picture_in_colour_for_a_colour_model() {
    if !common::gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let model = colour_model();
    let model_path = dir.path().join("colour.safetensors");
    cnnviz::model::save_model(&model, &model_path).expect("model saves");
    // A 64×64 picture: red left half, blue right half, a green square in the middle.
    let picture = image::RgbImage::from_fn(64, 64, |x, y| {
        if (24..40).contains(&x) && (24..40).contains(&y) {
            image::Rgb([0, 200, 0])
        } else if x < 32 {
            image::Rgb([220, 10, 10])
        } else {
            image::Rgb([10, 10, 220])
        }
    });
    let picture_path = dir.path().join("colours.png");
    picture.save(&picture_path).expect("picture saves");

    let output = common::cnnviz(&[
        "predict",
        "--json",
        "--model",
        model_path.to_str().expect("utf-8"),
        picture_path.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "predict failed: {stderr}");
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");

    let arch = &model.architecture;
    let image = load_image(&picture_path).expect("loads");
    let expected = input_from_image(&image, arch.input, arch.preprocessing()).expect("input");
    // Colour kept: the red plane is bright on the left, the blue plane on the right.
    let plane = 32 * 32;
    assert!(expected[5 * 32 + 2] > 0.8 && expected[2 * plane + 5 * 32 + 2] < 0.1);
    assert!(expected[2 * plane + 5 * 32 + 29] > 0.8);
    let json_input: Vec<f32> = line["input"]
        .as_array()
        .expect("channels")
        .iter()
        .flat_map(|plane| plane.as_array().expect("rows").iter())
        .flat_map(|row| row.as_array().expect("row").iter())
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    assert_eq!(json_input, expected);
    let probabilities: Vec<f32> = line["probabilities"]
        .as_array()
        .expect("probabilities")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    let cpu = cpu_probabilities(&model, &expected);
    for (class, (a, b)) in probabilities.iter().zip(&cpu).enumerate() {
        assert!((a - b).abs() < 1e-3, "class {class}: predict {a}, CPU {b}");
    }
}

/// A wide model shows every layer without its boards' cube counts passing the caps.
#[test]
fn the_scene_of_a_224x224_colour_model_stays_within_its_cube_budget() {
    use cnnviz::scene::SceneLayout;
    let model = {
        let mut arch = architecture(
            "wide-224",
            224,
            224,
            10,
            vec![
                conv("conv1", 3, 32, 3, 1, 1),
                relu("relu1"),
                pool("pool1", 2, 2),
                flatten("flatten"),
                dense("fc", 32 * 112 * 112, 10),
            ],
        );
        arch.input.channels = 3;
        Model::filled(arch, || 0.01).expect("a valid model")
    };
    let arena = cnnviz::gpu::ArenaLayout::new(&model, 1);
    let layout = SceneLayout::new(&model, &arena);
    let shapes = model.activation_shapes();
    assert_eq!(
        layout.layers.len(),
        shapes.len() - 1,
        "all but flatten drawn"
    );
    for placement in &layout.layers {
        assert!(
            placement.len <= cnnviz::scene::MAX_CUBES_PER_LAYER,
            "{}: {} cubes",
            placement.label,
            placement.len
        );
        if let Shape::Map {
            channels,
            height,
            width,
        } = placement.shape
        {
            assert_eq!(placement.len, placement.channels * height * width);
            if placement.channels < channels {
                assert!(
                    placement
                        .label
                        .contains(&format!("first {} channels drawn", placement.channels)),
                    "{}",
                    placement.label
                );
            }
        }
    }
    // The input is drawn whole in all three channels; conv1 (32×224×224) is not.
    assert_eq!(layout.layers[0].channels, 3);
    let conv1 = layout.placement(1).expect("conv1 drawn");
    assert!(conv1.channels < 32 && conv1.channels >= 1);
    assert!(layout.instance_count() as usize <= cnnviz::scene::MAX_CUBES);
}

/// The failure view of a model that does not take MNIST's digits says why it is empty
/// instead of failing, and the window goes on.
#[test]
fn the_failure_view_of_a_non_mnist_shaped_model_says_why_it_is_unavailable() {
    let Some(mut headless) = window(wide_grey_model()) else {
        return;
    };
    headless
        .viewer_mut()
        .send(&[cnnviz::ui::OverlayEvent::SetFailureView(true)]);
    let why = common::viewer::frames_until(
        &mut headless,
        "the survey's refusal",
        std::time::Duration::from_secs(120),
        |h| h.viewer().survey_error(),
    );
    assert!(
        why.contains("1×20×36") && why.contains("only available"),
        "{why}"
    );
    put_sample_on_canvas(&mut headless, "3-mnist-test-18.png");
    run_until_rest(&mut headless);
    assert!(headless.viewer().prediction().is_some());
}

/// The committed digit model made 3-channel: conv1's kernels split into thirds over R, G
/// and B, so on a grey digit fed into every channel it computes what the grey model does.
fn committed_model_in_colour() -> Model {
    let grey = common::viewer::model();
    let mut arch = grey.architecture.clone();
    arch.input.channels = 3;
    if let Some(LayerSpec::Conv2d { in_channels, .. }) = arch.layers.first_mut() {
        *in_channels = 3;
    }
    let mut params: Vec<LayerParams> = grey
        .layers
        .iter()
        .filter_map(|l| l.params.clone())
        .collect();
    let conv1 = &mut params[0];
    let per_kernel = 9;
    conv1.weight = conv1
        .weight
        .chunks(per_kernel)
        .flat_map(|kernel| {
            let third: Vec<f32> = kernel.iter().map(|w| w / 3.0).collect();
            [third.clone(), third.clone(), third].concat()
        })
        .collect();
    Model::from_parts(arch, params).expect("a valid 3-channel model")
}

#[test]
fn eval_and_the_survey_feed_a_colour_model_of_mnists_size_the_digits_in_r_g_and_b() {
    let Some(gpu) = common::gpu() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let colour = committed_model_in_colour();
    let path = dir.path().join("colour-28.safetensors");
    cnnviz::model::save_model(&colour, &path).expect("saves");
    let eval = |model: &str| -> serde_json::Value {
        let output = common::cnnviz(&["eval", "--json", "--model", model]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("eval prints JSON")
    };
    let grey = eval("weights/mnist-cnn.safetensors");
    let in_colour = eval(path.to_str().expect("utf-8"));
    let correct = |v: &serde_json::Value| v["correct"].as_i64().expect("correct");
    // The same network up to f32 rounding in conv1's sums: at most a few digits differ.
    assert!(
        (correct(&grey) - correct(&in_colour)).abs() <= 3,
        "grey {} vs colour {}",
        correct(&grey),
        correct(&in_colour)
    );
    assert!(correct(&in_colour) > 9000);

    let data =
        cnnviz::data::load_mnist(&cnnviz::data::default_data_dir(), cnnviz::data::Split::Test)
            .expect("MNIST test set");
    let (survey, _) = cnnviz::survey::Survey::load_or_compute(
        &gpu.device,
        &gpu.queue,
        &colour,
        &data,
        None,
        |_| true,
    )
    .expect("the survey runs on a 3×28×28 model");
    let confusion: Vec<Vec<usize>> =
        serde_json::from_value(in_colour["confusion"].clone()).expect("a confusion matrix");
    assert_eq!(survey.confusion(), confusion);
}

/// A colour model with every new layer type in the window: the scene labels each layer,
/// the prediction is the CPU twin's, and each new layer's inspector view gives the value
/// the GPU wrote. Until the new layers' GPU kernels are merged the network refuses the
/// model with "has no GPU kernel yet", and only that refusal is accepted.
#[test]
fn a_model_with_every_new_layer_runs_in_the_window_and_its_units_explain_the_arena() {
    use cnnviz::model::builders::{
        avgpool, batch_norm, dropout, global_avg_pool, leaky_relu, sigmoid, tanh,
    };
    let mut arch = architecture(
        "new-layers",
        24,
        20,
        5,
        vec![
            conv("conv1", 3, 6, 3, 1, 1),
            batch_norm("bn1", 6),
            leaky_relu("act1", 0.1),
            avgpool("avg1", 3, 2, 1),
            conv("conv2", 6, 8, 3, 1, 1),
            batch_norm("bn2", 8),
            sigmoid("sig2"),
            dropout("drop2", 0.25),
            tanh("tanh2"),
            global_avg_pool("gap"),
            flatten("flatten"),
            dense("fc", 8, 5),
        ],
    );
    arch.input.channels = 3;
    let model = random_model(arch, 29);
    let Some(gpu) = viewer_gpu() else {
        return;
    };
    let options = cnnviz::app::ViewerOptions {
        store: cnnviz::app::StoreChoice::None,
        ..cnnviz::app::ViewerOptions::default()
    };
    let mut headless = match HeadlessViewer::with_gpu(model.clone(), options, gpu, SIZE, 1.0) {
        Ok(headless) => headless,
        Err(e) if format!("{e:#}").contains("has no GPU kernel yet") => {
            eprintln!("note: the new layers' GPU kernels are not in this build: {e:#}");
            return;
        }
        Err(e) => panic!("viewer: {e:#}"),
    };
    headless.viewer_mut().set_animation(false);
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    run_until_rest(&mut headless);

    let input = headless.viewer().model_input().expect("an input").to_vec();
    let (shown, _) = headless.viewer().prediction().expect("a prediction");
    let cpu = cpu_probabilities(&model, &input);
    for (class, (a, b)) in shown.iter().zip(&cpu).enumerate() {
        assert!((a - b).abs() < 1e-3, "class {class}: window {a}, CPU {b}");
    }
    let labels: Vec<String> = headless
        .viewer()
        .scene_layout()
        .expect("a scene")
        .layers
        .iter()
        .map(|l| l.label.clone())
        .collect();
    for tag in [
        "(batch norm)",
        "(leaky relu)",
        "(avg pool)",
        "(dropout)",
        "gap 8×1×1",
    ] {
        assert!(
            labels.iter().any(|l| l.contains(tag)),
            "{tag} in {labels:?}"
        );
    }
    // bn1, act1, avg1 (a padded corner and an inner window), sig2, tanh2, gap.
    for (activation, element) in [
        (2, 100),
        (3, 37),
        (4, 0),
        (4, 23),
        (7, 11),
        (9, 50),
        (10, 3),
    ] {
        assert!(headless.viewer_mut().inspect_unit(activation, element));
        run_until_rest(&mut headless);
        let arena = headless.viewer().scene_activations().expect("arena");
        let (pick, arithmetic) = headless.viewer().inspected().expect("inspected");
        assert_eq!((pick.activation, pick.element_index), (activation, element));
        let shown = arithmetic.value().expect("a computed unit");
        let value = arena[activation][element];
        assert!(
            (shown - f64::from(value)).abs() < 1e-4 * (1.0 + f64::from(value.abs())),
            "activation {activation} element {element}: inspector {shown}, arena {value}"
        );
    }
}
