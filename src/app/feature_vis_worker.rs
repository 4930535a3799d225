//! Feature visualisation for the window's channel explorer, on a thread of its own: every
//! channel of one conv block is optimised at once on the window's device, in chunks of
//! steps, and after each chunk the images are read back and published, so the explorer
//! shows them growing. Frames only look at the latest published images.

use std::sync::{Arc, Mutex};

use crate::feature_vis::{FeatureVisOptions, Objective, to_ink};
use crate::gpu::feature_vis::FeatureVis;
use crate::model::Model;

/// Steps between two published pictures.
const STEPS_PER_PICTURE: usize = 16;

/// The latest published state of a run.
#[derive(Clone, Debug, Default)]
pub struct FeatureVisProgress {
    pub steps: usize,
    pub total: usize,
    /// Per channel, ink 0–255, `side × side`; shared, so a frame's copy of the progress
    /// costs no pixel copy.
    pub images: Arc<Vec<Vec<u8>>>,
    pub side: usize,
    pub error: Option<String>,
}

/// Dropping it stops the run after its current chunk of steps and waits for the thread, so
/// its device is gone before the process exits.
pub struct FeatureVisWorker {
    pub objective: Objective,
    progress: Arc<Mutex<FeatureVisProgress>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FeatureVisWorker {
    /// Starts optimising every image of `objective` (every channel of a block, or every
    /// class), on a device of its own on `adapter` (see [`super::worker_device`]: frames
    /// never wait for it).
    pub fn start(
        adapter: wgpu::Adapter,
        model: Model,
        objective: Objective,
        ctx: egui::Context,
    ) -> FeatureVisWorker {
        let options = FeatureVisOptions::default();
        let progress = Arc::new(Mutex::new(FeatureVisProgress {
            total: options.steps,
            side: model.architecture.input.width,
            ..FeatureVisProgress::default()
        }));
        let shared = progress.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let publish = move |update: &dyn Fn(&mut FeatureVisProgress)| {
            update(&mut shared.lock().unwrap_or_else(|p| p.into_inner()));
            ctx.request_repaint();
        };
        let spawned = std::thread::Builder::new()
            .name("cnnviz feature visualisation".into())
            .spawn(move || {
                let result = (|| -> Result<(), String> {
                    let (device, queue) = super::worker_device(&adapter, "feature visualisation")
                        .map_err(|e| format!("{e:#}"))?;
                    let mut run = FeatureVis::new(&device, &queue, &model, objective, options)
                        .map_err(|e| e.to_string())?;
                    let input_len = model.input_len();
                    while run.steps_done() < run.options().steps
                        && !stopped.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        run.run(STEPS_PER_PICTURE, |_| {})
                            .map_err(|e| e.to_string())?;
                        let snapshot = run.read().map_err(|e| e.to_string())?;
                        let images: Arc<Vec<Vec<u8>>> = Arc::new(
                            snapshot
                                .images
                                .chunks_exact(input_len)
                                .map(|image| to_ink(&model, image))
                                .collect(),
                        );
                        publish(&|p| {
                            p.steps = snapshot.steps;
                            p.images = images.clone();
                        });
                    }
                    Ok(())
                })();
                if let Err(why) = result {
                    log::warn!("feature visualisation: {why}");
                    publish(&|p| p.error = Some(why.clone()));
                }
            });
        let thread = match spawned {
            Ok(thread) => Some(thread),
            Err(e) => {
                progress.lock().unwrap_or_else(|p| p.into_inner()).error = Some(format!(
                    "cannot start the feature-visualisation thread: {e}"
                ));
                None
            }
        };
        FeatureVisWorker {
            objective,
            progress,
            stop,
            thread,
        }
    }

    pub fn progress(&self) -> FeatureVisProgress {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FeatureVisWorker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
