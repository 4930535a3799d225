//! The viewer's side of the explanation worker: which explanations the window wants for
//! the drawing on the canvas (the Explain panel's method, and the open grid's tiles), what
//! has been asked of the worker for the current input generation, and the last answer
//! for each request. Answers carry the generation they were computed for; one of an
//! earlier drawing stays shown, marked "Computing…", until the current one arrives.

use std::sync::Arc;

use crate::app::explain_worker::{ExplainResult, ExplainWorker};
use crate::explain::{ExplainRequest, Explained, Method};
use crate::gpu::CamTarget;
use crate::ui::{ExplainGrid, GridTile, MapView};

/// What the person chose, as far as explanations go.
#[derive(Clone, Copy, Debug)]
pub(super) struct Choice {
    pub method: Method,
    pub target: CamTarget,
    /// `None`: the model has no conv block.
    pub block: Option<usize>,
    pub classes: usize,
    /// The chosen method's map is on ("show").
    pub show: bool,
}

pub(super) struct Explanations {
    pub grid: Option<ExplainGrid>,
    /// The last answer per request, newest generation last asked.
    answers: Vec<ExplainResult>,
    /// The generation the worker was last given jobs for, its input, and those jobs.
    asked: Option<(u64, Arc<Vec<f32>>)>,
    asked_for: Vec<ExplainRequest>,
    /// Which answer's maps the CAM buffer holds for the scene (another method than
    /// Grad-CAM): its generation and request.
    pub tint: Option<(u64, ExplainRequest)>,
}

impl Default for Explanations {
    /// No grid, nothing asked yet.
    fn default() -> Self {
        Explanations {
            grid: None,
            answers: Vec::new(),
            asked: None,
            asked_for: Vec::new(),
            tint: None,
        }
    }
}

impl Explanations {
    /// The Explain panel's request, when the model can answer it.
    pub fn chosen(&self, choice: &Choice) -> Option<ExplainRequest> {
        let request = base(choice);
        runnable(request, choice).then_some(request)
    }

    /// The open grid's tiles, in the order they are shown (those the model can answer).
    pub fn grid_requests(&self, choice: &Choice) -> Vec<ExplainRequest> {
        let base = base(choice);
        let requests: Vec<ExplainRequest> = match self.grid {
            None => Vec::new(),
            Some(ExplainGrid::Methods) => Method::ALL
                .into_iter()
                .map(|method| ExplainRequest { method, ..base })
                .collect(),
            // Only the maps: the curves cost a batched forward each.
            Some(ExplainGrid::Classes) => (0..choice.classes)
                .map(|c| ExplainRequest {
                    class: Some(c),
                    faithfulness: false,
                    ..base
                })
                .chain(std::iter::once(ExplainRequest {
                    counterfactual: true,
                    faithfulness: false,
                    ..base
                }))
                .collect(),
        };
        requests
            .into_iter()
            .filter(|r| runnable(*r, choice))
            .collect()
    }

    /// Everything wanted now, the panel's request first.
    fn wanted(&self, choice: &Choice) -> Vec<ExplainRequest> {
        let mut wanted: Vec<ExplainRequest> = self
            .chosen(choice)
            .filter(|_| choice.show)
            .into_iter()
            .collect();
        for request in self.grid_requests(choice) {
            if !wanted.contains(&request) {
                wanted.push(request);
            }
        }
        wanted
    }

    /// Hands the worker what the current generation still needs. `input` is the
    /// normalised model input of the drawing, `None` for an empty canvas (then the queue
    /// is dropped).
    pub fn ask(
        &mut self,
        worker: &ExplainWorker,
        generation: u64,
        input: Option<Vec<f32>>,
        choice: &Choice,
    ) {
        let Some(input) = input else {
            worker.cancel(generation);
            self.asked = None;
            self.asked_for.clear();
            return;
        };
        let input = match &self.asked {
            Some((asked, input)) if *asked == generation => input.clone(),
            _ => {
                self.asked_for.clear();
                let input = Arc::new(input);
                self.asked = Some((generation, input.clone()));
                input
            }
        };
        let new: Vec<ExplainRequest> = self
            .wanted(choice)
            .into_iter()
            .filter(|r| !self.asked_for.contains(r) && !self.has_current(r, generation))
            .collect();
        if !new.is_empty() {
            worker.submit(generation, &input, &new);
            self.asked_for.extend(new);
        }
    }

    /// Whether the generation's input must be given again (`ask` needs it only then).
    pub fn needs_input(&self, generation: u64) -> bool {
        !matches!(&self.asked, Some((asked, _)) if *asked == generation)
    }

    /// A new worker (a rebuilt GPU side): nothing is asked of it yet, nothing tinted.
    pub fn worker_replaced(&mut self) {
        self.asked = None;
        self.asked_for.clear();
        self.tint = None;
    }

    /// Keeps what came back; returns the current generation's failures (for the status
    /// line).
    pub fn receive(&mut self, results: Vec<ExplainResult>, generation: u64) -> Vec<String> {
        let mut failures = Vec::new();
        for result in results {
            if let Err(why) = &result.outcome
                && result.generation == generation
            {
                failures.push(why.clone());
            }
            self.answers.retain(|a| a.request != result.request);
            self.answers.push(result);
        }
        failures
    }

    fn has_current(&self, request: &ExplainRequest, generation: u64) -> bool {
        self.answers
            .iter()
            .any(|a| a.request == *request && a.generation == generation)
    }

    /// The last answer to `request`, marked current or not.
    pub fn answer(&self, request: &ExplainRequest, generation: u64) -> Option<MapView<'_>> {
        self.answers
            .iter()
            .find(|a| a.request == *request)
            .map(|a| MapView {
                result: a.outcome.as_ref().map_err(String::as_str),
                generation: a.generation,
                current: a.generation == generation,
            })
    }

    /// The current generation's answer to `request`, if it came back and succeeded.
    pub fn current(&self, request: &ExplainRequest, generation: u64) -> Option<&Explained> {
        self.answers
            .iter()
            .find(|a| a.request == *request && a.generation == generation)
            .and_then(|a| a.outcome.as_ref().ok())
    }

    /// The open grid's tiles with their last answers.
    pub fn tiles(&self, choice: &Choice, generation: u64) -> Vec<GridTile<'_>> {
        self.grid_requests(choice)
            .into_iter()
            .map(|request| GridTile {
                request,
                map: self.answer(&request, generation),
            })
            .collect()
    }
}

/// The chosen method for the chosen class at the chosen block, with its curves.
fn base(choice: &Choice) -> ExplainRequest {
    ExplainRequest {
        method: choice.method,
        class: match choice.target {
            CamTarget::Predicted => None,
            CamTarget::Class(c) => Some(c),
        },
        counterfactual: false,
        block: choice.block,
        faithfulness: true,
    }
}

/// Whether the model can answer `request` (a block method needs a conv block).
fn runnable(request: ExplainRequest, choice: &Choice) -> bool {
    !(request.method.uses_block() && choice.block.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice() -> Choice {
        Choice {
            method: Method::Occlusion,
            target: CamTarget::Predicted,
            block: Some(1),
            classes: 10,
            show: true,
        }
    }

    #[test]
    fn the_grids_ask_for_every_method_or_every_class_and_the_counterfactual() {
        let mut e = Explanations {
            grid: Some(ExplainGrid::Methods),
            ..Explanations::default()
        };
        let methods = e.grid_requests(&choice());
        assert_eq!(methods.len(), 15);
        assert!(methods.iter().all(|r| r.faithfulness && r.class.is_none()));
        e.grid = Some(ExplainGrid::Classes);
        let classes = e.grid_requests(&choice());
        assert_eq!(classes.len(), 11);
        assert!(classes.iter().all(|r| r.method == Method::Occlusion));
        assert_eq!(classes.iter().filter(|r| r.counterfactual).count(), 1);
        // A model without conv blocks: only the methods that need none.
        let no_blocks = Choice {
            block: None,
            ..choice()
        };
        e.grid = Some(ExplainGrid::Methods);
        let methods = e.grid_requests(&no_blocks);
        assert!(!methods.is_empty() && methods.iter().all(|r| !r.method.uses_block()));
    }

    #[test]
    fn an_answer_of_an_earlier_drawing_is_shown_as_not_current() {
        let mut e = Explanations::default();
        let request = e.chosen(&choice()).unwrap();
        let failures = e.receive(
            vec![ExplainResult {
                generation: 3,
                request,
                outcome: Err("no".into()),
            }],
            4,
        );
        assert!(failures.is_empty(), "an old failure is not news");
        let shown = e.answer(&request, 4).unwrap();
        assert!(!shown.current && shown.generation == 3);
        assert!(e.current(&request, 4).is_none());
    }
}
