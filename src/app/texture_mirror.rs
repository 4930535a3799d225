//! A CPU copy of every texture egui has asked the renderer to hold. egui sends each texture
//! (the font atlas above all) once and then only patches; after a lost GPU device the new
//! renderer has none of them, so the mirror replays them in full.

use std::collections::HashMap;
use std::sync::Arc;

use egui::epaint::{ImageData, ImageDelta};
use egui::{ColorImage, TextureId, TextureOptions, TexturesDelta};

#[derive(Default)]
pub struct TextureMirror {
    textures: HashMap<TextureId, (Arc<ColorImage>, TextureOptions)>,
}

impl TextureMirror {
    /// Follows one frame's uploads (call before the frees of the same frame are applied).
    pub fn record_uploads(&mut self, delta: &TexturesDelta) {
        for (id, deltas) in &delta.set {
            for image_delta in deltas {
                self.apply(*id, image_delta);
            }
        }
    }

    /// Forgets the textures egui freed this frame.
    pub fn record_frees(&mut self, delta: &TexturesDelta) {
        for id in &delta.free {
            self.textures.remove(id);
        }
    }

    fn apply(&mut self, id: TextureId, delta: &ImageDelta) {
        let ImageData::Color(patch) = &delta.image;
        match delta.pos {
            None => {
                self.textures.insert(id, (patch.clone(), delta.options));
            }
            Some([x0, y0]) => {
                let Some((image, options)) = self.textures.get_mut(&id) else {
                    return; // a patch of a texture never seen whole: nothing to patch
                };
                *options = delta.options;
                let image = Arc::make_mut(image);
                let [width, height] = image.size;
                for y in 0..patch.size[1] {
                    for x in 0..patch.size[0] {
                        let (tx, ty) = (x0 + x, y0 + y);
                        if tx < width && ty < height {
                            image.pixels[ty * width + tx] = patch.pixels[y * patch.size[0] + x];
                        }
                    }
                }
            }
        }
    }

    /// Every texture as a whole-image upload, for a fresh renderer.
    pub fn full_uploads(&self) -> Vec<(TextureId, ImageDelta)> {
        self.textures
            .iter()
            .map(|(id, (image, options))| (*id, ImageDelta::full(image.clone(), *options)))
            .collect()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.textures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::Color32;

    fn image(width: usize, height: usize, colour: Color32) -> ColorImage {
        ColorImage::new([width, height], vec![colour; width * height])
    }

    #[test]
    fn patches_land_in_the_whole_image_and_frees_forget() {
        let id = TextureId::Managed(0);
        let mut mirror = TextureMirror::default();
        let mut delta = TexturesDelta::default();
        delta.set.insert(
            id,
            [ImageDelta::full(
                image(4, 3, Color32::BLACK),
                TextureOptions::LINEAR,
            )]
            .into(),
        );
        mirror.record_uploads(&delta);
        let mut patch = TexturesDelta::default();
        patch.set.insert(
            id,
            [ImageDelta::partial(
                [2, 1],
                image(3, 1, Color32::WHITE),
                TextureOptions::LINEAR,
            )]
            .into(),
        );
        mirror.record_uploads(&patch);
        let uploads = mirror.full_uploads();
        assert_eq!(uploads.len(), 1);
        let ImageData::Color(whole) = &uploads[0].1.image;
        assert!(uploads[0].1.pos.is_none());
        let white: Vec<usize> = (0..12)
            .filter(|&i| whole.pixels[i] == Color32::WHITE)
            .collect();
        // Row 1, columns 2 and 3; the patch's third column falls outside and is dropped.
        assert_eq!(white, vec![6, 7]);

        let mut free = TexturesDelta::default();
        free.free.insert(id);
        mirror.record_frees(&free);
        assert!(mirror.is_empty());
    }
}
