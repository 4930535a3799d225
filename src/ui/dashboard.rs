//! The dashboard of saved predictions and reports (button and `D` in the window): a
//! filterable, sortable, paged gallery, a detail window with re-run, and the "Report
//! misclassification" dialog.
//!
//! It reads the store directly — redb reads never wait for the writer thread, and a page is
//! re-read only when the view or the store changes ([`PredictionStore::generation`]) — and
//! never writes: deleting, reporting, re-running and putting a drawing back on the canvas
//! are [`DashboardEvent`]s for the window to carry out.
//!
//! Wiring, once per frame:
//! ```text
//! for event in dashboard.show(ctx, worker.store()) {
//!     match event {
//!         // Run `input` on a network of its own (never the scene's), then:
//!         DashboardEvent::Rerun(input) => {
//!             dashboard.set_rerun_result(input.id, RerunResult::from_output(&out, name))
//!         }
//!         // The same for each, in batches of `store.rerun_inputs(chunk)`.
//!         DashboardEvent::RerunAll(ids) => {}
//!         DashboardEvent::Delete(id) => { worker.delete(id); }
//!         DashboardEvent::PutOnCanvas { drawing, .. } => canvas.load_image(&drawing),
//!         DashboardEvent::Report { id, predicted } => {
//!             report_dialog.open_for(ReportTarget::Saved(id), Some(predicted))
//!         }
//!     }
//! }
//! if let Some(s) = report_dialog.show(ctx) && let Some(target) = s.target.clone() {
//!     worker.report(target, s.to_report(store::now_ms()));
//! }
//! ```

mod detail;
mod gallery;
mod report_dialog;

use std::collections::{HashMap, HashSet, VecDeque};

use egui::{RichText, TextureHandle};

pub use report_dialog::{ReportDialog, ReportSubmission};

use crate::colormap::ColorMap;
use crate::data::preprocess::InkImage;
use crate::gpu::ImageOutput;
use crate::store::{
    DigitFilter, Filter, Kind, Page, PredictionId, PredictionStore, RerunInput, Sort,
};
use crate::ui::theme;
use detail::Detail;

/// Tiles per page unless changed.
pub const DEFAULT_PAGE_SIZE: usize = 40;

/// What the person asked the window to do.
#[derive(Clone, Debug, PartialEq)]
pub enum DashboardEvent {
    /// Put this stored input through the current model (the 3D scene may show it), then
    /// hand the result to [`Dashboard::set_rerun_result`].
    Rerun(RerunInput),
    /// Re-run every prediction of the current view, in view order. Fetch the inputs in
    /// batches with [`PredictionStore::rerun_inputs`]; report each result as for `Rerun`.
    RerunAll(Vec<PredictionId>),
    /// Delete this prediction (confirmed by the person): `StoreWorker::delete`.
    Delete(PredictionId),
    /// Put this stored drawing back on the canvas (`Canvas::load_image`).
    PutOnCanvas { id: PredictionId, drawing: InkImage },
    /// Open the report dialog for this saved prediction; submit with
    /// `StoreWorker::report(ReportTarget::Saved(id), ..)`.
    Report { id: PredictionId, predicted: u16 },
}

/// What the current model says about a stored input.
#[derive(Clone, Debug, PartialEq)]
pub struct RerunResult {
    pub predicted: u16,
    pub probabilities: Vec<f32>,
    /// Grad-CAM at input resolution (0..1), if it was computed.
    pub heatmap: Option<Vec<f32>>,
    /// The model that computed it, for the caption.
    pub model: String,
}

impl RerunResult {
    /// From one image of `GpuNetwork::run_blocking`'s output.
    pub fn from_output(output: &ImageOutput, model: &str) -> RerunResult {
        RerunResult {
            predicted: output.predicted as u16,
            probabilities: output.probabilities.clone(),
            heatmap: output.grad_cam.as_ref().map(|c| c.heatmap.clone()),
            model: model.to_string(),
        }
    }

    pub fn confidence(&self) -> f32 {
        self.probabilities
            .get(self.predicted as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// Which page is on screen, and the store state it was read at.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ViewKey {
    filter: Filter,
    sort: Sort,
    page: u64,
    page_size: usize,
    generation: u64,
}

struct View {
    key: ViewKey,
    page: Page,
    textures: Vec<TextureHandle>,
}

/// Progress of a "re-run all".
#[derive(Clone, Debug, Default)]
struct RerunAll {
    expected: usize,
    done: usize,
    changed: usize,
}

/// Re-run results kept in memory (each holds probabilities and a heatmap, a few KiB).
pub const RERUN_RESULTS_KEPT: usize = 512;

/// The dashboard window's state.
pub struct Dashboard {
    /// Whether the window shows; its close button clears it.
    pub open: bool,
    filter: Filter,
    sort: Sort,
    page: u64,
    page_size: usize,
    view: Option<View>,
    detail: Option<Detail>,
    /// The detail to load next frame (a tile was clicked).
    select: Option<PredictionId>,
    /// The last [`RERUN_RESULTS_KEPT`] re-run results, oldest first in `rerun_order`.
    reruns: HashMap<PredictionId, RerunResult>,
    rerun_order: VecDeque<PredictionId>,
    /// Results not yet compared with what was stored (for "re-run all").
    arrived: Vec<PredictionId>,
    rerun_all: Option<RerunAll>,
    rerun_all_ids: HashSet<PredictionId>,
    error: Option<String>,
    color_map: ColorMap,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            open: false,
            filter: Filter::ALL,
            sort: Sort::Newest,
            page: 0,
            page_size: DEFAULT_PAGE_SIZE,
            view: None,
            detail: None,
            select: None,
            reruns: HashMap::new(),
            rerun_order: VecDeque::new(),
            arrived: Vec::new(),
            rerun_all: None,
            rerun_all_ids: HashSet::new(),
            error: None,
            color_map: ColorMap::Viridis,
        }
    }
}

impl Dashboard {
    pub fn new() -> Dashboard {
        Dashboard::default()
    }

    pub fn toggle(&mut self) {
        self.open = !self.open;
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Closes the dashboard and its detail view (the kiosk's reset between visitors).
    pub fn close(&mut self) {
        self.open = false;
        self.detail = None;
    }

    /// The colour map of the Grad-CAM pictures (follow the overlay's choice).
    pub fn set_color_map(&mut self, map: ColorMap) {
        if map != self.color_map {
            self.color_map = map;
            // Textures are rebuilt with the new map on the next load.
            if let Some(d) = &mut self.detail {
                d.generation = u64::MAX;
            }
        }
    }

    pub fn set_page_size(&mut self, size: usize) {
        self.page_size = size.clamp(1, 500);
    }

    pub fn filter(&self) -> Filter {
        self.filter
    }

    pub fn set_filter(&mut self, filter: Filter) {
        if filter != self.filter {
            self.filter = filter;
            self.page = 0;
        }
    }

    pub fn set_sort(&mut self, sort: Sort) {
        if sort != self.sort {
            self.sort = sort;
            self.page = 0;
        }
    }

    /// The prediction shown in the detail window, if any.
    pub fn selected(&self) -> Option<PredictionId> {
        self.detail.as_ref().map(|d| d.record.id)
    }

    /// Opens the detail window of a prediction (on the next `show`).
    pub fn select(&mut self, id: PredictionId) {
        self.select = Some(id);
    }

    /// The ids on the current page, in order (for tests and for the window's own use).
    pub fn visible_ids(&self) -> Vec<PredictionId> {
        self.view
            .as_ref()
            .map(|v| v.page.items.iter().map(|i| i.summary.id).collect())
            .unwrap_or_default()
    }

    /// The result of a [`DashboardEvent::Rerun`] or one of a [`DashboardEvent::RerunAll`].
    pub fn set_rerun_result(&mut self, id: PredictionId, result: RerunResult) {
        // Least recently re-run first out: "Re-run all" over a large store keeps memory
        // bounded.
        self.rerun_order.retain(|kept| *kept != id);
        self.rerun_order.push_back(id);
        self.reruns.insert(id, result);
        while self.rerun_order.len() > RERUN_RESULTS_KEPT {
            if let Some(oldest) = self.rerun_order.pop_front() {
                self.reruns.remove(&oldest);
            }
        }
        if self.arrived.len() >= RERUN_RESULTS_KEPT {
            // Nobody has looked (the dashboard is closed): the oldest are evicted anyway.
            self.arrived.remove(0);
        }
        self.arrived.push(id);
    }

    /// The last re-run result of `id`, if it has one.
    pub fn rerun_result(&self, id: PredictionId) -> Option<&RerunResult> {
        self.reruns.get(&id)
    }

    /// Forgets every re-run result (after a different model was loaded).
    pub fn clear_rerun_results(&mut self) {
        self.reruns.clear();
        self.rerun_order.clear();
        self.arrived.clear();
        self.rerun_all = None;
        self.rerun_all_ids.clear();
    }

    /// Shows the window (if open) and the detail window (if a prediction is selected);
    /// returns what the person asked for this frame.
    pub fn show(&mut self, ctx: &egui::Context, store: &PredictionStore) -> Vec<DashboardEvent> {
        let mut events = Vec::new();
        if !self.open {
            return events;
        }
        self.account_reruns(ctx, store);
        self.refresh(ctx, store);

        let mut open = true;
        egui::Window::new("Saved digits")
            .open(&mut open)
            .default_size([760.0, 560.0])
            .show(ctx, |ui| {
                self.controls(ui, store, &mut events);
                ui.separator();
                self.gallery(ui);
                ui.separator();
                self.pager(ui);
            });
        if !open {
            self.open = false;
            self.detail = None;
        }
        self.detail_window(ctx, &mut events);
        events
    }

    fn account_reruns(&mut self, ctx: &egui::Context, store: &PredictionStore) {
        for id in std::mem::take(&mut self.arrived) {
            let Some(result) = self.reruns.get(&id).cloned() else {
                continue;
            };
            if self.rerun_all_ids.remove(&id)
                && let Some(all) = &mut self.rerun_all
            {
                all.done += 1;
                if let Ok(Some(s)) = store.summary(id) {
                    all.changed += usize::from(s.predicted != result.predicted);
                }
            }
            if let Some(d) = &mut self.detail
                && d.record.id == id
            {
                d.set_rerun(ctx, result, self.color_map);
            }
        }
    }

    /// Re-reads the page (and the detail) when the view or the store changed.
    fn refresh(&mut self, ctx: &egui::Context, store: &PredictionStore) {
        let generation = store.generation();
        let mut key = ViewKey {
            filter: self.filter,
            sort: self.sort,
            page: self.page,
            page_size: self.page_size,
            generation,
        };
        if self.view.as_ref().is_none_or(|v| v.key != key) {
            let offset = key.page * key.page_size as u64;
            match store.page(&key.filter, key.sort, offset, key.page_size) {
                Ok(mut page) => {
                    // Deleting the last items of the last page moves back a page.
                    if page.items.is_empty() && key.page > 0 && page.total > 0 {
                        let last = (page.total - 1) / key.page_size as u64;
                        self.page = last;
                        key.page = last;
                        if let Ok(p) = store.page(
                            &key.filter,
                            key.sort,
                            last * key.page_size as u64,
                            key.page_size,
                        ) {
                            page = p;
                        }
                    }
                    let textures = page
                        .items
                        .iter()
                        .map(|i| {
                            gallery::texture(
                                ctx,
                                format!("dashboard thumb {}", i.summary.id.0),
                                &i.thumbnail,
                            )
                        })
                        .collect();
                    self.view = Some(View {
                        key,
                        page,
                        textures,
                    });
                    self.error = None;
                }
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        let reload = match (&self.select, &self.detail) {
            (Some(_), _) => self.select.take(),
            (None, Some(d)) if d.generation != generation => Some(d.record.id),
            _ => None,
        };
        if let Some(id) = reload {
            let keep_rerun = self.reruns.get(&id).cloned();
            let confirming = self
                .detail
                .as_ref()
                .is_some_and(|d| d.record.id == id && d.confirming_delete);
            match Detail::load(ctx, store, id, self.color_map) {
                Ok(Some(mut d)) => {
                    if let Some(r) = keep_rerun {
                        d.set_rerun(ctx, r, self.color_map);
                    }
                    d.confirming_delete = confirming;
                    self.detail = Some(d);
                }
                Ok(None) => self.detail = None,
                Err(e) => {
                    self.detail = None;
                    self.error = Some(e.to_string());
                }
            }
        }
    }

    fn controls(
        &mut self,
        ui: &mut egui::Ui,
        store: &PredictionStore,
        events: &mut Vec<DashboardEvent>,
    ) {
        let mut filter = self.filter;
        let mut sort = self.sort;
        ui.horizontal_wrapped(|ui| {
            for (kind, text) in [
                (Kind::All, "All"),
                (Kind::Saved, "Saved"),
                (Kind::Reported, "Reported"),
                (Kind::Wrong, "Only wrong"),
            ] {
                ui.selectable_value(&mut filter.kind, kind, text);
            }
            ui.separator();
            let label = ui.label("Digit");
            egui::ComboBox::from_id_salt("dashboard digit filter")
                .selected_text(digit_text(filter.digit))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut filter.digit, DigitFilter::Any, "any");
                    for d in 0..10u8 {
                        let choice = DigitFilter::Predicted(u16::from(d));
                        ui.selectable_value(&mut filter.digit, choice, digit_text(choice));
                    }
                    for d in 0..10u8 {
                        let choice = DigitFilter::True(d);
                        ui.selectable_value(&mut filter.digit, choice, digit_text(choice));
                    }
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Sort");
            egui::ComboBox::from_id_salt("dashboard sort")
                .selected_text(sort_text(sort))
                .show_ui(ui, |ui| {
                    for s in [
                        Sort::Newest,
                        Sort::Oldest,
                        Sort::LeastConfident,
                        Sort::MostConfident,
                    ] {
                        ui.selectable_value(&mut sort, s, sort_text(s));
                    }
                })
                .response
                .labelled_by(label.id);
        });
        self.set_filter(filter);
        self.set_sort(sort);

        ui.horizontal(|ui| {
            let total = self.view.as_ref().map(|v| v.page.total).unwrap_or(0);
            ui.label(format!(
                "{total} prediction{}",
                if total == 1 { "" } else { "s" }
            ));
            let rerun = ui
                .add_enabled(
                    total > 0,
                    egui::Button::new(format!("Re-run all ({total})")),
                )
                .on_hover_text("Put every prediction of this view through the current model");
            if rerun.clicked() {
                match store.ids(&self.filter, self.sort, 0, usize::MAX) {
                    Ok(ids) => {
                        self.rerun_all = Some(RerunAll {
                            expected: ids.len(),
                            ..RerunAll::default()
                        });
                        self.rerun_all_ids = ids.iter().copied().collect();
                        events.push(DashboardEvent::RerunAll(ids));
                    }
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            if let Some(all) = &self.rerun_all {
                ui.label(format!(
                    "re-run {} of {}: {} changed",
                    all.done, all.expected, all.changed
                ));
            }
        });
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(theme::ERROR));
        }
    }

    fn gallery(&mut self, ui: &mut egui::Ui) {
        let Some(view) = &self.view else {
            return;
        };
        let selected = self.detail.as_ref().map(|d| d.record.id);
        let mut clicked = None;
        let height = (ui.available_height() - 40.0).max(140.0);
        egui::ScrollArea::vertical()
            .max_height(height)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if view.page.items.is_empty() {
                    ui.label(RichText::new("Nothing here yet.").color(theme::WEAK_TEXT));
                }
                ui.horizontal_wrapped(|ui| {
                    for (item, texture) in view.page.items.iter().zip(&view.textures) {
                        let id = item.summary.id;
                        let response = gallery::tile(
                            ui,
                            item,
                            texture,
                            self.reruns.get(&id),
                            selected == Some(id),
                        );
                        if response.clicked() {
                            clicked = Some(id);
                        }
                    }
                });
            });
        if let Some(id) = clicked {
            self.select = Some(id);
        }
    }

    fn pager(&mut self, ui: &mut egui::Ui) {
        let total = self.view.as_ref().map(|v| v.page.total).unwrap_or(0);
        let pages = total.div_ceil(self.page_size as u64).max(1);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(self.page > 0, egui::Button::new("‹ Previous"))
                .clicked()
            {
                self.page -= 1;
            }
            ui.label(format!("Page {} of {pages}", self.page + 1));
            if ui
                .add_enabled(self.page + 1 < pages, egui::Button::new("Next ›"))
                .clicked()
            {
                self.page += 1;
            }
        });
    }

    fn detail_window(&mut self, ctx: &egui::Context, events: &mut Vec<DashboardEvent>) {
        let Some(detail) = &mut self.detail else {
            return;
        };
        let mut open = true;
        egui::Window::new(format!("Prediction {}", detail.record.id))
            .open(&mut open)
            .default_width(560.0)
            .show(ctx, |ui| detail.ui(ui, events));
        if !open {
            self.detail = None;
        }
    }
}

fn digit_text(d: DigitFilter) -> String {
    match d {
        DigitFilter::Any => "any".into(),
        DigitFilter::Predicted(p) => format!("predicted {p}"),
        DigitFilter::True(t) => format!("truly {t}"),
    }
}

fn sort_text(s: Sort) -> &'static str {
    match s {
        Sort::Newest => "Newest",
        Sort::Oldest => "Oldest",
        Sort::LeastConfident => "Least confident",
        Sort::MostConfident => "Most confident",
    }
}
