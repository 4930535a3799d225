//! "Report misclassification": pick the digit the drawing really is and, optionally, say
//! why. The reason is checked while typing with the store's own rule, so what the dialog
//! accepts the store accepts.

use egui::{Color32, RichText};

use crate::store::{MAX_REASON_CHARS, NewReport, ReportTarget, validate_reason};
use crate::ui::theme;

/// What the person submitted.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSubmission {
    pub true_digit: u8,
    pub reason: String,
    /// What the dialog was opened for ([`ReportDialog::open_for`]), to hand to
    /// `StoreWorker::report` with [`ReportSubmission::to_report`].
    pub target: Option<ReportTarget>,
}

impl ReportSubmission {
    /// The record to hand to `StoreWorker::report`, stamped with `time_ms`.
    pub fn to_report(&self, time_ms: u64) -> NewReport {
        NewReport {
            true_digit: self.true_digit,
            reason: self.reason.clone(),
            time_ms,
        }
    }
}

/// The dialog's state. Open it with [`ReportDialog::open`], call [`ReportDialog::show`]
/// every frame; it closes itself on submit or cancel.
#[derive(Clone, Debug, Default)]
pub struct ReportDialog {
    open: bool,
    predicted: Option<u16>,
    target: Option<ReportTarget>,
    digit: Option<u8>,
    reason: String,
}

impl ReportDialog {
    /// Opens a fresh dialog; `predicted` is what the model said, if known.
    pub fn open(&mut self, predicted: Option<u16>) {
        *self = ReportDialog {
            open: true,
            predicted,
            ..ReportDialog::default()
        };
    }

    /// Opens a fresh dialog about `target`: the drawing on the canvas as it was when the
    /// person pressed Report (`ReportTarget::New`, saved together with the report), or a
    /// saved prediction from the dashboard (`ReportTarget::Saved`). The submission carries
    /// it back, so the canvas may change while the dialog is open.
    pub fn open_for(&mut self, target: ReportTarget, predicted: Option<u16>) {
        self.open(predicted);
        self.target = Some(target);
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn close(&mut self) {
        self.open = false;
    }

    /// Submits the open dialog as if `true_digit` had been picked and Report pressed, for
    /// scripted use (`cnnviz soak`); `None` when the dialog is closed or would refuse it.
    pub fn submit_as(&mut self, true_digit: u8) -> Option<ReportSubmission> {
        if !self.open {
            return None;
        }
        self.digit = Some(true_digit);
        if self.problem().is_some() {
            return None;
        }
        self.open = false;
        Some(ReportSubmission {
            true_digit,
            reason: self.reason.clone(),
            target: self.target.clone(),
        })
    }

    /// Why the Report button is disabled, if it is.
    fn problem(&self) -> Option<String> {
        if let Err(why) = validate_reason(&self.reason) {
            return Some(why);
        }
        match (self.digit, self.predicted) {
            (None, _) => Some("Pick the digit it really is.".into()),
            (Some(d), Some(p)) if u16::from(d) == p => Some(format!(
                "The model said {p} too: pick the digit it really is."
            )),
            _ => None,
        }
    }

    /// Shows the dialog if open; returns the submission the frame it is made.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<ReportSubmission> {
        if !self.open {
            return None;
        }
        let mut open = true;
        let mut submitted = None;
        let mut cancelled = false;
        egui::Window::new("Report misclassification")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(360.0)
            .show(ctx, |ui| {
                match self.predicted {
                    Some(p) => ui.label(format!("The model said {p}. What digit is it really?")),
                    None => ui.label("What digit is it really?"),
                };
                ui.horizontal_wrapped(|ui| {
                    for d in 0..10u8 {
                        let chosen = self.digit == Some(d);
                        let button = egui::Button::new(RichText::new(d.to_string()).heading())
                            .selected(chosen)
                            .min_size(egui::vec2(32.0, 32.0));
                        if ui.add(button).clicked() {
                            self.digit = Some(d);
                        }
                    }
                });
                ui.add_space(6.0);
                let label = ui.label("Reason (optional)");
                ui.add(
                    egui::TextEdit::multiline(&mut self.reason)
                        .char_limit(MAX_REASON_CHARS)
                        .desired_rows(3)
                        .desired_width(f32::INFINITY)
                        .hint_text("What makes it that digit?"),
                )
                .labelled_by(label.id);
                let count = self.reason.chars().count();
                ui.label(
                    RichText::new(format!("{count} / {MAX_REASON_CHARS} characters"))
                        .small()
                        .color(theme::WEAK_TEXT),
                );
                let problem = self.problem();
                if let Some(text) = &problem {
                    // Only a bad reason is an error; a missing digit is just the next step.
                    let colour = if validate_reason(&self.reason).is_err() {
                        theme::ERROR
                    } else {
                        Color32::from_gray(170)
                    };
                    ui.label(RichText::new(text).color(colour));
                }
                ui.horizontal(|ui| {
                    let ready = problem.is_none();
                    if ui.add_enabled(ready, egui::Button::new("Report")).clicked()
                        && let Some(true_digit) = self.digit
                    {
                        submitted = Some(ReportSubmission {
                            true_digit,
                            reason: self.reason.clone(),
                            target: self.target.clone(),
                        });
                    }
                    if ui.button("Cancel").clicked() {
                        cancelled = true;
                    }
                });
            });
        if !open || cancelled || submitted.is_some() {
            self.open = false;
        }
        submitted
    }
}
