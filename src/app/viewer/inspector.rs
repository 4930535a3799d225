//! The unit inspector's state in the viewer: which cube was clicked, whether its source
//! activation must be read (a new click, or a new inference of a new drawing), and the
//! arithmetic that came back with the generation it belongs to. The overlay shows the
//! arithmetic only for the canvas's generation, else "Computing…".

use crate::inspect::{InspectedUnit, UnitTag, source_activation};
use crate::model::Model;
use crate::scene::Pick;
use crate::ui::inspector_panel::InspectorView;

pub(super) struct InspectorState {
    pub pick: Pick,
    title: String,
    source: String,
    /// A copy of the source activation must be recorded.
    pub due: bool,
    /// The last arithmetic that came back.
    shown: Option<InspectedUnit>,
}

impl InspectorState {
    /// The inspector for a clicked cube, titled like the hover line.
    pub fn open(model: &Model, pick: Pick, names: &[String]) -> InspectorState {
        let name = names.get(pick.activation).cloned().unwrap_or_default();
        let is_map = matches!(
            model.activation_shapes().get(pick.activation),
            Some(crate::model::Shape::Map { .. })
        );
        let title = if is_map {
            format!(
                "{name} · channel {} · row {}, col {}",
                pick.channel, pick.y, pick.x
            )
        } else {
            format!("{name} · unit {}", pick.element_index)
        };
        let source = source_activation(model, pick.activation)
            .and_then(|s| names.get(s).cloned())
            .unwrap_or_default();
        InspectorState {
            pick,
            title,
            source,
            due: true,
            shown: None,
        }
    }

    /// The tag of the copy to record now, for `generation`'s inference; `gradient_from`:
    /// the lowest activation the inference's Grad-CAM backward pass wrote gradients for.
    pub fn tag(&self, generation: u64, gradient_from: Option<usize>) -> UnitTag {
        UnitTag {
            generation,
            activation: self.pick.activation,
            element: self.pick.element_index,
            gradient: gradient_from.is_some_and(|lowest| self.pick.activation >= lowest),
        }
    }

    /// An arithmetic came back; kept only if it is this unit's.
    pub fn receive(&mut self, unit: InspectedUnit) -> bool {
        let mine = unit.tag.activation == self.pick.activation
            && unit.tag.element == self.pick.element_index;
        if mine {
            self.shown = Some(unit);
        }
        mine
    }

    /// What the overlay shows: the arithmetic only when it belongs to `generation`;
    /// `class` names the class Grad-CAM explained, for the gradient's line.
    pub fn view<'a>(&'a self, generation: Option<u64>, class: &'a str) -> InspectorView<'a> {
        let unit = self
            .shown
            .as_ref()
            .filter(|u| Some(u.tag.generation) == generation);
        InspectorView {
            title: &self.title,
            source: &self.source,
            arithmetic: unit.map(|u| &u.arithmetic),
            gradient: unit.and_then(|u| u.gradient).map(|g| (g, class)),
            picture: None,
        }
    }
}
