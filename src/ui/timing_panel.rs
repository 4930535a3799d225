//! How fast it runs: per-kernel GPU time from timestamp queries where the adapter has
//! them, and the CPU work per frame with a short history as a sparkline. Both are the
//! cost of a frame, not the time between frames (which an idle window stretches).

use std::collections::VecDeque;

use egui::{Color32, Sense, Stroke, Ui, Vec2};

use super::theme;
use super::view::{GpuTimes, OverlayView};

/// Frames kept for the sparkline and the averages (about four seconds at 60 FPS).
const HISTORY: usize = 240;

/// The CPU work of recent frames, in seconds.
#[derive(Clone, Debug, Default)]
pub struct FrameHistory {
    seconds: VecDeque<f32>,
}

impl FrameHistory {
    pub fn push(&mut self, seconds: f32) {
        if !seconds.is_finite() || seconds <= 0.0 {
            return;
        }
        if self.seconds.len() == HISTORY {
            self.seconds.pop_front();
        }
        self.seconds.push_back(seconds);
    }

    /// Mean CPU work per frame over the history.
    pub fn mean(&self) -> Option<f32> {
        (!self.seconds.is_empty())
            .then(|| self.seconds.iter().sum::<f32>() / self.seconds.len() as f32)
    }
}

pub fn show(ui: &mut Ui, view: &OverlayView, history: &FrameHistory) {
    match history.mean() {
        Some(mean) => {
            ui.label(
                egui::RichText::new(format!("CPU: {:.1} ms of work per frame", 1e3 * mean))
                    .strong(),
            );
        }
        None => {
            ui.label("CPU per frame: measuring…");
        }
    }
    sparkline(ui, history);
    if !view.adapter.is_empty() {
        ui.label(
            egui::RichText::new(view.adapter)
                .small()
                .color(theme::WEAK_TEXT),
        );
    }
    ui.add_space(4.0);
    match view.gpu_times {
        GpuTimes::Unavailable(why) => {
            ui.label(egui::RichText::new(format!("GPU kernels: {why}")).color(theme::WEAK_TEXT));
        }
        GpuTimes::Kernels(kernels) => {
            let total_ns: f64 = kernels.iter().map(|k| k.nanoseconds).sum();
            ui.label(format!(
                "GPU: {:.3} ms in {} kernels",
                total_ns / 1e6,
                kernels.len()
            ));
            let longest = kernels.iter().map(|k| k.nanoseconds).fold(0.0, f64::max);
            egui::Grid::new("cnnviz kernel times")
                .num_columns(3)
                .spacing([8.0, 2.0])
                .striped(true)
                .show(ui, |ui| {
                    for kernel in kernels {
                        ui.label(egui::RichText::new(&kernel.label).monospace().small());
                        let share = if longest > 0.0 {
                            (kernel.nanoseconds / longest) as f32
                        } else {
                            0.0
                        };
                        let (rect, _) =
                            ui.allocate_exact_size(Vec2::new(60.0, 8.0), Sense::hover());
                        let mut bar = rect;
                        bar.set_width(rect.width() * share);
                        ui.painter().rect_filled(bar, 2.0, theme::MUTED);
                        ui.label(
                            egui::RichText::new(format!("{:.3} ms", kernel.nanoseconds / 1e6))
                                .monospace()
                                .small(),
                        );
                        ui.end_row();
                    }
                });
        }
    }
}

/// Frame times as a line, newest on the right, with a 60 FPS guide.
fn sparkline(ui: &mut Ui, history: &FrameHistory) {
    let width = ui.available_width().min(320.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 36.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, Color32::from_rgb(16, 18, 23));
    let worst = history.seconds.iter().copied().fold(0.0f32, f32::max);
    if history.seconds.len() < 2 || worst <= 0.0 {
        return;
    }
    // The scale reaches at least 30 FPS, so a steady 60 FPS sits mid-height instead of
    // pinned to the top, and a spike stands out against it.
    let scale = worst.max(1.0 / 30.0) * 1.1;
    let guide = rect.bottom() - rect.height() * (1.0 / 60.0) / scale;
    painter.line_segment(
        [
            egui::pos2(rect.left(), guide),
            egui::pos2(rect.right(), guide),
        ],
        Stroke::new(1.0, Color32::from_rgb(52, 60, 72)),
    );
    let step = rect.width() / (HISTORY - 1) as f32;
    let start = HISTORY - history.seconds.len();
    let points: Vec<egui::Pos2> = history
        .seconds
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            egui::pos2(
                rect.left() + (start + i) as f32 * step,
                rect.bottom() - 2.0 - (rect.height() - 4.0) * s / scale,
            )
        })
        .collect();
    painter.line(points, Stroke::new(1.5, theme::ACCENT));
    response.on_hover_text(format!(
        "worst of the last {} frames: {:.1} ms",
        history.seconds.len(),
        1e3 * worst
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_newest_frames_and_ignores_nonsense() {
        let mut history = FrameHistory::default();
        history.push(f32::NAN);
        history.push(0.0);
        assert_eq!(history.mean(), None);
        for _ in 0..HISTORY {
            history.push(0.010);
        }
        for _ in 0..HISTORY {
            history.push(0.020);
        }
        assert!((history.mean().unwrap() - 0.020).abs() < 1e-6);
    }
}
