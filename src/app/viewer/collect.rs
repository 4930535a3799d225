//! Phase 6 of a frame: collect what came back from earlier frames (the inference results
//! with their generation, explanations, re-run results, the hovered value, kernel
//! timings). Never waits:
//! one non-blocking poll, then whatever has arrived. A failed readback is said on the
//! status line and asked for again; the window goes on.

use super::Viewer;
use crate::scene::Pick;
use crate::ui::{HoverInfo, StatusLevel};

/// What collecting found.
pub(super) struct Collected {
    /// Something arrived after this frame was drawn: it needs one more frame to show.
    pub arrived: bool,
    /// Something is still on its way.
    pub waiting: bool,
}

impl Viewer {
    pub(super) fn collect_readbacks(&mut self, hovered_copy: bool) -> Collected {
        let Some(session) = self.session.as_mut() else {
            return Collected {
                arrived: false,
                waiting: false,
            };
        };
        let mut arrived = session.collect_timings();
        let _ = session.gpu.device.poll(wgpu::PollType::Poll);
        arrived |= session.collect_timings();
        let mut waiting =
            session.outputs.in_flight() || session.reruns.busy() || session.timings_in_flight();
        let mut failures = Vec::new();
        match session.take_outputs() {
            Ok(Some((generation, output))) => {
                self.generations.arrived(generation, output);
                arrived = true;
            }
            Ok(None) => {}
            Err(e) => {
                self.generations.copy_lost();
                failures.push(format!(
                    "Reading the prediction back failed ({e}); retrying."
                ));
            }
        }
        if let Ok(worker) = session.explain.as_mut() {
            let results = worker.take();
            // Not `waiting`: a job may take seconds, and the worker wakes the window itself
            // when it answers, so the window need not spin meanwhile.
            arrived |= !results.is_empty();
            failures.extend(
                self.explanations
                    .receive(results, self.generations.current()),
            );
        }
        // An open inspector waiting for its copy keeps frames coming until it arrives.
        waiting |= session.inspected.in_flight()
            || self
                .inspector
                .as_ref()
                .is_some_and(|i| i.due && self.current_input.is_some());
        match session.inspected.try_take(&self.model) {
            Ok(Some(Ok(unit))) => {
                if let Some(inspector) = self.inspector.as_mut() {
                    arrived |= inspector.receive(unit);
                }
            }
            Ok(Some(Err(e))) => failures.push(format!("The inspector: {e}")),
            Ok(None) => {}
            Err(e) => log::warn!("inspected unit readback: {e}"),
        }
        let reruns = session.reruns.try_take();
        let hovered = session.hovered.try_take();
        match hovered {
            Ok(Some(v)) => {
                if let Some(pick) = self
                    .pointer
                    .pick
                    .filter(|p| p.activation == v.activation && p.element_index == v.element)
                {
                    self.pointer.hover = Some(self.hover_info(&pick, v.value));
                    arrived = true;
                }
            }
            Ok(None) => waiting |= hovered_copy,
            Err(e) => log::warn!("hovered value readback: {e}"),
        }
        match reruns {
            Ok(results) => {
                arrived |= !results.is_empty();
                for (id, output) in results {
                    let result = crate::ui::dashboard::RerunResult::from_output(
                        &output,
                        &self.model.architecture.name,
                    );
                    if let Some(store) = self.store.as_mut() {
                        store.dashboard.set_rerun_result(id, result);
                    }
                }
            }
            Err(e) => failures.push(format!("A re-run failed: {e}")),
        }
        for why in failures {
            self.say(StatusLevel::Warning, why);
        }
        Collected { arrived, waiting }
    }

    fn hover_info(&self, pick: &Pick, value: f32) -> HoverInfo {
        let layout = self.session.as_ref().map(|s| s.network.layout());
        let slot = layout.and_then(|l| l.slots.get(pick.activation));
        let is_map = matches!(slot.map(|s| s.shape), Some(crate::model::Shape::Map { .. }));
        HoverInfo {
            layer: slot.map(|s| s.name.clone()).unwrap_or_default(),
            channel: is_map.then_some(pick.channel),
            position: if is_map {
                [pick.y, pick.x]
            } else {
                [0, pick.element_index]
            },
            value,
        }
    }
}
