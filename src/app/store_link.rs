//! The window's side of the store: opened in the background, written by a worker thread
//! (a frame never waits on the disk), and its dialogs — the dashboard and the report form.
//! Without a store (in use by another process, corrupt, unwritable) the window still runs;
//! it only cannot save, and says why.

use std::collections::VecDeque;
use std::path::Path;

use crate::store::{
    ModelIdentity, NewPrediction, PendingOpen, PredictionId, PredictionStore, ReportTarget,
    RerunInput, StoreDone, StoreOptions, StoreWorker, now_ms, open_in_background_then,
    resolve_store_path,
};
use crate::ui::dashboard::{Dashboard, DashboardEvent, ReportDialog, ReportSubmission};
use crate::ui::{StatusLevel, StatusMessage};

pub struct StoreLink {
    /// The store being opened; the opening thread also starts the writer, so the frame
    /// that picks the result up only takes a running [`StoreWorker`] (a frame starts no
    /// thread).
    pending: Option<PendingOpen<StoreWorker>>,
    worker: Option<StoreWorker>,
    /// Why there is no store, once that is known.
    unavailable: Option<String>,
    pub dashboard: Dashboard,
    pub report: ReportDialog,
    pub model: ModelIdentity,
    /// The drawing saved last and its id, so `R` right after `S` reports that record
    /// instead of saving a second copy.
    last_saved: Option<PredictionId>,
    /// Re-runs still to do ("Re-run all").
    pub rerun_queue: VecDeque<PredictionId>,
}

/// What the store's dialogs asked of the window this frame.
#[derive(Default)]
pub struct StoreRequests {
    pub dashboard: Vec<DashboardEvent>,
    pub report: Option<ReportSubmission>,
}

impl StoreLink {
    pub fn open(explicit: Option<&Path>, model: ModelIdentity, ctx: &egui::Context) -> StoreLink {
        let mut link = StoreLink {
            pending: None,
            worker: None,
            unavailable: None,
            dashboard: Dashboard::new(),
            report: ReportDialog::default(),
            model,
            last_saved: None,
            rerun_queue: VecDeque::new(),
        };
        match resolve_store_path(explicit) {
            Ok(path) => {
                let (repaint, opened) = (ctx.clone(), ctx.clone());
                link.pending = Some(open_in_background_then(
                    path,
                    StoreOptions::default(),
                    move |store| {
                        StoreWorker::spawn_with_notify(store, move || repaint.request_repaint())
                    },
                    move || opened.request_repaint(),
                ));
            }
            Err(e) => link.unavailable = Some(e.to_string()),
        }
        link
    }

    pub fn store(&self) -> Option<&PredictionStore> {
        self.worker.as_ref().map(|w| w.store())
    }

    /// Picks up the store once open and the outcome of every finished write.
    pub fn poll(&mut self) -> Vec<StatusMessage> {
        let mut said = Vec::new();
        if let Some(result) = self.pending.as_mut().and_then(|p| p.poll()) {
            self.pending = None;
            match result {
                Ok(worker) => {
                    if let Some(aside) = worker.store().moved_aside() {
                        said.push(info(format!(
                            "A damaged store was moved to {}",
                            aside.display()
                        )));
                    }
                    self.worker = Some(worker);
                }
                Err(e) => {
                    let why = format!("Saving is off: {e}");
                    said.push(StatusMessage {
                        level: StatusLevel::Warning,
                        text: why.clone(),
                    });
                    self.unavailable = Some(why);
                }
            }
        }
        if let Some(worker) = self.worker.as_mut() {
            for outcome in worker.poll() {
                match outcome.result {
                    Ok(StoreDone::Saved(id)) => {
                        self.last_saved = Some(id);
                        said.push(info(format!("Saved as #{}.", id.0)));
                    }
                    Ok(StoreDone::Reported { .. }) => said.push(info("Report saved. Thank you.")),
                    Ok(StoreDone::Deleted { .. }) => said.push(info("Deleted.")),
                    Err(e) => said.push(StatusMessage {
                        level: StatusLevel::Error,
                        text: format!("Not saved: {e}"),
                    }),
                }
            }
        }
        said
    }

    /// Whether the store is open and its writer running (`false` while it opens, or without
    /// a store).
    pub fn is_ready(&self) -> bool {
        self.worker.is_some()
    }

    /// The drawing changed: a later report is about a new prediction.
    pub fn drawing_changed(&mut self) {
        self.last_saved = None;
    }

    /// Queues a save; `Err` says why it cannot be.
    pub fn save(&mut self, prediction: NewPrediction) -> Result<(), String> {
        let why = self.why_not();
        let worker = self.worker.as_mut().ok_or(why)?;
        worker.save(prediction);
        Ok(())
    }

    /// Opens the report form for the drawing on screen.
    pub fn start_report(&mut self, prediction: NewPrediction) -> Result<(), String> {
        if self.worker.is_none() {
            return Err(self.why_not());
        }
        let predicted = Some(prediction.predicted);
        let target = match self.last_saved {
            Some(id) => ReportTarget::Saved(id),
            None => ReportTarget::New(Box::new(prediction)),
        };
        self.report.open_for(target, predicted);
        Ok(())
    }

    pub fn submit_report(&mut self, submission: &ReportSubmission) -> Result<(), String> {
        let why = self.why_not();
        let worker = self.worker.as_mut().ok_or(why)?;
        let target = submission
            .target
            .clone()
            .ok_or_else(|| "the report lost its drawing".to_string())?;
        worker.report(target, submission.to_report(now_ms()));
        Ok(())
    }

    pub fn delete(&mut self, id: PredictionId) {
        if let Some(worker) = self.worker.as_mut() {
            worker.delete(id);
        }
    }

    pub fn toggle_dashboard(&mut self) -> Result<(), String> {
        if self.worker.is_none() {
            return Err(self.why_not());
        }
        self.dashboard.toggle();
        Ok(())
    }

    /// Closes the dashboard and the report form.
    pub fn close_dialogs(&mut self) {
        self.dashboard.close();
        self.report.close();
    }

    /// Whether the dashboard or the report form is open.
    pub fn dialog_open(&self) -> bool {
        self.dashboard.is_open() || self.report.is_open()
    }

    /// Shows the open dialogs.
    pub fn show(&mut self, ctx: &egui::Context) -> StoreRequests {
        let mut requests = StoreRequests::default();
        if let Some(worker) = self.worker.as_ref() {
            requests.dashboard = self.dashboard.show(ctx, worker.store());
        }
        requests.report = self.report.show(ctx);
        requests
    }

    /// The next `count` stored inputs to re-run (one batch per frame).
    pub fn next_reruns(&mut self, count: usize) -> Vec<RerunInput> {
        let ids: Vec<PredictionId> = (0..count)
            .map_while(|_| self.rerun_queue.pop_front())
            .collect();
        match (ids.is_empty(), self.store()) {
            (false, Some(store)) => store.rerun_inputs(&ids).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn why_not(&self) -> String {
        match (&self.unavailable, &self.pending) {
            (Some(why), _) => why.clone(),
            (None, Some(_)) => "the store is still opening".to_string(),
            (None, None) => "there is no store".to_string(),
        }
    }
}

fn info(text: impl Into<String>) -> StatusMessage {
    StatusMessage {
        level: StatusLevel::Info,
        text: text.into(),
    }
}

/// The model's identity for records: its file name and a hash of its bytes.
pub fn model_identity(name: &str, path: &Path) -> ModelIdentity {
    ModelIdentity::of_file(name, path).unwrap_or_else(|_| ModelIdentity::from_file_bytes(name, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of this process's threads.
    #[cfg(target_os = "linux")]
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                    .map(|name| name.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_writer_thread_runs_before_any_frame_picks_the_store_up() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.redb");
        let ctx = egui::Context::default();
        let mut link = StoreLink::open(
            Some(&path),
            ModelIdentity::from_file_bytes("test", &[]),
            &ctx,
        );
        // Wait for the opener as a test may (a frame never would), without polling the link:
        // the worker that arrives is already running, so the frame's poll only takes it.
        let pending = link.pending.take().expect("the store is being opened");
        let worker = pending.wait().expect("the store opens");
        // A thread names itself once it runs (Linux sets the name from inside it), so the
        // spawned writer may still carry its parent's name for a moment.
        let named = (0..500).any(|_| {
            let running = thread_names().iter().any(|n| n == "cnnviz-store");
            if !running {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            running
        });
        assert!(
            named,
            "the writer thread is not running: {:?}",
            thread_names()
        );
        link.pending = None;
        link.worker = Some(worker);
        assert!(link.is_ready());
        assert!(link.poll().is_empty(), "nothing was written yet");
    }
}
