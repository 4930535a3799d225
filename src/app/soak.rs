//! `cnnviz soak`: hours of scripted visitors through the kiosk's viewer, headless, to show
//! that memory and GPU objects level off. Each visitor wakes the kiosk, draws a digit with
//! pointer events on the canvas, presses Predict, saves, reports, opens the dashboard,
//! re-runs saved digits, closes it and walks away; the kiosk then idles, resets and plays
//! attract digits until the next visitor. Every `sample_every` frames the process's
//! resident memory, wgpu's count of live GPU objects and the store's size are sampled.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::{Event, Modifiers, PointerButton, Pos2};
use serde::Serialize;

use super::headless::HeadlessViewer;
use super::viewer::{KioskOptions, Redraw, StoreChoice, ViewerOptions};
use crate::kiosk::{AttractDigits, KioskConfig};
use crate::model::Model;
use crate::ui::OverlayEvent;

/// How a soak runs.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// Frames to draw in all.
    pub frames: u64,
    /// Stop earlier when this much time has passed.
    pub duration: Option<Duration>,
    /// Offscreen frame size in pixels.
    pub size: [u32; 2],
    /// The store visitors save into (a scratch file: it fills up).
    pub store: PathBuf,
    /// Sample memory and GPU objects every this many frames.
    pub sample_every: u64,
    /// The kiosk's idle time before reset and attract mode, seconds.
    pub idle_seconds: f64,
    /// How long attract mode plays before the next visitor, seconds.
    pub attract_seconds: f64,
    /// Attract mode's digits.
    pub digits: AttractDigits,
    /// Gallery tiles per dashboard page. Each tile is a texture, so the count of GPU
    /// objects grows with the store until a page is full; a small page lets a short run
    /// reach the steady state.
    pub gallery_page_size: usize,
}

/// One sample.
#[derive(Clone, Debug, Serialize)]
pub struct SoakSample {
    pub frame: u64,
    pub seconds: f64,
    /// Resident set size of the process, KiB (Linux; 0 where unknown).
    pub rss_kib: u64,
    /// Live wgpu objects (buffers, textures, views, bind groups, pipelines, …).
    pub gpu_objects: usize,
    /// Predictions in the store.
    pub stored: u64,
    /// The bounded caches (the gallery's thumbnail textures, one per tile of a page) are
    /// full: from here on, GPU objects must not grow.
    pub caches_full: bool,
    pub visitors: u64,
    pub phase: &'static str,
}

/// What a soak found.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub adapter: String,
    pub frames: u64,
    pub seconds: f64,
    pub visitors: u64,
    pub saved: u64,
    pub reported: u64,
    pub reruns: u64,
    pub attract_cycles: u64,
    pub samples: Vec<SoakSample>,
    pub verdict: SoakVerdict,
}

/// Whether memory and GPU objects levelled off: the second half of the run (after the
/// first quarter's warm-up) compared with the first. GPU objects are judged only over the
/// samples taken once the bounded caches were full: a cache filling towards a known bound
/// is not a leak, growth after it is.
#[derive(Clone, Debug, Serialize)]
pub struct SoakVerdict {
    /// Mean RSS of the last quarter minus that of the second quarter, KiB.
    pub rss_growth_kib: i64,
    /// Largest GPU object count of the second half minus that of the first half, both
    /// taken after warm-up with the caches full.
    pub gpu_object_growth: i64,
    /// False when too few samples were taken with the caches full to judge GPU objects
    /// (a short run, or a large gallery page).
    pub gpu_judged: bool,
    pub level: bool,
}

/// RSS growth allowed between the second and last quarters: the store's page cache fills
/// as records accumulate (redb caches up to 64 MiB), allocators keep some slack.
const RSS_SLACK_KIB: i64 = 32 * 1024;

/// Where one visitor is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Wake,
    Draw { point: usize },
    Predict,
    Save,
    Report,
    SubmitReport,
    OpenDashboard,
    Rerun,
    CloseDashboard,
    WalkAway,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Wake => "wake",
            Step::Draw { .. } => "draw",
            Step::Predict => "predict",
            Step::Save => "save",
            Step::Report | Step::SubmitReport => "report",
            Step::OpenDashboard | Step::Rerun | Step::CloseDashboard => "dashboard",
            Step::WalkAway => "idle",
        }
    }
}

/// Runs the soak; `on_sample` sees each sample as it is taken.
pub fn run_soak(
    model: Model,
    options: &SoakOptions,
    mut on_sample: impl FnMut(&SoakSample),
) -> anyhow::Result<SoakReport> {
    let config = KioskConfig {
        idle_seconds: options.idle_seconds,
        ..KioskConfig::default()
    };
    let viewer_options = ViewerOptions {
        store: StoreChoice::At(options.store.clone()),
        features: config.overlay_features(),
        kiosk: Some(KioskOptions {
            config,
            digits: options.digits.clone(),
        }),
        ..ViewerOptions::default()
    };
    let mut headless = HeadlessViewer::new(model, viewer_options, options.size, 1.0)?;
    headless
        .viewer_mut()
        .set_gallery_page_size(options.gallery_page_size);
    let started = Instant::now();
    let mut report = SoakReport {
        adapter: headless.viewer().adapter().to_string(),
        frames: 0,
        seconds: 0.0,
        visitors: 0,
        saved: 0,
        reported: 0,
        reruns: 0,
        attract_cycles: 0,
        samples: Vec::new(),
        verdict: SoakVerdict {
            rss_growth_kib: 0,
            gpu_object_growth: 0,
            gpu_judged: false,
            level: true,
        },
    };
    let mut step = Step::Wake;
    let mut step_started = Instant::now();
    let mut was_attract = false;
    let mut redraw = Redraw::Now;
    let out_of_time = || options.duration.is_some_and(|d| started.elapsed() >= d);
    while report.frames < options.frames && !out_of_time() {
        // Time passes as it would for the window: idle frames wait for their deadline.
        match redraw {
            Redraw::At(at) => std::thread::sleep(
                at.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(250)),
            ),
            Redraw::OnInput if step == Step::WalkAway => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {}
        }
        let digit = (report.visitors % 10) as u8;
        let next = act(
            &mut headless,
            step,
            digit,
            step_started,
            options,
            &mut report,
        );
        if next != step {
            step = next;
            step_started = Instant::now();
        }
        redraw = headless.frame()?.redraw;
        report.frames += 1;
        let attract = headless.viewer().in_attract();
        if attract && !was_attract {
            report.attract_cycles += 1;
        }
        was_attract = attract;
        let last = report.frames == options.frames || out_of_time();
        if report.frames.is_multiple_of(options.sample_every.max(1)) || last {
            let sample = sample(
                &headless,
                &report,
                started,
                options.gallery_page_size,
                step.name(),
            );
            on_sample(&sample);
            report.samples.push(sample);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.verdict = verdict(&report.samples);
    Ok(report)
}

/// Does this frame's part of `step`; returns the step for the next frame.
fn act(
    headless: &mut HeadlessViewer,
    step: Step,
    digit: u8,
    since: Instant,
    options: &SoakOptions,
    report: &mut SoakReport,
) -> Step {
    let elapsed = since.elapsed();
    let settled = !headless.viewer().busy();
    // A visitor at the screen moves: without input the kiosk's idle reset would take the
    // drawing away between Save and Report, as it would from a real visitor who froze.
    if !matches!(step, Step::Draw { .. } | Step::WalkAway | Step::Wake) {
        headless.push_event(Event::PointerMoved(Pos2::new(
            5.0 + (since.elapsed().as_millis() % 7) as f32,
            300.0,
        )));
    }
    match step {
        Step::Wake => {
            // The first touch ends attract mode and gives a clean canvas.
            headless.push_event(Event::PointerMoved(Pos2::new(5.0, 300.0)));
            report.visitors += 1;
            Step::Draw { point: 0 }
        }
        Step::Draw { point } => {
            let Some(rect) = headless.viewer().overlay().canvas().screen_rect() else {
                return step;
            };
            let path = digit_path(digit);
            let at = |i: usize| rect.min + rect.size() * egui::vec2(path[i][0], path[i][1]);
            let pressed = |pos, pressed| Event::PointerButton {
                pos,
                button: PointerButton::Primary,
                pressed,
                modifiers: Modifiers::NONE,
            };
            if point == 0 {
                headless.push_event(Event::PointerMoved(at(0)));
                headless.push_event(pressed(at(0), true));
            }
            // Two points a frame, like a quick hand on a 60 Hz screen.
            let end = (point + 2).min(path.len() - 1);
            for i in point + 1..=end {
                headless.push_event(Event::PointerMoved(at(i)));
            }
            if end == path.len() - 1 {
                headless.push_event(pressed(at(end), false));
                Step::Predict
            } else {
                Step::Draw { point: end }
            }
        }
        Step::Predict if settled => {
            headless.viewer_mut().send(&[OverlayEvent::Predict]);
            Step::Save
        }
        Step::Save if settled => {
            headless.viewer_mut().send(&[OverlayEvent::Save]);
            report.saved += 1;
            Step::Report
        }
        Step::Report if elapsed > Duration::from_millis(200) => {
            headless.viewer_mut().send(&[OverlayEvent::Report]);
            Step::SubmitReport
        }
        Step::SubmitReport if elapsed > Duration::from_millis(200) => {
            // The drawn digit, or the next one if the model said that already (the form
            // refuses a report that agrees with the model).
            let accepted = (0..2).any(|k| headless.viewer_mut().submit_report((digit + k) % 10));
            if accepted {
                report.reported += 1;
            } else {
                headless.viewer_mut().close_dialogs();
            }
            Step::OpenDashboard
        }
        Step::OpenDashboard => {
            if !headless.viewer().dashboard_open() {
                headless.viewer_mut().send(&[OverlayEvent::Dashboard]);
            }
            Step::Rerun
        }
        Step::Rerun if elapsed > Duration::from_millis(500) => {
            report.reruns += headless.viewer_mut().rerun_newest(8) as u64;
            Step::CloseDashboard
        }
        Step::CloseDashboard if elapsed > Duration::from_millis(500) => {
            if headless.viewer().dashboard_open() {
                headless.viewer_mut().send(&[OverlayEvent::Dashboard]);
            }
            Step::WalkAway
        }
        Step::WalkAway => {
            let away = Duration::from_secs_f64(options.idle_seconds + options.attract_seconds);
            if elapsed >= away {
                Step::Wake
            } else {
                Step::WalkAway
            }
        }
        waiting => waiting,
    }
}

/// A pen path of `digit` in canvas units (0..1, y down), roughly as people draw it.
fn digit_path(digit: u8) -> Vec<[f32; 2]> {
    match digit {
        0 => (0..=24)
            .map(|i| {
                let a = i as f32 / 24.0 * std::f32::consts::TAU;
                [0.5 + 0.22 * a.sin(), 0.5 - 0.3 * a.cos()]
            })
            .collect(),
        1 => vec![[0.42, 0.28], [0.52, 0.2], [0.52, 0.5], [0.52, 0.8]],
        2 => vec![
            [0.3, 0.3],
            [0.42, 0.2],
            [0.6, 0.2],
            [0.7, 0.32],
            [0.64, 0.46],
            [0.3, 0.8],
            [0.72, 0.8],
        ],
        3 => vec![
            [0.3, 0.22],
            [0.6, 0.2],
            [0.68, 0.32],
            [0.5, 0.48],
            [0.7, 0.62],
            [0.6, 0.8],
            [0.3, 0.78],
        ],
        4 => vec![[0.6, 0.8], [0.6, 0.2], [0.28, 0.6], [0.75, 0.6]],
        5 => vec![
            [0.7, 0.2],
            [0.36, 0.2],
            [0.33, 0.48],
            [0.6, 0.45],
            [0.7, 0.62],
            [0.6, 0.8],
            [0.3, 0.78],
        ],
        6 => vec![
            [0.65, 0.2],
            [0.42, 0.38],
            [0.32, 0.65],
            [0.45, 0.8],
            [0.62, 0.72],
            [0.6, 0.55],
            [0.36, 0.6],
        ],
        7 => vec![[0.28, 0.22], [0.72, 0.22], [0.58, 0.5], [0.45, 0.8]],
        8 => vec![
            [0.62, 0.26],
            [0.5, 0.18],
            [0.36, 0.28],
            [0.62, 0.62],
            [0.5, 0.8],
            [0.36, 0.66],
            [0.62, 0.3],
            [0.5, 0.18],
        ],
        _ => vec![
            [0.66, 0.34],
            [0.5, 0.22],
            [0.35, 0.34],
            [0.5, 0.48],
            [0.66, 0.38],
            [0.66, 0.6],
            [0.64, 0.8],
        ],
    }
}

fn sample(
    headless: &HeadlessViewer,
    report: &SoakReport,
    started: Instant,
    page_size: usize,
    phase: &'static str,
) -> SoakSample {
    let viewer = headless.viewer();
    let stored = viewer
        .store()
        .and_then(|s| s.store())
        .and_then(|s| s.stats().ok())
        .map_or(0, |s| s.predictions);
    SoakSample {
        frame: report.frames,
        seconds: started.elapsed().as_secs_f64(),
        rss_kib: resident_kib().unwrap_or(0),
        gpu_objects: viewer.gpu().and_then(|g| g.resource_count()).unwrap_or(0),
        stored,
        caches_full: stored >= page_size as u64,
        visitors: report.visitors,
        phase,
    }
}

/// The process's resident set from `/proc/self/statm` (pages × page size).
pub fn resident_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// Samples with the caches full a GPU verdict needs at least.
const GPU_JUDGED_SAMPLES: usize = 8;

/// Compares the second half of the run with the first, after a quarter of warm-up.
pub fn verdict(samples: &[SoakSample]) -> SoakVerdict {
    let n = samples.len();
    let mean_rss =
        |s: &[SoakSample]| s.iter().map(|x| x.rss_kib as i64).sum::<i64>() / s.len().max(1) as i64;
    let rss_growth_kib = if n < 8 {
        0
    } else {
        let quarter = |q: usize| &samples[q * n / 4..(q + 1) * n / 4];
        mean_rss(quarter(3)) - mean_rss(quarter(1))
    };
    // GPU objects: after warm-up and once the caches are full.
    let judged: Vec<&SoakSample> = samples[n / 4..].iter().filter(|s| s.caches_full).collect();
    let gpu_judged = judged.len() >= GPU_JUDGED_SAMPLES;
    let max_gpu = |s: &[&SoakSample]| s.iter().map(|x| x.gpu_objects as i64).max().unwrap_or(0);
    let gpu_object_growth = if gpu_judged {
        let half = judged.len() / 2;
        max_gpu(&judged[half..]) - max_gpu(&judged[..half])
    } else {
        0
    };
    SoakVerdict {
        rss_growth_kib,
        gpu_object_growth,
        gpu_judged,
        level: rss_growth_kib <= RSS_SLACK_KIB && gpu_object_growth <= 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(objects: impl Fn(usize) -> usize, full_from: usize, n: usize) -> SoakVerdict {
        let samples: Vec<SoakSample> = (0..n)
            .map(|i| SoakSample {
                frame: i as u64,
                seconds: i as f64,
                rss_kib: 100_000,
                gpu_objects: objects(i),
                stored: i as u64,
                caches_full: i >= full_from,
                visitors: 0,
                phase: "test",
            })
            .collect();
        verdict(&samples)
    }

    #[test]
    fn a_cache_filling_to_its_bound_is_not_a_leak() {
        // Objects grow by 2 per sample until the cache is full at sample 30, then stay.
        let filling = |i: usize| 500 + 2 * i.min(30);
        for n in [10, 20, 40, 200] {
            let v = run(filling, 30, n);
            assert!(v.level, "{n} samples: {v:?}");
        }
    }

    #[test]
    fn growth_with_full_caches_is_a_leak() {
        let leaking = |i: usize| 500 + i;
        let v = run(leaking, 0, 40);
        assert!(v.gpu_judged);
        assert!(!v.level, "{v:?}");
    }
}
