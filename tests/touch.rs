//! Touch on the drawing canvas, driven headless through the whole overlay with the event
//! sequences egui-winit produces: one finger draws; a cancel with no release ends the
//! stroke; a second finger never draws; leaving ends a stroke; the pointer events egui-winit
//! emulates for the first finger do not draw a second time; losing focus ends a stroke.

use cnnviz::data::preprocess::{InkImage, mnist_input};
use cnnviz::ui::{Overlay, OverlayEvent, OverlayFeatures, OverlayView};
use egui::{Event, Modifiers, PointerButton, Pos2, TouchDeviceId, TouchId, TouchPhase};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// The window's side of the contract, minus the network: the overlay and what it emitted.
struct App {
    overlay: Overlay,
    labels: Vec<String>,
    large_controls: bool,
    events: Vec<OverlayEvent>,
}

impl App {
    fn new(large_controls: bool) -> App {
        App {
            overlay: Overlay::new(),
            labels: (0..10).map(|d| d.to_string()).collect(),
            large_controls,
            events: Vec::new(),
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        let view = OverlayView {
            class_labels: &self.labels,
            features: OverlayFeatures {
                large_controls: self.large_controls,
                invitation: self.large_controls,
                ..Default::default()
            },
            ..Default::default()
        };
        let events = self.overlay.show(ui, &view);
        self.events.extend(events.events);
    }

    fn strokes(&self) -> &[cnnviz::ui::raster::Stroke] {
        self.overlay.canvas().strokes()
    }

    fn last_ink(&self) -> Option<&InkImage> {
        self.events.iter().rev().find_map(|e| match e {
            OverlayEvent::CanvasChanged(ink) => Some(ink),
            _ => None,
        })
    }
}

fn harness(large_controls: bool) -> Harness<'static, App> {
    let size = if large_controls {
        [1920.0, 1080.0]
    } else {
        [1280.0, 800.0]
    };
    let mut harness = Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, app: &mut App| app.ui(ui), App::new(large_controls));
    harness.run();
    harness
}

fn canvas_rect(harness: &Harness<'_, App>) -> egui::Rect {
    harness.get_by_label("Drawing canvas").rect()
}

fn at(rect: egui::Rect, x: f32, y: f32) -> Pos2 {
    rect.min + egui::vec2(x, y) * rect.size()
}

fn press(pos: Pos2, pressed: bool) -> Event {
    Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    }
}

/// One touch event plus, for the finger egui-winit turns into the pointer, the pointer
/// events it adds in the same frame.
fn touch(id: u64, phase: TouchPhase, pos: Pos2, emulate_pointer: bool) -> Vec<Event> {
    let mut events = vec![Event::Touch {
        device_id: TouchDeviceId(1),
        id: TouchId(id),
        phase,
        pos,
        force: Some(0.5),
    }];
    if emulate_pointer {
        match phase {
            TouchPhase::Start => events.extend([Event::PointerMoved(pos), press(pos, true)]),
            TouchPhase::Move => events.push(Event::PointerMoved(pos)),
            TouchPhase::End => events.extend([press(pos, false), Event::PointerGone]),
            TouchPhase::Cancel => events.push(Event::PointerGone),
        }
    }
    events
}

fn frame(harness: &mut Harness<'_, App>, events: Vec<Event>) {
    harness.input_mut().events.extend(events);
    harness.step();
}

/// A finger from `points[0]` through the rest, lifted at the last, one frame per event.
fn finger_stroke(harness: &mut Harness<'_, App>, id: u64, points: &[[f32; 2]], emulate: bool) {
    let rect = canvas_rect(harness);
    let last = points.len() - 1;
    for (i, p) in points.iter().enumerate() {
        let phase = match i {
            0 => TouchPhase::Start,
            i if i == last => TouchPhase::End,
            _ => TouchPhase::Move,
        };
        frame(harness, touch(id, phase, at(rect, p[0], p[1]), emulate));
    }
    harness.run();
}

fn close(a: [f32; 2], b: [f32; 2]) -> bool {
    (a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4
}

const BAR: &[[f32; 2]] = &[[0.5, 0.15], [0.5, 0.35], [0.5, 0.55], [0.51, 0.85]];

#[test]
fn one_finger_draws_one_stroke_through_its_points() {
    for large in [false, true] {
        let mut harness = harness(large);
        let rect_before = canvas_rect(&harness);
        finger_stroke(&mut harness, 1, BAR, true);
        let app = harness.state();
        assert_eq!(app.strokes().len(), 1, "large={large}");
        let points = &app.strokes()[0].points;
        assert_eq!(points.len(), BAR.len(), "{points:?}");
        assert!(
            points.iter().zip(BAR).all(|(a, b)| close(*a, *b)),
            "{points:?}"
        );
        assert!(!app.overlay.canvas().is_drawing());
        // The drawing reached the window, as a tall thin bar in the model input.
        let input = mnist_input(app.last_ink().expect("CanvasChanged"), 28, 28).unwrap();
        let rows = (0..28)
            .filter(|r| input[r * 28..(r + 1) * 28].iter().any(|&v| v > 0.2))
            .count();
        assert!(rows >= 17, "{rows} inked rows");
        // Dragging on the canvas did not scroll the panel under the finger.
        assert_eq!(canvas_rect(&harness), rect_before, "large={large}");
    }
}

#[test]
fn emulated_pointer_events_do_not_draw_twice() {
    let mut with = harness(false);
    finger_stroke(&mut with, 1, BAR, true);
    let mut without = harness(false);
    finger_stroke(&mut without, 1, BAR, false);
    assert_eq!(with.state().strokes(), without.state().strokes());
    assert_eq!(with.state().last_ink(), without.state().last_ink());
    assert_eq!(with.state().strokes().len(), 1);
}

#[test]
fn a_cancel_with_no_release_ends_the_stroke_and_the_canvas_stays_sane() {
    let mut harness = harness(false);
    let rect = canvas_rect(&harness);
    frame(
        &mut harness,
        touch(5, TouchPhase::Start, at(rect, 0.2, 0.3), true),
    );
    frame(
        &mut harness,
        touch(5, TouchPhase::Move, at(rect, 0.4, 0.5), true),
    );
    assert!(harness.state().overlay.canvas().is_drawing());
    frame(
        &mut harness,
        touch(5, TouchPhase::Cancel, at(rect, 0.4, 0.5), true),
    );
    let canvas = harness.state().overlay.canvas();
    assert!(!canvas.is_drawing(), "the cancel ended the stroke");
    assert_eq!(canvas.strokes().len(), 1, "what it drew stays");
    assert_eq!(canvas.strokes()[0].points.len(), 2);
    // The cancelled finger moving on (no End ever comes) draws nothing, and neither do
    // pointer moves with no button.
    frame(
        &mut harness,
        touch(5, TouchPhase::Move, at(rect, 0.9, 0.9), false),
    );
    frame(&mut harness, vec![Event::PointerMoved(at(rect, 0.7, 0.2))]);
    assert_eq!(harness.state().strokes()[0].points.len(), 2);
    // Undo and clear work as usual, and the next finger draws a fresh stroke.
    finger_stroke(&mut harness, 6, &[[0.7, 0.2], [0.7, 0.8]], true);
    assert_eq!(harness.state().strokes().len(), 2);
    harness.get_by_label("Undo").click();
    harness.run();
    assert_eq!(harness.state().strokes().len(), 1);
    harness.get_by_label("Clear").click();
    harness.run();
    assert!(harness.state().overlay.canvas().is_empty());
    let ink = harness.state().last_ink().unwrap();
    assert!(ink.pixels.iter().all(|&v| v == 0.0));
}

#[test]
fn a_second_finger_during_a_stroke_draws_nothing() {
    let mut harness = harness(false);
    let rect = canvas_rect(&harness);
    frame(
        &mut harness,
        touch(1, TouchPhase::Start, at(rect, 0.3, 0.2), true),
    );
    // The second finger lands inside the canvas, moves, lifts; the first goes on.
    frame(
        &mut harness,
        touch(2, TouchPhase::Start, at(rect, 0.8, 0.8), false),
    );
    let mut both = touch(2, TouchPhase::Move, at(rect, 0.9, 0.1), false);
    both.extend(touch(1, TouchPhase::Move, at(rect, 0.3, 0.5), true));
    frame(&mut harness, both);
    frame(
        &mut harness,
        touch(2, TouchPhase::End, at(rect, 0.9, 0.1), false),
    );
    frame(
        &mut harness,
        touch(1, TouchPhase::Move, at(rect, 0.3, 0.7), true),
    );
    frame(
        &mut harness,
        touch(1, TouchPhase::End, at(rect, 0.3, 0.8), true),
    );
    harness.run();
    let strokes = harness.state().strokes();
    assert_eq!(strokes.len(), 1, "{strokes:?}");
    assert!(
        strokes[0].points.iter().all(|p| (p[0] - 0.3).abs() < 1e-4),
        "only the first finger's column: {:?}",
        strokes[0].points
    );
    assert_eq!(strokes[0].points.len(), 4);
}

#[test]
fn a_finger_on_the_canvas_draws_while_another_rests_on_the_scene() {
    let mut harness = harness(false);
    let rect = canvas_rect(&harness);
    // Finger 1 (the one egui-winit emulates as the pointer) lands on the scene; finger 2
    // then draws on the canvas. Only finger 2's points are ink, none of finger 1's.
    frame(
        &mut harness,
        touch(1, TouchPhase::Start, at(rect, 3.0, 0.5), true),
    );
    frame(
        &mut harness,
        touch(2, TouchPhase::Start, at(rect, 0.5, 0.5), false),
    );
    frame(
        &mut harness,
        touch(2, TouchPhase::Move, at(rect, 0.6, 0.6), false),
    );
    frame(
        &mut harness,
        touch(1, TouchPhase::Move, at(rect, 2.5, 0.4), true),
    );
    frame(
        &mut harness,
        touch(1, TouchPhase::End, at(rect, 2.5, 0.4), true),
    );
    frame(
        &mut harness,
        touch(2, TouchPhase::Move, at(rect, 0.7, 0.7), false),
    );
    frame(
        &mut harness,
        touch(2, TouchPhase::End, at(rect, 0.7, 0.7), false),
    );
    harness.run();
    let strokes = harness.state().strokes();
    assert_eq!(strokes.len(), 1, "{strokes:?}");
    let want = [[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]];
    assert_eq!(strokes[0].points.len(), 3, "{strokes:?}");
    assert!(
        strokes[0]
            .points
            .iter()
            .zip(want)
            .all(|(a, b)| close(*a, b)),
        "{strokes:?}"
    );
}

#[test]
fn leaving_the_canvas_or_the_window_ends_the_stroke() {
    let mut harness = harness(false);
    let rect = canvas_rect(&harness);
    // A finger sliding off the canvas: cut at the border, and coming back draws nothing.
    frame(
        &mut harness,
        touch(1, TouchPhase::Start, at(rect, 0.5, 0.5), true),
    );
    frame(
        &mut harness,
        touch(1, TouchPhase::Move, at(rect, 0.5, 1.4), true),
    );
    assert!(!harness.state().overlay.canvas().is_drawing());
    frame(
        &mut harness,
        touch(1, TouchPhase::Move, at(rect, 0.5, 0.6), true),
    );
    frame(
        &mut harness,
        touch(1, TouchPhase::End, at(rect, 0.5, 0.6), true),
    );
    let points = &harness.state().strokes()[0].points;
    assert_eq!(points.len(), 2, "{points:?}");
    assert!(close(points[1], [0.5, 1.0]), "{points:?}");

    // A mouse leaving the window mid-stroke (PointerGone): the stroke ends there.
    frame(
        &mut harness,
        vec![
            Event::PointerMoved(at(rect, 0.2, 0.2)),
            press(at(rect, 0.2, 0.2), true),
        ],
    );
    frame(&mut harness, vec![Event::PointerMoved(at(rect, 0.3, 0.3))]);
    assert!(harness.state().overlay.canvas().is_drawing());
    frame(&mut harness, vec![Event::PointerGone]);
    assert!(!harness.state().overlay.canvas().is_drawing());
    frame(&mut harness, vec![Event::PointerMoved(at(rect, 0.8, 0.8))]);
    assert_eq!(harness.state().strokes()[1].points.len(), 2);

    // The window losing focus mid-touch: the end may never come, so the stroke ends.
    frame(
        &mut harness,
        touch(9, TouchPhase::Start, at(rect, 0.6, 0.2), true),
    );
    frame(&mut harness, vec![Event::WindowFocused(false)]);
    assert!(!harness.state().overlay.canvas().is_drawing());
    frame(
        &mut harness,
        touch(9, TouchPhase::Move, at(rect, 0.6, 0.9), true),
    );
    assert_eq!(harness.state().strokes().len(), 3);
    assert_eq!(harness.state().strokes()[2].points.len(), 1);
}

#[test]
fn a_touch_that_starts_outside_the_canvas_never_draws() {
    let mut harness = harness(false);
    let rect = canvas_rect(&harness);
    finger_stroke(&mut harness, 1, &[[1.5, 0.5], [0.5, 0.5], [0.4, 0.4]], true);
    assert!(harness.state().strokes().is_empty());
    finger_stroke(&mut harness, 2, &[[0.5, -0.3], [0.5, 0.5]], false);
    assert!(harness.state().strokes().is_empty());
    // A tap is a dot.
    frame(
        &mut harness,
        touch(3, TouchPhase::Start, at(rect, 0.5, 0.5), true),
    );
    frame(
        &mut harness,
        touch(3, TouchPhase::End, at(rect, 0.5, 0.5), true),
    );
    harness.run();
    assert_eq!(harness.state().strokes().len(), 1);
    assert!(
        harness
            .state()
            .last_ink()
            .unwrap()
            .pixels
            .iter()
            .any(|&v| v > 0.5)
    );
}
