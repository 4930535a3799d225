//! Explanation methods in the window, driven headless: the Explain panel's method shows
//! that method's map of the drawing on the canvas (the engine's own answer for the same
//! pixels) and tints the scene; after quick changes the comparison grid shows only maps of
//! the final drawing or "Computing…"; the all-classes grid has a map per class and the
//! counterfactual; no frame ever waits. Plus `cnnviz render --method` and `--explain-grid`.

mod common;

use std::path::Path;
use std::time::Duration;

use cnnviz::app::{HeadlessViewer, Redraw};
use cnnviz::explain::{ExplainRequest, Explained, Method};
use cnnviz::ui::{ExplainGrid, GridTile, OverlayEvent};
use common::viewer::put_sample_on_canvas;

const SIZE: [u32; 2] = [1280, 720];
/// Generous: the CPU twin computes the fifteen methods of a grid in seconds.
const WAIT: Duration = Duration::from_secs(300);

fn headless() -> Option<HeadlessViewer> {
    common::viewer::quiet_viewer(SIZE)
}

/// Frames until the viewer rests, waiting for the explanation worker between them (never
/// inside a frame).
fn settle_explained(headless: &mut HeadlessViewer) {
    for _ in 0..20 {
        headless.settle().expect("settle");
        let idle = headless
            .viewer_mut()
            .wait_for_explanations(WAIT)
            .expect("waiting outside a frame is allowed");
        assert!(idle, "the explanation worker did not finish in {WAIT:?}");
        let output = headless.frame().expect("frame");
        if output.redraw != Redraw::Now
            && !headless.viewer().busy()
            && !headless.viewer().explaining()
        {
            headless.settle().expect("settle");
            return;
        }
    }
    panic!("the explanations never came to rest");
}

/// The engine the window uses, asked directly for the canvas's pixels.
fn engine_answer(headless: &HeadlessViewer, request: &ExplainRequest) -> Explained {
    let viewer = headless.viewer();
    let gpu = viewer.gpu().expect("a device");
    let model = viewer.model();
    let mut engine =
        cnnviz::app::explain_engine(&gpu.device, &gpu.queue, model).expect("the engine");
    let pixels = viewer.model_input().expect("a drawing on the canvas");
    engine
        .explain(&model.normalize(pixels), request)
        .unwrap_or_else(|e| panic!("{}: {e}", request.method))
}

fn assert_same_map(shown: &[f32], expected: &[f32], what: &str) {
    assert_eq!(shown.len(), expected.len(), "{what}: map size");
    let worst = shown
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{what}: maps differ by up to {worst}");
}

fn tiles(headless: &HeadlessViewer) -> Vec<(ExplainRequest, Option<(bool, Explained)>)> {
    headless
        .viewer()
        .explain_tiles()
        .into_iter()
        .map(|GridTile { request, map }| {
            let shown = map.and_then(|m| m.result.ok().map(|e| (m.current, e.clone())));
            (request, shown)
        })
        .collect()
}

#[test]
fn choosing_a_method_shows_its_map_of_the_drawing_and_tints_the_scene() {
    let Some(mut headless) = headless() else {
        return;
    };
    let refused = cnnviz::gpu::wait::blocking_waits_refused();
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    settle_explained(&mut headless);
    let grad_cam = headless
        .viewer()
        .shown_explanation()
        .expect("Grad-CAM's answer with its curves")
        .clone();
    assert_eq!(grad_cam.method, Method::GradCam);
    assert!(headless.viewer().scene_tinted());
    let grad_cam_picture = headless.screenshot().expect("picture");

    for method in [Method::Saliency, Method::ScoreCam] {
        headless
            .viewer_mut()
            .send(&[OverlayEvent::SetMethod(method)]);
        // Before the worker answers, the panel has no map of this drawing for the method
        // and the scene is not tinted with another method's map.
        assert!(headless.viewer().shown_explanation().is_none());
        settle_explained(&mut headless);
        assert_eq!(headless.viewer().method(), method);
        let shown = headless
            .viewer()
            .shown_explanation()
            .unwrap_or_else(|| panic!("{method}: no map for the drawing"))
            .clone();
        assert_eq!(shown.method, method);
        let request = ExplainRequest {
            block: Some(headless.viewer().model().conv_blocks().len() - 1),
            ..ExplainRequest::new(method)
        };
        let expected = engine_answer(&headless, &request);
        assert_eq!(shown.class, expected.class, "{method}: class");
        assert_same_map(&shown.map, &expected.map, method.label());
        let (shown_f, expected_f) = (
            shown.faithfulness.as_ref().expect("curves"),
            expected.faithfulness.as_ref().expect("curves"),
        );
        assert!((shown_f.deletion_auc - expected_f.deletion_auc).abs() < 1e-5);
        assert!((shown_f.insertion_auc - expected_f.insertion_auc).abs() < 1e-5);
        assert!(headless.viewer().scene_tinted(), "{method} tints the scene");
    }
    // The scene shows Score-CAM's map now, not Grad-CAM's.
    let score_cam_picture = headless.screenshot().expect("picture");
    let differing = grad_cam_picture
        .pixels()
        .zip(score_cam_picture.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differing > 500,
        "another method's map changes the picture ({differing} pixels differ)"
    );
    // Back to Grad-CAM: the network's own map again.
    headless
        .viewer_mut()
        .send(&[OverlayEvent::SetMethod(Method::GradCam)]);
    settle_explained(&mut headless);
    assert!(headless.viewer().scene_tinted());
    let again = headless.screenshot().expect("picture");
    let back = grad_cam_picture
        .pixels()
        .zip(again.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        back < differing / 4,
        "Grad-CAM's picture comes back ({back} pixels differ, {differing} for Score-CAM)"
    );
    assert_eq!(
        cnnviz::gpu::wait::blocking_waits_refused(),
        refused,
        "a frame tried to wait"
    );
}

#[test]
fn after_quick_changes_the_grid_shows_only_maps_of_the_final_drawing() {
    let Some(mut headless) = headless() else {
        return;
    };
    let refused = cnnviz::gpu::wait::blocking_waits_refused();
    headless
        .viewer_mut()
        .send(&[OverlayEvent::SetExplainGrid(Some(ExplainGrid::Methods))]);
    put_sample_on_canvas(&mut headless, "1-mnist-test-2.png");
    settle_explained(&mut headless);
    // Drawings changing frame after frame, faster than the worker answers.
    for name in [
        "0-mnist-test-3.png",
        "8-mnist-test-61.png",
        "3-mnist-test-18.png",
    ] {
        put_sample_on_canvas(&mut headless, name);
        headless.frame().expect("frame");
    }
    let expected: Vec<(ExplainRequest, Explained)> = tiles(&headless)
        .into_iter()
        .map(|(request, _)| (request, engine_answer(&headless, &request)))
        .collect();
    assert_eq!(expected.len(), Method::ALL.len(), "one tile per method");
    // Frame after frame without waiting: a tile is either marked as not current or shows
    // the final drawing's map.
    let mut all_current = false;
    for _ in 0..20_000 {
        headless.frame().expect("frame");
        let shown = tiles(&headless);
        for ((request, tile), (_, want)) in shown.iter().zip(&expected) {
            if let Some((true, explained)) = tile {
                assert_same_map(&explained.map, &want.map, request.method.label());
            }
        }
        all_current = shown.iter().all(|(_, t)| matches!(t, Some((true, _))));
        if all_current {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(all_current, "the grid never showed the final drawing");
    for ((request, tile), (_, want)) in tiles(&headless).iter().zip(&expected) {
        let (_, explained) = tile.as_ref().expect("a map");
        let (got, want) = (
            explained.faithfulness.as_ref().expect("curves"),
            want.faithfulness.as_ref().expect("curves"),
        );
        assert!(
            (got.deletion_auc - want.deletion_auc).abs() < 1e-5
                && (got.insertion_auc - want.insertion_auc).abs() < 1e-5,
            "{}: areas",
            request.method
        );
    }
    assert_eq!(
        cnnviz::gpu::wait::blocking_waits_refused(),
        refused,
        "a frame tried to wait"
    );
}

#[test]
fn the_all_classes_grid_has_a_map_per_class_and_the_counterfactual() {
    let Some(mut headless) = headless() else {
        return;
    };
    put_sample_on_canvas(&mut headless, "7-mnist-test-0.png");
    headless
        .viewer_mut()
        .send(&[OverlayEvent::SetExplainGrid(Some(ExplainGrid::Classes))]);
    settle_explained(&mut headless);
    let shown = tiles(&headless);
    let classes = headless.viewer().model().architecture.classes.len();
    assert_eq!(
        shown.len(),
        classes + 1,
        "a map per class and the counterfactual"
    );
    for (i, (request, tile)) in shown.iter().enumerate() {
        let (current, explained) = tile.as_ref().expect("every map came back");
        assert!(current);
        if i < classes {
            assert_eq!((request.class, request.counterfactual), (Some(i), false));
            assert_eq!(explained.class, i);
        } else {
            assert!(request.counterfactual && explained.counterfactual);
            assert_eq!(explained.class, 7, "against the predicted class");
            let expected = engine_answer(&headless, request);
            assert_same_map(&explained.map, &expected.map, "counterfactual");
        }
    }
    // Grad-CAM answers "why 1" differently from "why 7".
    let (_, seven) = shown[7].1.as_ref().unwrap();
    let (_, one) = shown[1].1.as_ref().unwrap();
    let difference = seven
        .map
        .iter()
        .zip(&one.map)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(difference > 0.1, "the classes' maps differ ({difference})");
}

fn cnnviz() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cnnviz"))
}

#[test]
fn render_draws_a_method_and_refuses_what_it_cannot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/7-mnist-test-0.png");
    let out = dir.path().join("grid.png");
    let unknown = cnnviz()
        .args(["render", "--method", "nosuch", "--input"])
        .arg(&sample)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("integrated-gradients"),
        "lists the methods: {stderr}"
    );
    let no_overlay = cnnviz()
        .args(["render", "--explain-grid", "methods", "--input"])
        .arg(&sample)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(!no_overlay.status.success());
    assert!(String::from_utf8_lossy(&no_overlay.stderr).contains("--overlay"));
    if cnnviz::gpu::GpuContext::new().is_err() && std::env::var_os("CI").is_none() {
        eprintln!("note: skipping the pictures: no GPU adapter");
        return;
    }
    // The scene alone, tinted by two methods: different pictures.
    let mut pictures = Vec::new();
    for method in ["gradcam", "occlusion"] {
        let path = dir.path().join(format!("{method}.png"));
        let run = cnnviz()
            .args([
                "render", "--width", "320", "--height", "200", "--method", method,
            ])
            .arg("--input")
            .arg(&sample)
            .arg("--out")
            .arg(&path)
            .output()
            .expect("runs");
        assert!(
            run.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        pictures.push(image::open(&path).expect("a PNG").to_rgba8());
    }
    assert_ne!(pictures[0], pictures[1], "the method's map tints the scene");
}
