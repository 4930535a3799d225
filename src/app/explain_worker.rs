//! The window's explanation engine on a thread of its own. A batched method (Integrated
//! Gradients, occlusion, Score-CAM) or the comparison grid's fifteen methods take longer
//! than a frame, so the frame only hands jobs over and picks up what came back; it never
//! waits.
//!
//! Jobs carry the input generation they were asked for (the viewer's
//! `generations` counter). Submitting jobs of a newer generation drops every queued job of
//! an older one: stale work is never computed, only the job already running finishes (its
//! result comes back tagged with its generation, and the viewer shows it marked stale).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::explain::{ExplainOptions, ExplainRequest, Explained, Explainer};
use crate::gpu::explain::GpuExplainer;
use crate::model::Model;

/// The engine the window explains with, made in this one place: every method in WGSL on
/// the window's own device (`GpuExplainer`, which keeps clones of the device and queue and
/// waits for its results on the worker thread, never in a frame). The window,
/// `render --method` and the tests all explain through it.
pub fn explain_engine(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    model: &Model,
) -> anyhow::Result<Box<dyn Explainer>> {
    let engine = GpuExplainer::new(device, queue, model, ExplainOptions::default())
        .context("building the explanation methods on the GPU")?;
    Ok(Box::new(engine))
}

/// A device of a worker thread's own on the window's adapter (the explanation engine, the
/// test-set survey, feature visualisation). A worker waits for its results (`device.poll`
/// until a map completes), and a wait on a device holds the lock every submit to that
/// device needs: sharing the window's device made each frame's submit wait for the
/// worker's GPU work (65–137 ms a frame on llvmpipe while drawing). Its own device shares
/// no lock with the frames. `purpose` names it in errors and logs.
pub fn worker_device(
    adapter: &wgpu::Adapter,
    purpose: &str,
) -> anyhow::Result<(wgpu::Device, wgpu::Queue)> {
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some(purpose),
        required_features: wgpu::Features::empty(),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .with_context(|| format!("opening a device for {purpose}"))?;
    // wgpu's default handler panics; an engine error must reach the status line instead
    // (the engine's own calls return their errors).
    let name = purpose.to_string();
    device.on_uncaptured_error(std::sync::Arc::new(move |error: wgpu::Error| {
        log::error!("{name}: {error}");
    }));
    Ok((device, queue))
}

/// One answer: the generation and request it was computed for, and the explanation or
/// why there is none (one line, for the status line).
#[derive(Clone, Debug)]
pub struct ExplainResult {
    pub generation: u64,
    pub request: ExplainRequest,
    pub outcome: Result<Explained, String>,
}

/// What the thread and the viewer share.
#[derive(Default)]
struct Queue {
    /// The generation of the queued jobs; older submissions were dropped.
    generation: u64,
    /// The normalised model input of that generation.
    input: Arc<Vec<f32>>,
    jobs: VecDeque<ExplainRequest>,
    /// A job is being computed.
    running: bool,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when jobs arrive, when a job ends, and at shutdown.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic inside an engine must not take the window with it: the queue's data
        // stays consistent (every change is a single assignment), so a poisoned lock is
        // used as is.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The viewer's handle on the thread. Dropping it stops the thread after its current job
/// and waits for it: the thread's device must be gone before the process exits (lavapipe
/// crashes tearing down a device whose thread is still running at exit).
pub struct ExplainWorker {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    results: Receiver<ExplainResult>,
    /// Results taken by [`ExplainWorker::wait_idle`] for the next [`ExplainWorker::take`].
    held: Vec<ExplainResult>,
}

impl ExplainWorker {
    /// Starts the thread that owns `engine`; it calls `notify` after each result (the
    /// window's `request_repaint`, so an idle window wakes up to show it).
    pub fn start(
        engine: Box<dyn Explainer>,
        notify: impl Fn() + Send + 'static,
    ) -> anyhow::Result<ExplainWorker> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let (sender, results) = channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cnnviz-explain".into())
            .spawn(move || run(engine, &thread_shared, &sender, &notify))?;
        Ok(ExplainWorker {
            shared,
            thread: Some(thread),
            results,
            held: Vec::new(),
        })
    }

    /// Queues `requests` for `input` (normalised) of `generation`. A newer generation than
    /// the queued one drops the queued jobs first; an older one is ignored.
    pub fn submit(&self, generation: u64, input: &Arc<Vec<f32>>, requests: &[ExplainRequest]) {
        let mut queue = self.shared.lock();
        if generation < queue.generation {
            return;
        }
        if generation > queue.generation || !Arc::ptr_eq(&queue.input, input) {
            queue.generation = generation;
            queue.input = input.clone();
            queue.jobs.clear();
        }
        for request in requests {
            if !queue.jobs.contains(request) {
                queue.jobs.push_back(*request);
            }
        }
        drop(queue);
        self.shared.changed.notify_all();
    }

    /// Drops every queued job (the canvas was cleared).
    pub fn cancel(&self, generation: u64) {
        let mut queue = self.shared.lock();
        queue.generation = queue.generation.max(generation);
        queue.jobs.clear();
    }

    /// Everything that came back since the last call; never waits.
    pub fn take(&mut self) -> Vec<ExplainResult> {
        let mut results = std::mem::take(&mut self.held);
        results.extend(self.results.try_iter());
        results
    }

    /// Whether a job is queued or running.
    pub fn busy(&self) -> bool {
        let queue = self.shared.lock();
        queue.running || !queue.jobs.is_empty()
    }

    /// Blocks until no job is queued or running, at most `timeout`: for headless pictures
    /// and tests, never for a frame (it refuses inside one, like every blocking wait).
    /// False when the time ran out.
    pub fn wait_idle(&mut self, timeout: Duration) -> Result<bool, crate::gpu::GpuError> {
        crate::gpu::wait::refuse_in_frame("waiting for explanations")?;
        let deadline = Instant::now() + timeout;
        let mut queue = self.shared.lock();
        while queue.running || !queue.jobs.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            queue = self
                .shared
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(queue);
        let arrived: Vec<ExplainResult> = self.results.try_iter().collect();
        self.held.extend(arrived);
        Ok(true)
    }
}

impl Drop for ExplainWorker {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the thread was already turned into results; nothing to report.
            let _ = thread.join();
        }
    }
}

/// The thread: take the next job of the newest generation, compute it, send it back.
fn run(
    mut engine: Box<dyn Explainer>,
    shared: &Shared,
    sender: &Sender<ExplainResult>,
    notify: &dyn Fn(),
) {
    loop {
        let (generation, input, request) = {
            let mut queue = shared.lock();
            loop {
                if queue.shutdown {
                    return;
                }
                if let Some(request) = queue.jobs.pop_front() {
                    queue.running = true;
                    break (queue.generation, queue.input.clone(), request);
                }
                queue = shared
                    .changed
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.explain(&input, &request)
        }));
        let outcome = match outcome {
            Ok(Ok(explained)) => Ok(explained),
            Ok(Err(e)) => Err(format!("{} could not be computed: {e}", request.method)),
            Err(_) => Err(format!("{} failed inside its engine", request.method)),
        };
        // Sent before `running` clears, so an idle worker has nothing left unsent.
        let gone = sender
            .send(ExplainResult {
                generation,
                request,
                outcome,
            })
            .is_err();
        shared.lock().running = false;
        shared.changed.notify_all();
        notify();
        if gone {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::{ExplainError, Method};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An engine that answers the input's first value as its map after `delay`, and
    /// counts what it computed.
    struct Echo {
        delay: Duration,
        computed: Arc<AtomicUsize>,
        options: ExplainOptions,
    }

    impl Explainer for Echo {
        fn explain(
            &mut self,
            input: &[f32],
            request: &ExplainRequest,
        ) -> Result<Explained, ExplainError> {
            std::thread::sleep(self.delay);
            self.computed.fetch_add(1, Ordering::SeqCst);
            if request.method == Method::Occlusion {
                return Err(ExplainError::BadOption("occlusion refused".into()));
            }
            Ok(Explained {
                method: request.method,
                class: request.class.unwrap_or(0),
                counterfactual: request.counterfactual,
                block: request.block,
                logits: vec![0.0; 10],
                attribution: Vec::new(),
                raw: Vec::new(),
                raw_height: 0,
                raw_width: 0,
                map: vec![input[0]; 4],
                faithfulness: None,
            })
        }

        fn options(&self) -> &ExplainOptions {
            &self.options
        }
    }

    fn worker(delay: Duration) -> (ExplainWorker, Arc<AtomicUsize>) {
        let computed = Arc::new(AtomicUsize::new(0));
        let engine = Echo {
            delay,
            computed: computed.clone(),
            options: ExplainOptions::default(),
        };
        (
            ExplainWorker::start(Box::new(engine), || {}).unwrap(),
            computed,
        )
    }

    #[test]
    fn a_newer_generation_drops_the_queued_jobs_of_older_ones() {
        let (mut worker, computed) = worker(Duration::from_millis(30));
        let all: Vec<ExplainRequest> = Method::ALL.into_iter().map(ExplainRequest::new).collect();
        for generation in 1..=5u64 {
            worker.submit(generation, &Arc::new(vec![generation as f32; 4]), &all);
        }
        assert!(worker.wait_idle(Duration::from_secs(20)).unwrap());
        let results = worker.take();
        let last: Vec<_> = results.iter().filter(|r| r.generation == 5).collect();
        assert_eq!(last.len(), all.len(), "every job of the final drawing");
        for r in &last {
            match &r.outcome {
                Ok(e) => assert_eq!(e.map[0], 5.0, "computed on the final input"),
                Err(why) => assert!(why.contains("Occlusion"), "{why}"),
            }
        }
        // At most the job running when each newer generation came finishes.
        let stale = results.len() - last.len();
        assert!(stale <= 4, "{stale} stale jobs were computed");
        assert_eq!(computed.load(Ordering::SeqCst), results.len());
    }

    #[test]
    fn taking_results_never_waits_and_an_engine_error_comes_back_as_text() {
        let (mut worker, _) = worker(Duration::from_millis(200));
        worker.submit(
            1,
            &Arc::new(vec![1.0; 4]),
            &[ExplainRequest::new(Method::Occlusion)],
        );
        let started = Instant::now();
        let _ = worker.take();
        assert!(worker.busy());
        assert!(started.elapsed() < Duration::from_millis(150));
        assert!(worker.wait_idle(Duration::from_secs(10)).unwrap());
        let results = worker.take();
        assert_eq!(results.len(), 1);
        assert!(results[0].outcome.is_err());
    }
}
