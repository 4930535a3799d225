//! The unit inspector and the failure view in the window, driven headless: a click on a
//! cube shows that unit's arithmetic for the drawing on the canvas (its value is the
//! arena's), says nothing stale while a new drawing is read back, and follows the drawing;
//! the failure view's matrix is the survey's and opening a test digit puts it on the canvas.

mod common;

use std::time::Duration;

use cnnviz::app::HeadlessViewer;
use cnnviz::ui::OverlayEvent;
use cnnviz::ui::testset_panel::{MatrixSource, TestSetEvent};
use common::viewer::{frames_until, put_sample_on_canvas, run_until_rest};

const SIZE: [u32; 2] = [1280, 720];
/// Generous: the first survey of a machine computes 10k images on a software adapter.
const LONG: Duration = Duration::from_secs(600);

fn headless() -> Option<HeadlessViewer> {
    common::viewer::quiet_viewer(SIZE)
}

fn click(headless: &mut HeadlessViewer, at: [f32; 2]) {
    // Apart from the last click, or egui sees a double click (which resets the camera).
    std::thread::sleep(Duration::from_millis(500));
    let pos = egui::pos2(at[0], at[1]);
    for pressed in [true, false] {
        headless.push_event(egui::Event::PointerMoved(pos));
        headless.push_event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        headless.frame().expect("frame");
    }
}

/// The inspected unit's value, and the arena's value of that unit.
fn inspected_and_arena(headless: &HeadlessViewer) -> Option<(f64, f32, usize, usize)> {
    let (pick, arithmetic) = headless.viewer().inspected()?;
    let value = arithmetic.value()?;
    let (activation, element) = (pick.activation, pick.element_index);
    let arena = headless.viewer().scene_activations().expect("arena");
    Some((value, arena[activation][element], activation, element))
}

/// For people to look at: `target/inspect-screenshots/NAME`.
fn save_screenshot(headless: &HeadlessViewer, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/inspect-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    headless
        .screenshot()
        .expect("screenshot")
        .save(dir.join(name))
        .expect("screenshot saved");
}

#[test]
fn a_clicked_cube_shows_its_arithmetic_for_the_drawing_and_follows_it() {
    let Some(mut headless) = headless() else {
        return;
    };
    put_sample_on_canvas(&mut headless, "3-mnist-test-18.png");
    run_until_rest(&mut headless);
    // conv2 (activation 4), channel 5, row 3, column 7; pool1 (3) channel 2, (4, 5);
    // the logits (10), class 3.
    for (activation, element) in [
        (4, 5 * 196 + 3 * 14 + 7),
        (3, 2 * 196 + 4 * 14 + 5),
        (10, 3),
    ] {
        let at = headless
            .viewer()
            .cube_on_screen(activation, element)
            .expect("the cube is drawn");
        // The inspector's window may cover the next cube: closed first, as a person would.
        headless.viewer_mut().send(&[OverlayEvent::CloseInspector]);
        headless.frame().expect("frame");
        click(&mut headless, at);
        run_until_rest(&mut headless);
        let (shown, arena, picked, picked_element) =
            inspected_and_arena(&headless).unwrap_or_else(|| panic!("the inspector shows activation {activation} element {element} (clicked at {at:?})"));
        assert_eq!(
            (picked, picked_element),
            (activation, element),
            "the clicked cube"
        );
        assert!(
            (shown - f64::from(arena)).abs() < 1e-4 * (1.0 + arena.abs() as f64),
            "activation {activation} element {element}: terms give {shown}, the arena holds {arena}"
        );
    }
    // The last unit is logit 3: Grad-CAM's gradient there is 1 for the explained class
    // (the predicted one) and 0 for any other.
    let (_, predicted) = headless.viewer().prediction().expect("a prediction");
    let gradient = headless
        .viewer()
        .inspected_gradient()
        .expect("Grad-CAM's backward pass reaches the logits");
    assert_eq!(gradient, if predicted == 3 { 1.0 } else { 0.0 });
    // A click on a logit starts "what the network thinks each class looks like"; its
    // pictures are published as they grow.
    let progress = frames_until(&mut headless, "a class picture", LONG, |h| {
        let progress = h
            .viewer()
            .class_feature_vis()
            .expect("started by the logit click");
        assert!(progress.error.is_none(), "{:?}", progress.error);
        (progress.images.len() == 10 && progress.steps > 0).then_some(progress)
    });
    assert!(
        progress.images[3].iter().any(|&p| p > 0),
        "the 3's picture has ink"
    );
    headless.frame().expect("frame");
    save_screenshot(&headless, "inspector.png");
    // A new drawing: nothing stale is shown, then the same unit for the new drawing.
    put_sample_on_canvas(&mut headless, "8-mnist-test-61.png");
    headless.frame().expect("frame");
    if let Some((shown, arena, ..)) = inspected_and_arena(&headless) {
        assert!((shown - f64::from(arena)).abs() < 1e-4 * (1.0 + arena.abs() as f64));
    }
    run_until_rest(&mut headless);
    let (shown, arena, picked, _) = inspected_and_arena(&headless).expect("updated");
    assert_eq!(picked, 10);
    assert!((shown - f64::from(arena)).abs() < 1e-4 * (1.0 + arena.abs() as f64));
    // Clicking empty space closes it.
    click(&mut headless, [330.0, SIZE[1] as f32 - 12.0]);
    assert!(headless.viewer().inspected().is_none());
}

#[test]
fn the_failure_view_opens_a_misclassified_test_digit_on_the_canvas() {
    let Some(mut headless) = headless() else {
        return;
    };
    headless
        .viewer_mut()
        .send(&[OverlayEvent::SetFailureView(true)]);
    // The survey runs on its own thread (cached after the first run on a machine).
    let survey = frames_until(&mut headless, "the survey", LONG, |h| {
        h.viewer().failure_survey()
    });
    let confusion = survey.survey.confusion();
    let (truth, predicted) = (0..10)
        .flat_map(|t| (0..10).map(move |p| (t, p)))
        .find(|&(t, p)| t != p && confusion[t][p] > 0)
        .expect("the model gets some test digit wrong");
    let cell = survey.survey.cell(truth, predicted);
    headless
        .viewer_mut()
        .send(&[OverlayEvent::Failures(TestSetEvent::SelectCell {
            source: MatrixSource::TestSet,
            truth,
            predicted,
        })]);
    headless
        .viewer_mut()
        .send(&[OverlayEvent::Failures(TestSetEvent::Open {
            source: MatrixSource::TestSet,
            key: cell[0] as u64,
        })]);
    run_until_rest(&mut headless);
    save_screenshot(&headless, "failures.png");
    let (_, shown) = headless.viewer().prediction().expect("a prediction");
    assert_eq!(
        shown, predicted,
        "the window predicts what the survey did for test image {}",
        cell[0]
    );
}

#[test]
fn a_clicked_channel_shows_its_top_test_digits_and_opens_one() {
    let Some(mut headless) = headless() else {
        return;
    };
    headless.viewer_mut().send(&[OverlayEvent::OpenChannel {
        block: 0,
        channel: 5,
    }]);
    let shown = frames_until(&mut headless, "the channel's examples", LONG, |h| {
        h.viewer().channel_examples()
    });
    let survey = headless
        .viewer()
        .failure_survey()
        .expect("the survey is in");
    let expected: Vec<usize> = survey
        .survey
        .top_examples(0, 5, cnnviz::survey::Statistic::Max, 9)
        .iter()
        .map(|e| e.image)
        .collect();
    assert_eq!(shown, expected);
    headless.viewer_mut().send(&[OverlayEvent::Channel(
        cnnviz::ui::channel_panel::ChannelEvent::SetStatistic(cnnviz::survey::Statistic::Mean),
    )]);
    headless.frame().expect("frame");
    let by_mean: Vec<usize> = survey
        .survey
        .top_examples(0, 5, cnnviz::survey::Statistic::Mean, 9)
        .iter()
        .map(|e| e.image)
        .collect();
    assert_eq!(headless.viewer().channel_examples(), Some(by_mean));
    headless.viewer_mut().send(&[OverlayEvent::Channel(
        cnnviz::ui::channel_panel::ChannelEvent::Open(shown[0]),
    )]);
    run_until_rest(&mut headless);
    // The channel's feature visualisation grows on its own thread to its planned steps.
    let last_steps = std::cell::Cell::new(0);
    let progress = frames_until(
        &mut headless,
        "the channel's feature visualisation",
        LONG,
        |h| {
            let progress = h
                .viewer()
                .channel_feature_vis()
                .expect("started with the channel");
            assert!(progress.error.is_none(), "{:?}", progress.error);
            assert!(progress.steps >= last_steps.get(), "steps only grow");
            last_steps.set(progress.steps);
            (progress.steps == progress.total && !progress.images.is_empty()).then_some(progress)
        },
    );
    assert_eq!(progress.images.len(), 16, "one picture per conv1 channel");
    assert!(
        progress.images[5].iter().any(|&p| p > 0),
        "channel 5's picture has ink"
    );
    headless.frame().expect("frame");
    save_screenshot(&headless, "channel.png");
    let (_, predicted) = headless.viewer().prediction().expect("a prediction");
    assert_eq!(predicted, usize::from(survey.survey.predicted[shown[0]]));
}

#[test]
fn render_refuses_a_view_it_cannot_open_in_one_line() {
    if !common::gpu_available() {
        return;
    }
    let sample = "samples/3-pen-on-paper.jpg";
    let out = std::env::temp_dir().join("cnnviz-render-views.png");
    let out = out.to_str().expect("a UTF-8 temp path");
    let no_overlay = common::cnnviz(&["render", "--input", sample, "--out", out, "--failures"]);
    common::assert_one_line_error(&no_overlay, "need --overlay");
    let bad_layer = common::cnnviz(&[
        "render",
        "--input",
        sample,
        "--out",
        out,
        "--overlay",
        "--inspect",
        "fc9:3",
    ]);
    common::assert_one_line_error(&bad_layer, "no layer \"fc9\"");
    let bad_channel = common::cnnviz(&[
        "render",
        "--input",
        sample,
        "--out",
        out,
        "--overlay",
        "--channel",
        "conv1:16",
    ]);
    common::assert_one_line_error(&bad_channel, "conv1 has channels 0..15");
}
