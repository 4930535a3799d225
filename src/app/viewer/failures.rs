//! The failure view's state in the viewer: the test-set survey (computed on its own thread
//! the first time the view opens, then cached on disk), the store's reports matrix, the
//! selected cell and its digits. Opening a digit puts it on the canvas like a drawing.

use crate::app::survey_worker::{SurveyStatus, SurveyWorker};
use crate::data::preprocess::InkImage;
use crate::store::PredictionStore;
use crate::ui::testset_panel::{MatrixSource, MatrixView, TestSetEvent, TestSetView, Thumbnail};

/// Digits listed for a selected cell.
const CELL_DIGITS: usize = 60;

pub(super) struct FailureState {
    survey: SurveyWorker,
    /// The reports' matrix, or why there is none.
    reports: Result<Vec<Vec<usize>>, String>,
    selected: Option<(MatrixSource, usize, usize)>,
    thumbnails: Vec<Thumbnail>,
    /// Test-set digits of the selected cell (all of them; thumbnails show the first few).
    cell_total: usize,
}

/// What an event asks of the viewer besides the view's own state.
pub(super) enum FailureAction {
    None,
    /// Put this ink on the canvas.
    Open(InkImage),
    Say(String),
}

impl FailureState {
    pub fn open(survey: SurveyWorker, store: Option<&PredictionStore>) -> FailureState {
        FailureState {
            survey,
            reports: reports_of(store),
            selected: None,
            thumbnails: Vec::new(),
            cell_total: 0,
        }
    }

    pub fn view<'a>(
        &'a self,
        labels: &'a [String],
        large: bool,
        status: &'a SurveyStatus,
    ) -> TestSetView<'a> {
        let test_set = match status {
            SurveyStatus::Running { done, total } => MatrixView::Computing {
                done: *done,
                total: *total,
            },
            SurveyStatus::Ready(data) => MatrixView::Ready(data.confusion.as_slice()),
            SurveyStatus::Failed(why) => MatrixView::Unavailable(why),
        };
        TestSetView {
            labels,
            test_set,
            reports: match &self.reports {
                Ok(matrix) => MatrixView::Ready(matrix),
                Err(why) => MatrixView::Unavailable(why),
            },
            selected: self.selected,
            thumbnails: &self.thumbnails,
            large,
        }
    }

    pub fn status(&self) -> SurveyStatus {
        self.survey.status()
    }

    pub fn apply(&mut self, event: TestSetEvent, store: Option<&PredictionStore>) -> FailureAction {
        match event {
            TestSetEvent::SelectCell {
                source,
                truth,
                predicted,
            } => {
                self.selected = Some((source, truth, predicted));
                self.thumbnails.clear();
                match source {
                    MatrixSource::TestSet => {
                        let SurveyStatus::Ready(data) = self.survey.status() else {
                            return FailureAction::None;
                        };
                        let cell = data.survey.cell(truth, predicted);
                        self.cell_total = cell.len();
                        self.thumbnails = cell
                            .iter()
                            .take(CELL_DIGITS)
                            .map(|&i| Thumbnail {
                                key: i as u64,
                                pixels: data.data.image(i).to_vec(),
                                side: data.data.rows,
                            })
                            .collect();
                    }
                    MatrixSource::Reports => {
                        self.reports = reports_of(store);
                        let Some(store) = store else {
                            return FailureAction::None;
                        };
                        match store.reported_cell(truth, predicted, CELL_DIGITS) {
                            Ok(items) => {
                                self.thumbnails = items
                                    .into_iter()
                                    .filter(|i| i.thumbnail.width == i.thumbnail.height)
                                    .map(|i| Thumbnail {
                                        key: i.summary.id.0,
                                        side: i.thumbnail.width as usize,
                                        pixels: i.thumbnail.pixels,
                                    })
                                    .collect();
                                self.cell_total = self.thumbnails.len();
                            }
                            Err(e) => {
                                return FailureAction::Say(format!(
                                    "Reading the reports failed: {e}"
                                ));
                            }
                        }
                    }
                }
                FailureAction::None
            }
            TestSetEvent::Open { source, key } => match source {
                MatrixSource::TestSet => {
                    let SurveyStatus::Ready(data) = self.survey.status() else {
                        return FailureAction::None;
                    };
                    let Some(pixels) = usize::try_from(key)
                        .ok()
                        .filter(|&i| i < data.data.len())
                        .map(|i| data.data.image(i))
                    else {
                        return FailureAction::None;
                    };
                    let ink: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
                    FailureAction::Open(InkImage::new(data.data.cols, data.data.rows, ink))
                }
                MatrixSource::Reports => {
                    let Some(store) = store else {
                        return FailureAction::None;
                    };
                    match store
                        .get(crate::store::PredictionId(key))
                        .map(|p| p.map(|p| p.drawing()))
                    {
                        Ok(Some(Ok(drawing))) => FailureAction::Open(drawing.to_ink_image()),
                        Ok(Some(Err(e))) | Err(e) => {
                            FailureAction::Say(format!("That digit could not be read: {e}"))
                        }
                        Ok(None) => {
                            FailureAction::Say("That digit is no longer in the store.".into())
                        }
                    }
                }
            },
        }
    }
}

fn reports_of(store: Option<&PredictionStore>) -> Result<Vec<Vec<usize>>, String> {
    match store {
        Some(store) => store
            .report_confusion()
            .map_err(|e| format!("Reading the reports failed: {e}")),
        None => Err("No store is open, so there are no reports.".into()),
    }
}
