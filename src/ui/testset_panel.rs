//! "Where the model fails": the confusion matrix of the model on the MNIST test set beside
//! the one of the store's reported digits (the truth the visitor gave against the model's
//! prediction), so a kiosk's confusions can be compared with the test set's. Clicking a
//! cell lists its digits as thumbnails; clicking a thumbnail puts that digit on the canvas.
//! Cells are large enough to touch.

use std::collections::HashMap;

use egui::{Color32, ColorImage, Rect, RichText, Sense, Stroke, TextureHandle, Ui, Vec2};

use super::theme;

/// Which matrix a cell belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixSource {
    TestSet,
    Reports,
}

/// One confusion matrix: `counts[truth][predicted]`, or why there is none yet.
#[derive(Clone, Copy, Debug)]
pub enum MatrixView<'a> {
    Ready(&'a [Vec<usize>]),
    /// Still computing (`done` of `total` images).
    Computing {
        done: usize,
        total: usize,
    },
    /// Why it cannot be shown (no data set, no store…), one line.
    Unavailable(&'a str),
}

/// One digit of the selected cell: its key (test-set index or store record id) and its
/// 8-bit grey pixels, `side × side`, ink bright.
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    pub key: u64,
    pub pixels: Vec<u8>,
    pub side: usize,
}

/// What the panel shows this frame.
#[derive(Clone, Copy, Debug)]
pub struct TestSetView<'a> {
    pub labels: &'a [String],
    pub test_set: MatrixView<'a>,
    pub reports: MatrixView<'a>,
    /// The selected cell, `(source, truth, predicted)`.
    pub selected: Option<(MatrixSource, usize, usize)>,
    /// Digits of the selected cell (at most the first 60 are shown).
    pub thumbnails: &'a [Thumbnail],
    /// Touch-first sizes.
    pub large: bool,
}

/// What the person did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestSetEvent {
    SelectCell {
        source: MatrixSource,
        truth: usize,
        predicted: usize,
    },
    /// Put this digit (a thumbnail's key) on the canvas.
    Open { source: MatrixSource, key: u64 },
}

const MAX_THUMBNAILS: usize = 60;

/// Thumbnail textures, made once per digit shown.
#[derive(Default)]
pub struct TestSetPanel {
    textures: HashMap<(MatrixSource, u64), TextureHandle>,
}

impl TestSetPanel {
    pub fn show(&mut self, ui: &mut Ui, view: &TestSetView) -> Option<TestSetEvent> {
        let mut event = None;
        ui.horizontal_top(|ui| {
            for (source, title, matrix) in [
                (MatrixSource::TestSet, "MNIST test set", view.test_set),
                (MatrixSource::Reports, "Reported digits", view.reports),
            ] {
                ui.vertical(|ui| {
                    ui.label(RichText::new(title).strong().color(theme::TEXT));
                    if let Some(e) = matrix_grid(ui, view, source, matrix) {
                        event = Some(e);
                    }
                });
                ui.add_space(12.0);
            }
        });
        if let Some((source, truth, predicted)) = view.selected {
            ui.separator();
            let label = |c: usize| view.labels.get(c).map_or("?", String::as_str);
            ui.label(format!(
                "{} digits: truth {}, predicted {} ({} shown of {})",
                match source {
                    MatrixSource::TestSet => "Test-set",
                    MatrixSource::Reports => "Reported",
                },
                label(truth),
                label(predicted),
                view.thumbnails.len().min(MAX_THUMBNAILS),
                view.thumbnails.len()
            ));
            if let Some(e) = self.thumbnails(ui, source, view) {
                event = Some(e);
            }
        }
        // Textures of digits no longer listed are dropped: memory stays bounded.
        let shown: std::collections::HashSet<(MatrixSource, u64)> = view
            .selected
            .map(|(source, _, _)| {
                view.thumbnails
                    .iter()
                    .take(MAX_THUMBNAILS)
                    .map(|t| (source, t.key))
                    .collect()
            })
            .unwrap_or_default();
        self.textures.retain(|key, _| shown.contains(key));
        event
    }

    fn thumbnails(
        &mut self,
        ui: &mut Ui,
        source: MatrixSource,
        view: &TestSetView,
    ) -> Option<TestSetEvent> {
        let side = if view.large { 64.0 } else { 42.0 };
        let mut event = None;
        ui.horizontal_wrapped(|ui| {
            for thumb in view.thumbnails.iter().take(MAX_THUMBNAILS) {
                if thumb.pixels.len() != thumb.side * thumb.side {
                    continue;
                }
                let texture = self.textures.entry((source, thumb.key)).or_insert_with(|| {
                    let image = ColorImage::from_gray([thumb.side, thumb.side], &thumb.pixels);
                    ui.ctx().load_texture(
                        format!("cnnviz thumbnail {source:?} {}", thumb.key),
                        image,
                        egui::TextureOptions::NEAREST,
                    )
                });
                let button =
                    egui::Button::image(egui::Image::new((texture.id(), Vec2::splat(side))));
                if ui
                    .add(button)
                    .on_hover_text("Put this digit on the canvas")
                    .clicked()
                {
                    event = Some(TestSetEvent::Open {
                        source,
                        key: thumb.key,
                    });
                }
            }
        });
        event
    }
}

/// A 10×10 (classes × classes) grid of counts; the diagonal in the accent colour, errors
/// shaded by count. Returns the clicked cell.
fn matrix_grid(
    ui: &mut Ui,
    view: &TestSetView,
    source: MatrixSource,
    matrix: MatrixView,
) -> Option<TestSetEvent> {
    let counts = match matrix {
        MatrixView::Ready(counts) => counts,
        MatrixView::Computing { done, total } => {
            ui.label(RichText::new(format!("Computing… {done}/{total}")).color(theme::WEAK_TEXT));
            return None;
        }
        MatrixView::Unavailable(why) => {
            ui.label(RichText::new(why).color(theme::WEAK_TEXT));
            return None;
        }
    };
    let classes = counts.len();
    let cell = if view.large { 40.0 } else { 26.0 };
    let head = 18.0;
    let size = Vec2::new(head + classes as f32 * cell, head + classes as f32 * cell);
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let mut clicked = None;
    let painter = ui.painter_at(rect);
    let font = egui::FontId::proportional(if view.large { 14.0 } else { 11.0 });
    let worst = counts
        .iter()
        .enumerate()
        .flat_map(|(t, row)| row.iter().enumerate().filter(move |(p, _)| *p != t))
        .map(|(_, &n)| n)
        .max()
        .unwrap_or(0)
        .max(1);
    let label = |c: usize| view.labels.get(c).cloned().unwrap_or_else(|| c.to_string());
    for c in 0..classes {
        painter.text(
            rect.min + Vec2::new(head + (c as f32 + 0.5) * cell, head * 0.5),
            egui::Align2::CENTER_CENTER,
            label(c),
            font.clone(),
            theme::WEAK_TEXT,
        );
        painter.text(
            rect.min + Vec2::new(head * 0.5, head + (c as f32 + 0.5) * cell),
            egui::Align2::CENTER_CENTER,
            label(c),
            font.clone(),
            theme::WEAK_TEXT,
        );
    }
    for (truth, row) in counts.iter().enumerate() {
        for (predicted, &n) in row.iter().enumerate() {
            let min =
                rect.min + Vec2::new(head + predicted as f32 * cell, head + truth as f32 * cell);
            let r = Rect::from_min_size(min, Vec2::splat(cell - 1.0));
            let fill = if truth == predicted {
                theme::ACCENT.gamma_multiply(if n > 0 { 0.55 } else { 0.1 })
            } else if n > 0 {
                Color32::from_rgb(240, 100, 100).gamma_multiply(0.2 + 0.8 * n as f32 / worst as f32)
            } else {
                theme::SURFACE
            };
            painter.rect_filled(r, 2.0, fill);
            if view.selected == Some((source, truth, predicted)) {
                painter.rect_stroke(
                    r,
                    2.0,
                    Stroke::new(2.0, theme::TARGET),
                    egui::StrokeKind::Inside,
                );
            }
            if n > 0 {
                painter.text(
                    r.center(),
                    egui::Align2::CENTER_CENTER,
                    n.to_string(),
                    font.clone(),
                    theme::TEXT,
                );
            }
            // Each cell is a button of its own: clickable, touchable, and named for
            // screen readers and tests.
            let name = format!(
                "{source:?} truth {} predicted {}: {n}",
                label(truth),
                label(predicted)
            );
            let cell_response = ui
                .interact(
                    r,
                    ui.scope_id().with((source, truth, predicted)),
                    Sense::click(),
                )
                .on_hover_text(format!(
                    "true {}, predicted {}: {n} digits",
                    label(truth),
                    label(predicted)
                ));
            cell_response
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, name.clone()));
            if cell_response.clicked() {
                clicked = Some(TestSetEvent::SelectCell {
                    source,
                    truth,
                    predicted,
                });
            }
        }
    }
    response.on_hover_text("rows: true digit · columns: prediction");
    clicked
}
