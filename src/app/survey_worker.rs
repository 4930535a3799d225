//! The test-set survey for the window, on a thread of its own: it loads the MNIST test set,
//! then reads the survey from the cache or computes it on the window's device (blocking
//! waits are fine there: it is not a frame). Frames only look at its progress and, once
//! ready, at the shared result.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::data::{Dataset, Split, load_mnist};
use crate::model::Model;
use crate::survey::Survey;

/// The survey and the images it was made from.
pub struct SurveyData {
    pub survey: Survey,
    pub data: Dataset,
    /// `survey.confusion()`, computed once.
    pub confusion: Vec<Vec<usize>>,
}

enum State {
    Running,
    Ready(Arc<SurveyData>),
    Failed(String),
}

/// What a frame sees.
pub enum SurveyStatus {
    Running { done: usize, total: usize },
    Ready(Arc<SurveyData>),
    Failed(String),
}

/// Dropping it stops the survey after its current batch and waits for the thread, so its
/// device is gone before the process exits (lavapipe crashes tearing down a device whose
/// thread still runs at exit).
pub struct SurveyWorker {
    state: Arc<Mutex<State>>,
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SurveyWorker {
    /// Starts the survey of `model` over the test set in `data_dir`, on a device of its own
    /// on `adapter` (see [`super::worker_device`]: frames never wait for it).
    pub fn start(
        adapter: wgpu::Adapter,
        model: Model,
        data_dir: PathBuf,
        ctx: egui::Context,
    ) -> SurveyWorker {
        let state = Arc::new(Mutex::new(State::Running));
        let done = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let (state_t, done_t, total_t) = (state.clone(), done.clone(), total.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("cnnviz survey".into())
            .spawn(move || {
                let result = super::worker_device(&adapter, "the test-set survey")
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|gpu| {
                        load_mnist(&data_dir, Split::Test)
                            .map(|data| (gpu, data))
                            .map_err(|e| format!("MNIST test set in {}: {e}", data_dir.display()))
                    })
                    .and_then(|((device, queue), data)| {
                        total_t.store(data.len(), Ordering::Relaxed);
                        let cache = crate::gpu::tune::cache::cache_dir();
                        Survey::load_or_compute(
                            &device,
                            &queue,
                            &model,
                            &data,
                            cache.as_deref(),
                            |n| {
                                done_t.store(n, Ordering::Relaxed);
                                ctx.request_repaint();
                                !stopped.load(Ordering::Relaxed)
                            },
                        )
                        .map(|(survey, _)| SurveyData {
                            confusion: survey.confusion(),
                            survey,
                            data,
                        })
                        .map_err(|e| e.to_string())
                    });
                let next = match result {
                    Ok(data) => State::Ready(Arc::new(data)),
                    Err(why) => {
                        log::warn!("test-set survey: {why}");
                        State::Failed(why)
                    }
                };
                *state_t.lock().unwrap_or_else(|p| p.into_inner()) = next;
                ctx.request_repaint();
            });
        let thread = match spawned {
            Ok(thread) => Some(thread),
            Err(e) => {
                *state.lock().unwrap_or_else(|p| p.into_inner()) =
                    State::Failed(format!("cannot start the survey thread: {e}"));
                None
            }
        };
        SurveyWorker {
            state,
            done,
            total,
            stop,
            thread,
        }
    }

    pub fn status(&self) -> SurveyStatus {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Running => SurveyStatus::Running {
                done: self.done.load(Ordering::Relaxed),
                total: self.total.load(Ordering::Relaxed).max(1),
            },
            State::Ready(data) => SurveyStatus::Ready(data.clone()),
            State::Failed(why) => SurveyStatus::Failed(why.clone()),
        }
    }
}

impl Drop for SurveyWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
