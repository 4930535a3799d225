//! The pointer over the scene: the cube under it and that cube's value, read back once per
//! new cube or new inference (not every frame, so a resting pointer lets the window sleep).

use crate::scene::Pick;
use crate::ui::HoverInfo;

#[derive(Debug, Default)]
pub(super) struct Pointer {
    pub pick: Option<Pick>,
    pub hover: Option<HoverInfo>,
    /// The picked cube's value must be read (a new cube, or new values).
    pub value_due: bool,
}

impl Pointer {
    /// The cube now under the pointer, if any.
    pub fn point_at(&mut self, pick: Option<Pick>) {
        if pick.map(|p| p.instance) != self.pick.map(|p| p.instance) {
            self.hover = None;
            self.value_due = true;
        }
        self.pick = pick;
    }
}
