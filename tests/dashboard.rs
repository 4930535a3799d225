//! The dashboard and the report dialog, headless with egui_kittest: filters change what is
//! shown, paging, delete needs confirmation, re-run and "show in scene" hand the stored data
//! to the window, and the report dialog only submits what the store accepts.

use cnnviz::store::sample::sample_prediction;
use cnnviz::store::{
    DigitFilter, Filter, Kind, NewReport, PredictionId, PredictionStore, ReportTarget, Sort,
};
use cnnviz::ui::dashboard::{
    Dashboard, DashboardEvent, ReportDialog, ReportSubmission, RerunResult,
};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

fn disabled(node: &egui_kittest::Node<'_>) -> bool {
    node.accesskit_node().is_disabled()
}

struct State {
    dashboard: Dashboard,
    store: PredictionStore,
    events: Vec<DashboardEvent>,
}

/// 30 predictions; every third reported, half of those as wrong.
fn store(dir: &std::path::Path) -> PredictionStore {
    let store = PredictionStore::open(&dir.join("s.redb")).unwrap();
    for i in 0..30u64 {
        let id = store
            .save(&sample_prediction(i, 1_700_000_000_000 + i * 60_000))
            .unwrap();
        if i % 3 == 0 {
            let predicted = store.summary(id).unwrap().unwrap().predicted as u8;
            let truth = if i % 2 == 0 {
                (predicted + 1) % 10
            } else {
                predicted
            };
            store
                .report(
                    id,
                    &NewReport {
                        true_digit: truth,
                        reason: String::new(),
                        time_ms: 1,
                    },
                )
                .unwrap();
        }
    }
    store
}

fn harness(store: PredictionStore, page_size: usize) -> Harness<'static, State> {
    let mut dashboard = Dashboard::new();
    dashboard.open = true;
    dashboard.set_page_size(page_size);
    Harness::builder()
        .with_size(egui::vec2(1280.0, 900.0))
        .build_ui_state(
            |ui, state: &mut State| {
                let events = state.dashboard.show(ui.ctx(), &state.store);
                state.events.extend(events);
            },
            State {
                dashboard,
                store,
                events: Vec::new(),
            },
        )
}

fn expected(
    store: &PredictionStore,
    filter: Filter,
    offset: u64,
    limit: usize,
) -> Vec<PredictionId> {
    store.ids(&filter, Sort::Newest, offset, limit).unwrap()
}

#[test]
fn filters_change_what_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut h = harness(store.clone(), 50);
    h.run();
    assert_eq!(
        h.state().dashboard.visible_ids(),
        expected(&store, Filter::ALL, 0, 50)
    );
    assert_eq!(h.get_all_by_label_contains(" predicted ").count(), 30);
    assert!(h.query_by_label("30 predictions").is_some());

    h.get_by_label("Only wrong").click();
    h.run();
    let wrong = Filter {
        kind: Kind::Wrong,
        digit: DigitFilter::Any,
    };
    let shown = h.state().dashboard.visible_ids();
    assert_eq!(shown, expected(&store, wrong, 0, 50));
    assert_eq!(shown.len(), 5);
    assert_eq!(h.get_all_by_label_contains(", reported as ").count(), 5);

    h.get_by_label("Saved").click();
    h.run();
    let saved = Filter {
        kind: Kind::Saved,
        digit: DigitFilter::Any,
    };
    assert_eq!(
        h.state().dashboard.visible_ids(),
        expected(&store, saved, 0, 50)
    );
    assert_eq!(h.query_all_by_label_contains(", reported as ").count(), 0);

    // A digit from the combo box, combined with the kind.
    h.get_by_label("All").click();
    h.run();
    let predicted = store.summary(PredictionId(1)).unwrap().unwrap().predicted;
    h.get_by_label("Digit").click();
    h.run();
    h.get_by_label(&format!("predicted {predicted}")).click();
    h.run();
    let by_digit = Filter {
        kind: Kind::All,
        digit: DigitFilter::Predicted(predicted),
    };
    assert_eq!(h.state().dashboard.filter(), by_digit);
    let shown = h.state().dashboard.visible_ids();
    assert!(shown.contains(&PredictionId(1)));
    assert_eq!(shown, expected(&store, by_digit, 0, 50));
}

#[test]
fn paging_walks_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut h = harness(store.clone(), 12);
    h.run();
    assert!(h.query_by_label("Page 1 of 3").is_some());
    assert!(disabled(&h.get_by_label("‹ Previous")));
    assert_eq!(
        h.state().dashboard.visible_ids(),
        expected(&store, Filter::ALL, 0, 12)
    );
    h.get_by_label("Next ›").click();
    h.run();
    assert!(h.query_by_label("Page 2 of 3").is_some());
    assert_eq!(
        h.state().dashboard.visible_ids(),
        expected(&store, Filter::ALL, 12, 12)
    );
    h.get_by_label("Next ›").click();
    h.run();
    assert!(h.query_by_label("Page 3 of 3").is_some());
    assert!(disabled(&h.get_by_label("Next ›")));
    assert_eq!(h.state().dashboard.visible_ids().len(), 6);
    h.get_by_label("‹ Previous").click();
    h.run();
    assert!(h.query_by_label("Page 2 of 3").is_some());

    // The store changing under the dashboard (a save from the window) shows up.
    store
        .save(&sample_prediction(100, 1_800_000_000_000))
        .unwrap();
    h.run();
    assert!(h.query_by_label("31 predictions").is_some());
}

fn open_detail(h: &mut Harness<'static, State>, id: PredictionId) {
    let tile = format!("{id} predicted");
    h.get_by_label_contains(&tile).scroll_to_me();
    h.run();
    h.get_by_label_contains(&tile).click();
    h.run();
    assert_eq!(h.state().dashboard.selected(), Some(id));
    assert!(
        h.query_by_label_contains(&format!("Prediction {id}"))
            .is_some()
    );
}

#[test]
fn delete_needs_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut h = harness(store.clone(), 50);
    h.run();
    let id = PredictionId(7);
    open_detail(&mut h, id);

    h.get_by_label("Delete…").click();
    h.run();
    assert!(h.state().events.is_empty(), "nothing deleted yet");
    assert!(h.query_by_label_contains("for good?").is_some());
    h.get_by_label("Keep it").click();
    h.run();
    assert!(h.state().events.is_empty());
    assert!(h.query_by_label_contains("for good?").is_none());

    h.get_by_label("Delete…").click();
    h.run();
    h.get_by_label("Delete").click();
    h.run();
    assert_eq!(h.state().events, vec![DashboardEvent::Delete(id)]);

    // The window deletes through its worker; the dashboard follows the store.
    store.delete(id).unwrap();
    h.run();
    assert_eq!(h.state().dashboard.selected(), None, "the detail closes");
    assert!(!h.state().dashboard.visible_ids().contains(&id));
}

#[test]
fn rerun_and_put_on_canvas_hand_over_the_stored_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut h = harness(store.clone(), 50);
    h.run();
    let id = PredictionId(4);
    let saved = store.get(id).unwrap().unwrap();
    open_detail(&mut h, id);

    h.get_by_label("Re-run").click();
    h.run();
    let Some(DashboardEvent::Rerun(input)) = h.state().events.first().cloned() else {
        panic!("{:?}", h.state().events)
    };
    assert_eq!(input.id, id);
    assert_eq!(input.input, saved.input);
    assert_eq!(input.grad_cam_target, saved.grad_cam.target);

    let now = (saved.predicted + 1) % 10;
    let mut probabilities = vec![0.0; 10];
    probabilities[now as usize] = 1.0;
    h.state_mut().dashboard.set_rerun_result(
        id,
        RerunResult {
            predicted: now,
            probabilities,
            heatmap: Some(vec![0.5; 28 * 28]),
            model: "mnist-cnn".into(),
        },
    );
    h.run();
    assert!(
        h.query_by_label(&format!("now (changed from {} to {now})", saved.predicted))
            .is_some()
    );

    h.state_mut().events.clear();
    h.get_by_label("Show in scene").click();
    h.run();
    match h.state().events.as_slice() {
        [DashboardEvent::PutOnCanvas { id: got, drawing }] => {
            assert_eq!(*got, id);
            assert_eq!((drawing.width, drawing.height), (280, 280));
            assert_eq!(drawing.pixels, saved.drawing().unwrap().to_ink());
        }
        other => panic!("{other:?}"),
    }

    h.state_mut().events.clear();
    h.get_by_label_contains("Re-run all").click();
    h.run();
    match h.state().events.as_slice() {
        [DashboardEvent::RerunAll(ids)] => {
            assert_eq!(ids, &expected(&store, Filter::ALL, 0, usize::MAX))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_report_dialog_only_submits_what_the_store_accepts() {
    struct Dialog {
        dialog: ReportDialog,
        submitted: Vec<ReportSubmission>,
    }
    let mut dialog = ReportDialog::default();
    dialog.open_for(ReportTarget::Saved(PredictionId(12)), Some(3));
    let mut h = Harness::builder()
        .with_size(egui::vec2(800.0, 600.0))
        .build_ui_state(
            |ui, s: &mut Dialog| {
                if let Some(r) = s.dialog.show(ui.ctx()) {
                    s.submitted.push(r);
                }
            },
            Dialog {
                dialog,
                submitted: Vec::new(),
            },
        );
    h.run();
    assert!(disabled(&h.get_by_label("Report")), "no digit picked");
    h.get_by_label("3").click();
    h.run();
    assert!(
        disabled(&h.get_by_label("Report")),
        "the digit the model said is no misclassification"
    );
    h.get_by_label("5").click();
    h.run();
    assert!(!disabled(&h.get_by_label("Report")));

    let reason = h.get_by_label("Reason (optional)");
    reason.focus();
    h.run();
    h.get_by_label("Reason (optional)")
        .type_text("open top\u{7}");
    h.run();
    assert!(disabled(&h.get_by_label("Report")), "a control character");
    assert!(h.query_by_label_contains("control character").is_some());

    // Start again and type far too much: the field stops at the limit.
    h.state_mut()
        .dialog
        .open_for(ReportTarget::Saved(PredictionId(12)), Some(3));
    h.run();
    h.get_by_label("5").click();
    h.run();
    h.get_by_label("Reason (optional)").focus();
    h.run();
    h.get_by_label("Reason (optional)")
        .type_text(&"a".repeat(600));
    h.run();
    assert!(h.query_by_label("500 / 500 characters").is_some());
    h.get_by_label("Report").click();
    h.run();
    let submitted = &h.state().submitted;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].true_digit, 5);
    assert_eq!(submitted[0].reason.chars().count(), 500);
    assert_eq!(
        submitted[0].target,
        Some(ReportTarget::Saved(PredictionId(12)))
    );
    assert!(submitted[0].to_report(1).validate().is_ok());
    assert!(!h.state().dialog.is_open(), "closes on submit");
}

#[test]
fn rerun_results_in_memory_are_bounded() {
    let mut dashboard = Dashboard::new();
    let total = cnnviz::ui::dashboard::RERUN_RESULTS_KEPT + 100;
    for i in 0..total as u64 {
        dashboard.set_rerun_result(
            PredictionId(i),
            RerunResult {
                predicted: (i % 10) as u16,
                probabilities: vec![0.1; 10],
                heatmap: Some(vec![0.5; 28 * 28]),
                model: "m".into(),
            },
        );
    }
    assert!(
        dashboard.rerun_result(PredictionId(0)).is_none(),
        "the oldest went"
    );
    let newest = PredictionId(total as u64 - 1);
    assert_eq!(
        dashboard.rerun_result(newest).map(|r| r.predicted),
        Some(((total - 1) % 10) as u16)
    );
    let kept = (0..total as u64)
        .filter(|i| dashboard.rerun_result(PredictionId(*i)).is_some())
        .count();
    assert_eq!(kept, cnnviz::ui::dashboard::RERUN_RESULTS_KEPT);
}
