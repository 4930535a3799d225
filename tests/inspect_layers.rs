//! The unit inspector on the layers beyond conv / relu / max pool / dense: every unit of
//! every activation of a model with batch norm, leaky ReLU, sigmoid, tanh, dropout,
//! average pooling (with padding, counted and not) and global average pooling explains
//! the CPU twin's value from the CPU twin's source values. No GPU: `unit_arithmetic` takes
//! the source activation as input.

mod common;

use cnnviz::inspect::{Elementwise, UnitArithmetic, source_activation, unit_arithmetic};
use cnnviz::model::builders::{
    avgpool, batch_norm, dropout, global_avg_pool, leaky_relu, sigmoid, tanh,
};
use cnnviz::model::{LayerSpec, Model, reference};
use common::{Rng, architecture, conv, dense, flatten, random_model, relu};

fn model_with_every_layer(count_include_pad: bool) -> Model {
    let mut pool = avgpool("avg1", 3, 2, 1);
    if let LayerSpec::AvgPool2d {
        count_include_pad: c,
        ..
    } = &mut pool
    {
        *c = count_include_pad;
    }
    let mut arch = architecture(
        "every-layer",
        11,
        9,
        3,
        vec![
            conv("conv1", 3, 4, 3, 1, 1),
            batch_norm("bn1", 4),
            leaky_relu("lrelu1", 0.1),
            pool,
            conv("conv2", 4, 5, 3, 1, 1),
            batch_norm("bn2", 5),
            sigmoid("sig2"),
            dropout("drop2", 0.3),
            tanh("tanh2"),
            relu("relu2"),
            global_avg_pool("gap"),
            flatten("flatten"),
            dense("fc", 5, 3),
        ],
    );
    arch.input.channels = 3;
    random_model(arch, 23)
}

/// Which views were seen: elementwise (by kind), avg pool, GAP.
#[derive(Default, Debug)]
struct Seen {
    batch_norm: usize,
    leaky_relu: usize,
    sigmoid: usize,
    tanh: usize,
    dropout: usize,
    avg_pool: usize,
    gap: usize,
}

fn check(model: &Model, seed: u64) -> Seen {
    let input = Rng::new(seed).vec(model.input_len(), 2.0);
    let activations = reference::forward(model, &input);
    let as_f32 = |v: &Vec<f64>| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let mut seen = Seen::default();
    for (activation, values) in activations.iter().enumerate() {
        let source = source_activation(model, activation).map(|s| as_f32(&activations[s]));
        for (element, &cpu) in values.iter().enumerate() {
            let unit =
                unit_arithmetic(model, activation, element, source.as_deref().unwrap_or(&[]))
                    .unwrap_or_else(|e| panic!("activation {activation} element {element}: {e}"));
            let Some(value) = unit.value() else {
                assert_eq!(activation, 0);
                continue;
            };
            // The twin's source values went through f32 here, so 1e-5 of the scale.
            let scale = cpu.abs().max(1.0);
            assert!(
                (value - cpu).abs() <= 1e-5 * scale,
                "activation {activation} element {element}: inspector {value}, CPU twin {cpu}"
            );
            match &unit {
                UnitArithmetic::Elementwise(e) => {
                    assert_eq!(e.source, element);
                    assert!(!e.function.formula().is_empty());
                    match e.function {
                        Elementwise::BatchNorm { channel, .. } => {
                            let (_, h, w) = model.layers[e.layer].plan.input.chw();
                            assert_eq!(channel, element / (h * w));
                            seen.batch_norm += 1;
                        }
                        Elementwise::LeakyRelu { .. } => seen.leaky_relu += 1,
                        Elementwise::Sigmoid => seen.sigmoid += 1,
                        Elementwise::Tanh => seen.tanh += 1,
                        Elementwise::Dropout => seen.dropout += 1,
                    }
                }
                UnitArithmetic::AvgPool(window) => {
                    let sum: f64 = window.elements.iter().map(|e| f64::from(e.1)).sum();
                    assert_eq!(sum, window.sum, "the sum is the sum of the shown values");
                    assert_eq!(window.value, window.sum / window.divisor);
                    assert_eq!(window.elements.len(), window.rows.len() * window.cols.len());
                    seen.avg_pool += 1;
                }
                UnitArithmetic::GlobalAvgPool(mean) => {
                    assert_eq!(mean.channel, element);
                    assert_eq!(mean.source.len(), mean.height * mean.width);
                    seen.gap += 1;
                }
                _ => {}
            }
        }
    }
    seen
}

#[test]
fn every_new_layer_explains_the_cpu_twins_value() {
    for count_include_pad in [true, false] {
        let model = model_with_every_layer(count_include_pad);
        let seen = check(&model, 5);
        let shapes = model.activation_shapes();
        // bn1 (4×11×9) + bn2 (5×6×5); each element-wise layer's whole output.
        assert_eq!(
            seen.batch_norm,
            shapes[2].len() + shapes[6].len(),
            "{seen:?}"
        );
        assert_eq!(seen.leaky_relu, shapes[3].len());
        assert_eq!(seen.sigmoid, shapes[7].len());
        assert_eq!(seen.dropout, shapes[8].len());
        assert_eq!(seen.tanh, shapes[9].len());
        assert_eq!(seen.avg_pool, shapes[4].len());
        // The 5 means, and the flatten after them shows the same 5.
        assert_eq!(seen.gap, 2 * 5);
    }
}

#[test]
fn an_edge_window_of_a_padded_average_pool_shows_its_divisor() {
    for (count_include_pad, divisor) in [(true, 9.0), (false, 4.0)] {
        let model = model_with_every_layer(count_include_pad);
        let input = Rng::new(9).vec(model.input_len(), 1.0);
        let activations = reference::forward(&model, &input);
        let source: Vec<f32> = activations[3].iter().map(|&v| v as f32).collect();
        // Output (0, 0) of the 3×3 / stride 2 / padding 1 pool: a 2×2 corner of real pixels.
        let UnitArithmetic::AvgPool(window) =
            unit_arithmetic(&model, 4, 0, &source).expect("a view")
        else {
            panic!("an average pool's unit is its window");
        };
        assert_eq!((window.rows.clone(), window.cols.clone()), (0..2, 0..2));
        assert_eq!(window.divisor, divisor);
    }
}

#[test]
fn a_batch_norm_unit_shows_its_channels_statistics() {
    let model = model_with_every_layer(true);
    let input = Rng::new(3).vec(model.input_len(), 1.0);
    let activations = reference::forward(&model, &input);
    let source: Vec<f32> = activations[1].iter().map(|&v| v as f32).collect();
    let plane = 11 * 9;
    let element = 2 * plane + 7;
    let UnitArithmetic::Elementwise(unit) =
        unit_arithmetic(&model, 2, element, &source).expect("a view")
    else {
        panic!("a batch-norm unit is element-wise");
    };
    let params = model.layers[1].params.as_ref().expect("bn parameters");
    let running = params.running.as_ref().expect("running statistics");
    let Elementwise::BatchNorm {
        channel,
        mean,
        var,
        gamma,
        beta,
        ..
    } = unit.function
    else {
        panic!("batch norm");
    };
    assert_eq!(channel, 2);
    assert_eq!(
        (mean, var, gamma, beta),
        (
            running.mean[2],
            running.var[2],
            params.weight[2],
            params.bias[2]
        )
    );
    assert_eq!(unit.input, source[element]);
    let formula = unit.function.formula();
    assert!(
        formula.contains("channel 2") && formula.contains("γ"),
        "{formula}"
    );
}

/// The inspector panel shows each new view's numbers: the formula and x → y of an
/// element-wise unit, the sum, divisor and mean of an average-pool window, the plane
/// mean of global average pooling.
#[test]
fn the_inspector_panel_shows_each_new_view() {
    use cnnviz::ui::inspector_panel::{self, InspectorView};
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    let model = model_with_every_layer(false);
    let input = Rng::new(4).vec(model.input_len(), 1.0);
    let activations = reference::forward(&model, &input);
    // bn1, lrelu1, avg1 (its corner), gap.
    for (activation, element) in [(2, 40), (3, 7), (4, 0), (11, 3)] {
        let source = source_activation(&model, activation).expect("a source");
        let values: Vec<f32> = activations[source].iter().map(|&v| v as f32).collect();
        let unit = unit_arithmetic(&model, activation, element, &values).expect("a view");
        let mut expected = vec![format!("{:+.5}", unit.value().expect("a value"))];
        match &unit {
            UnitArithmetic::Elementwise(e) => {
                expected.push(e.function.formula());
                expected.push(format!("{:+.5}", e.input));
            }
            UnitArithmetic::AvgPool(w) => {
                expected.push(format!("{:+.5}", w.sum));
                expected.push(format!("{}", w.divisor));
            }
            UnitArithmetic::GlobalAvgPool(m) => expected.push(format!("{:+.5}", m.sum)),
            other => panic!("activation {activation}: {other:?}"),
        }
        let harness = Harness::builder()
            .with_size(egui::vec2(700.0, 500.0))
            .build_ui(move |ui| {
                inspector_panel::show(
                    ui,
                    &InspectorView {
                        title: "unit",
                        source: "source",
                        arithmetic: Some(&unit),
                        gradient: None,
                        picture: None,
                    },
                )
            });
        for text in &expected {
            assert!(
                harness.query_by_label(text).is_some(),
                "activation {activation}: {text} is shown"
            );
        }
    }
}
