//! The issue-13 panels driven headless: the unit inspector shows terms that add up to the
//! unit's value, and the failure view's matrices and thumbnails answer clicks.

use std::path::PathBuf;

use cnnviz::inspect::{UnitArithmetic, source_activation, unit_arithmetic};
use cnnviz::model::{load_model, reference};
use cnnviz::ui::inspector_panel::{self, InspectorView};
use cnnviz::ui::testset_panel::{
    MatrixSource, MatrixView, TestSetEvent, TestSetPanel, TestSetView, Thumbnail,
};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

#[test]
fn the_inspector_shows_the_sum_bias_and_relu_of_a_conv_unit() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/mnist-cnn.safetensors");
    let model = load_model(&path).expect("model");
    let input: Vec<f32> = (0..784)
        .map(|i| ((i * 37 % 101) as f32) / 50.0 - 0.4)
        .collect();
    let activations = reference::forward(&model, &input);
    // relu2, channel 5, row 3, col 4.
    let activation = 5;
    let element = 5 * 14 * 14 + 3 * 14 + 4;
    let source = source_activation(&model, activation).expect("relu2 has a source");
    let source_values: Vec<f32> = activations[source].iter().map(|&v| v as f32).collect();
    let unit = unit_arithmetic(&model, activation, element, &source_values).expect("arithmetic");
    let UnitArithmetic::Conv { sum, .. } = &unit else {
        panic!("relu2 is explained by conv2: {unit:?}")
    };
    let value = activations[activation][element];
    assert!(
        (sum.value() - value).abs() < 1e-5,
        "{} vs {value}",
        sum.value()
    );
    let texts = [
        format!("{:+.5}", sum.sum),
        format!("{:+.5}", sum.pre_activation),
        format!("{:+.5}", sum.relu.expect("a ReLU")),
    ];
    let harness = Harness::builder()
        .with_size(egui::vec2(520.0, 700.0))
        .build_ui(move |ui| {
            inspector_panel::show(
                ui,
                &InspectorView {
                    title: "relu2 · channel 5 · row 3, col 4",
                    source: "pool1",
                    arithmetic: Some(&unit),
                    gradient: Some((0.25, "3")),
                    picture: None,
                },
            )
        });
    for text in &texts {
        assert!(harness.query_by_label(text).is_some(), "{text} is shown");
    }
    assert!(harness.query_by_label("= pre-activation").is_some());
    assert!(harness.query_by_label("Largest contributions").is_some());
    assert!(
        harness
            .query_by_label("Grad-CAM gradient d logit(3) / d unit = +0.25000")
            .is_some()
    );

    let waiting = Harness::builder().build_ui(|ui| {
        inspector_panel::show(
            ui,
            &InspectorView {
                title: "fc1 · unit 3",
                source: "flatten",
                arithmetic: None,
                gradient: None,
                picture: None,
            },
        )
    });
    assert!(waiting.query_by_label("Computing…").is_some());
}

struct State {
    panel: TestSetPanel,
    events: Vec<TestSetEvent>,
    selected: Option<(MatrixSource, usize, usize)>,
}

#[test]
fn the_failure_view_selects_cells_and_opens_digits() {
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let mut test_set = vec![vec![0usize; 10]; 10];
    test_set[4][9] = 7;
    test_set[4][4] = 900;
    let reports = vec![vec![1usize; 10]; 10];
    let thumbnails = vec![
        Thumbnail {
            key: 1234,
            pixels: vec![128; 784],
            side: 28,
        },
        Thumbnail {
            key: 77,
            pixels: vec![255; 784],
            side: 28,
        },
    ];
    let mut harness = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            move |ui, state: &mut State| {
                let view = TestSetView {
                    labels: &labels,
                    test_set: MatrixView::Ready(&test_set),
                    reports: MatrixView::Ready(&reports),
                    selected: state.selected,
                    thumbnails: &thumbnails,
                    large: false,
                };
                if let Some(event) = state.panel.show(ui, &view) {
                    if let TestSetEvent::SelectCell {
                        source,
                        truth,
                        predicted,
                    } = event
                    {
                        state.selected = Some((source, truth, predicted));
                    }
                    state.events.push(event);
                }
            },
            State {
                panel: TestSetPanel::default(),
                events: Vec::new(),
                selected: None,
            },
        );
    harness
        .get_by_label("TestSet truth 4 predicted 9: 7")
        .click();
    harness.run();
    assert_eq!(
        harness.state().events.last(),
        Some(&TestSetEvent::SelectCell {
            source: MatrixSource::TestSet,
            truth: 4,
            predicted: 9
        })
    );
    assert!(
        harness
            .query_by_label("Test-set digits: truth 4, predicted 9 (2 shown of 2)")
            .is_some()
    );
    harness
        .get_by_label("Reports truth 2 predicted 3: 1")
        .click();
    harness.run();
    assert_eq!(
        harness.state().selected,
        Some((MatrixSource::Reports, 2, 3))
    );
}

#[test]
fn a_matrix_still_computing_says_so() {
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let harness = Harness::builder().build_ui(move |ui| {
        let view = TestSetView {
            labels: &labels,
            test_set: MatrixView::Computing {
                done: 500,
                total: 10_000,
            },
            reports: MatrixView::Unavailable("No store is open."),
            selected: None,
            thumbnails: &[],
            large: true,
        };
        TestSetPanel::default().show(ui, &view);
    });
    assert!(harness.query_by_label("Computing… 500/10000").is_some());
    assert!(harness.query_by_label("No store is open.").is_some());
}
