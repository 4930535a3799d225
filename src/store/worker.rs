//! The store's writer thread. The window must never wait on the disk (a durable commit is an
//! fsync, milliseconds at best), so it hands saves, reports and deletes to this thread and
//! polls for the outcomes between frames. An outcome of `Ok` means the change is committed
//! durably: that is the moment to say "Saved ✓".

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use std::path::PathBuf;

use super::record::{NewPrediction, NewReport, PredictionId, ReportId};
use super::{PredictionStore, StoreError, StoreOptions};

/// Names one submitted request; its outcome carries the same ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// What a report is about: a prediction already saved, or the one on screen, which is saved
/// with its report in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportTarget {
    Saved(PredictionId),
    New(Box<NewPrediction>),
}

/// A request finished and committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreDone {
    Saved(PredictionId),
    Reported {
        prediction: PredictionId,
        report: ReportId,
    },
    Deleted {
        id: PredictionId,
        /// False when there was nothing to delete.
        existed: bool,
    },
}

#[derive(Debug)]
pub struct StoreOutcome {
    pub ticket: Ticket,
    pub result: Result<StoreDone, StoreError>,
}

enum Job {
    Save(Box<NewPrediction>),
    Report(ReportTarget, NewReport),
    Delete(PredictionId),
}

/// Owns the writer thread. Dropping it lets the thread finish what was submitted (so a save
/// clicked just before closing the window still lands) and waits for it.
pub struct StoreWorker {
    store: PredictionStore,
    jobs: Option<Sender<(Ticket, Job)>>,
    outcomes: Receiver<StoreOutcome>,
    /// Outcomes produced here rather than by the thread (it was gone).
    local: Vec<StoreOutcome>,
    next: u64,
    thread: Option<JoinHandle<()>>,
}

impl StoreWorker {
    /// Starts the writer thread for `store`.
    pub fn spawn(store: PredictionStore) -> StoreWorker {
        Self::spawn_with_notify(store, || {})
    }

    /// Like [`StoreWorker::spawn`], calling `notify` after each outcome is ready — e.g.
    /// `egui::Context::request_repaint`, so an idle window wakes up to show "Saved ✓".
    pub fn spawn_with_notify(
        store: PredictionStore,
        notify: impl Fn() + Send + 'static,
    ) -> StoreWorker {
        let (jobs, job_rx) = mpsc::channel::<(Ticket, Job)>();
        let (outcome_tx, outcomes) = mpsc::channel();
        let writer = store.clone();
        let thread = std::thread::Builder::new()
            .name("cnnviz-store".into())
            .spawn(move || {
                for (ticket, job) in job_rx {
                    let result = run(&writer, job);
                    if outcome_tx.send(StoreOutcome { ticket, result }).is_err() {
                        // Nobody listens any more; still finish the queue (durability first).
                        continue;
                    }
                    notify();
                }
            })
            .ok();
        StoreWorker {
            store,
            jobs: thread.as_ref().map(|_| jobs),
            outcomes,
            local: Vec::new(),
            next: 1,
            thread,
        }
    }

    /// The store, for reading (the dashboard pages through it on the UI thread).
    pub fn store(&self) -> &PredictionStore {
        &self.store
    }

    fn submit(&mut self, job: Job) -> Ticket {
        let ticket = Ticket(self.next);
        self.next += 1;
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((ticket, job)).is_ok());
        if !sent {
            self.local.push(StoreOutcome {
                ticket,
                result: Err(StoreError::WorkerGone),
            });
        }
        ticket
    }

    /// Queues a save; returns at once.
    pub fn save(&mut self, prediction: NewPrediction) -> Ticket {
        self.submit(Job::Save(Box::new(prediction)))
    }

    /// Queues a report (saving the prediction first if it is new); returns at once.
    pub fn report(&mut self, target: ReportTarget, report: NewReport) -> Ticket {
        self.submit(Job::Report(target, report))
    }

    /// Queues a delete; returns at once.
    pub fn delete(&mut self, id: PredictionId) -> Ticket {
        self.submit(Job::Delete(id))
    }

    /// Every outcome that is ready, without blocking.
    pub fn poll(&mut self) -> Vec<StoreOutcome> {
        let mut ready = std::mem::take(&mut self.local);
        loop {
            match self.outcomes.try_recv() {
                Ok(outcome) => ready.push(outcome),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // The thread died with requests in flight; they are lost, say so once.
                    if self.jobs.take().is_some() {
                        ready.push(StoreOutcome {
                            ticket: Ticket(0),
                            result: Err(StoreError::WorkerGone),
                        });
                    }
                    break;
                }
            }
        }
        ready
    }

    /// Waits up to `timeout` for the next outcome (for the CLI and tests; never in a frame).
    pub fn wait(&mut self, timeout: Duration) -> Option<StoreOutcome> {
        if !self.local.is_empty() {
            return Some(self.local.remove(0));
        }
        match self.outcomes.recv_timeout(timeout) {
            Ok(outcome) => Some(outcome),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(StoreOutcome {
                ticket: Ticket(0),
                result: Err(StoreError::WorkerGone),
            }),
        }
    }
}

fn run(store: &PredictionStore, job: Job) -> Result<StoreDone, StoreError> {
    match job {
        Job::Save(prediction) => store.save(&prediction).map(StoreDone::Saved),
        Job::Report(ReportTarget::Saved(prediction), report) => store
            .report(prediction, &report)
            .map(|report| StoreDone::Reported { prediction, report }),
        Job::Report(ReportTarget::New(prediction), report) => store
            .save_and_report(&prediction, &report)
            .map(|(prediction, report)| StoreDone::Reported { prediction, report }),
        Job::Delete(id) => store
            .delete(id)
            .map(|existed| StoreDone::Deleted { id, existed }),
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is done.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A store being opened on a thread of its own. Opening reads the whole file once (redb's
/// integrity check, about a second per gigabyte), which a window must not wait for: start it
/// with [`open_in_background`] (or [`open_in_background_then`], which also readies what
/// the caller needs next on that thread, e.g. a running [`StoreWorker`]) and poll between
/// frames.
pub struct PendingOpen<T = PredictionStore> {
    result: Receiver<Result<T, StoreError>>,
}

/// Starts opening the store at `path`; `notify` is called when the result is ready.
pub fn open_in_background(
    path: PathBuf,
    options: StoreOptions,
    notify: impl Fn() + Send + 'static,
) -> PendingOpen {
    open_in_background_then(path, options, |store| store, notify)
}

/// [`open_in_background`], then `then` on the opened store, still on the opening thread
/// (so a window's frame only takes the finished result and starts no thread itself).
pub fn open_in_background_then<T: Send + 'static>(
    path: PathBuf,
    options: StoreOptions,
    then: impl FnOnce(PredictionStore) -> T + Send + 'static,
    notify: impl Fn() + Send + 'static,
) -> PendingOpen<T> {
    let (tx, result) = mpsc::channel();
    let started = std::thread::Builder::new()
        .name("cnnviz-store-open".into())
        .spawn(move || {
            let _ = tx.send(PredictionStore::open_with(&path, &options).map(then));
            notify();
        });
    // Without a thread the sender is gone, and the first poll reports it.
    drop(started);
    PendingOpen { result }
}

impl<T> PendingOpen<T> {
    /// The result once it is ready; `None` while still opening.
    pub fn poll(&mut self) -> Option<Result<T, StoreError>> {
        match self.result.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(StoreError::WorkerGone)),
        }
    }

    /// Waits for the result (CLI and tests).
    pub fn wait(self) -> Result<T, StoreError> {
        self.result.recv().unwrap_or(Err(StoreError::WorkerGone))
    }
}
