//! Strokes as vector polylines, rasterised into an [`InkImage`] with an anti-aliased round
//! brush. Points are kept in canvas-relative coordinates (0..1 on both axes), so the drawing
//! survives a resize or a change of display scale, and the raster has a fixed resolution, so
//! the same gesture gives the same model input on every screen.

use crate::data::preprocess::InkImage;

/// Side of the square raster in pixels: ten times MNIST's 28, enough for a smooth
/// anti-aliased stroke before `mnist_input` shrinks it.
pub const RESOLUTION: usize = 280;

/// One stroke: a polyline with a round brush of `width` (a fraction of the canvas side).
#[derive(Clone, Debug, PartialEq)]
pub struct Stroke {
    /// Canvas-relative points, `[x, y]` in 0..1, y down.
    pub points: Vec<[f32; 2]>,
    /// Brush diameter as a fraction of the canvas side.
    pub width: f32,
}

/// The ink of all strokes at [`RESOLUTION`], kept up to date incrementally: appending to a
/// stroke stamps only the new segments (ink is a maximum, so order does not matter), and
/// only removing strokes rebuilds it.
#[derive(Clone, Debug)]
pub struct Raster {
    side: usize,
    /// Ink of a loaded picture underneath the strokes, if any.
    base: Option<Vec<f32>>,
    pixels: Vec<f32>,
}

impl Default for Raster {
    fn default() -> Self {
        Raster::new(RESOLUTION)
    }
}

impl Raster {
    pub fn new(side: usize) -> Raster {
        Raster {
            side,
            base: None,
            pixels: vec![0.0; side * side],
        }
    }

    pub fn side(&self) -> usize {
        self.side
    }

    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    pub fn has_base(&self) -> bool {
        self.base.is_some()
    }

    /// A copy as the preprocessing input.
    pub fn ink(&self) -> InkImage {
        InkImage::new(self.side, self.side, self.pixels.clone())
    }

    /// Puts a picture under the strokes (a saved digit being re-run, or attract mode's
    /// MNIST digits), resampled bilinearly to the raster's resolution.
    pub fn set_base(&mut self, image: &InkImage) {
        self.base = Some(resample(image, self.side));
    }

    /// Forgets the picture and every stroke.
    pub fn clear(&mut self) {
        self.base = None;
        self.pixels.fill(0.0);
    }

    /// Redraws from scratch: the base, then every stroke.
    pub fn rebuild(&mut self, strokes: &[Stroke]) {
        match &self.base {
            Some(base) => self.pixels.copy_from_slice(base),
            None => self.pixels.fill(0.0),
        }
        for stroke in strokes {
            self.stamp(stroke, 0);
        }
    }

    /// Stamps the segments of `stroke` that end at point `from` or later: call with the
    /// number of points already stamped (0 for a new stroke).
    pub fn stamp(&mut self, stroke: &Stroke, from: usize) {
        let scale = self.side as f32;
        let radius = 0.5 * stroke.width * scale;
        let at = |p: [f32; 2]| [p[0] * scale, p[1] * scale];
        match stroke.points.len() {
            0 => {}
            1 => {
                let p = at(stroke.points[0]);
                self.segment(p, p, radius);
            }
            n => {
                for i in from.max(1)..n {
                    self.segment(at(stroke.points[i - 1]), at(stroke.points[i]), radius);
                }
            }
        }
    }

    /// Ink of a capsule (segment `a`–`b`, radius `radius`, in raster pixels) with one pixel
    /// of linear falloff at its edge: the anti-aliasing. Only the capsule's bounding box is
    /// visited, so a stroke costs its area, not the canvas's.
    fn segment(&mut self, a: [f32; 2], b: [f32; 2], radius: f32) {
        let reach = radius + 1.0;
        let bound = |lo: f32, hi: f32| -> (usize, usize) {
            let first = (lo - reach).floor().max(0.0) as usize;
            let last = ((hi + reach).ceil().max(0.0) as usize).min(self.side);
            (first, last)
        };
        let (x0, x1) = bound(a[0].min(b[0]), a[0].max(b[0]));
        let (y0, y1) = bound(a[1].min(b[1]), a[1].max(b[1]));
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let length2 = dx * dx + dy * dy;
        for y in y0..y1 {
            for x in x0..x1 {
                // Pixel centres sit at half-integers.
                let (px, py) = (x as f32 + 0.5 - a[0], y as f32 + 0.5 - a[1]);
                let t = if length2 > 0.0 {
                    ((px * dx + py * dy) / length2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (ex, ey) = (px - t * dx, py - t * dy);
                let coverage = (radius + 0.5 - (ex * ex + ey * ey).sqrt()).clamp(0.0, 1.0);
                let pixel = &mut self.pixels[y * self.side + x];
                *pixel = pixel.max(coverage);
            }
        }
    }
}

/// Bilinear resample of `image` to `side × side` (half-pixel centres), stretching to the
/// square: pictures loaded onto the canvas are model inputs or drawings, already square.
fn resample(image: &InkImage, side: usize) -> Vec<f32> {
    let (w, h) = (image.width.max(1), image.height.max(1));
    let at = |x: usize, y: usize| image.pixels.get(y * w + x).copied().unwrap_or(0.0);
    let mut out = vec![0.0; side * side];
    for oy in 0..side {
        let sy = ((oy as f32 + 0.5) * h as f32 / side as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(h - 1);
        for ox in 0..side {
            let sx = ((ox as f32 + 0.5) * w as f32 / side as f32 - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(w - 1);
            let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
            let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
            out[oy * side + ox] = (top * (1.0 - fy) + bottom * fy).clamp(0.0, 1.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink_at(raster: &Raster, x: usize, y: usize) -> f32 {
        raster.pixels()[y * raster.side() + x]
    }

    #[test]
    fn a_segment_inks_its_capsule_and_nothing_else() {
        let mut raster = Raster::new(100);
        let stroke = Stroke {
            points: vec![[0.2, 0.5], [0.8, 0.5]],
            width: 0.1, // radius 5 px
        };
        raster.stamp(&stroke, 0);
        assert_eq!(ink_at(&raster, 50, 50), 1.0);
        assert_eq!(ink_at(&raster, 50, 53), 1.0);
        assert_eq!(ink_at(&raster, 50, 60), 0.0);
        assert_eq!(ink_at(&raster, 10, 50), 0.0);
        // The edge is anti-aliased: some pixel is partly covered.
        assert!(raster.pixels().iter().any(|&v| v > 0.05 && v < 0.95));
    }

    #[test]
    fn a_tap_is_a_dot() {
        let mut raster = Raster::new(100);
        raster.stamp(
            &Stroke {
                points: vec![[0.5, 0.5]],
                width: 0.1,
            },
            0,
        );
        assert_eq!(ink_at(&raster, 50, 50), 1.0);
        let inked = raster.pixels().iter().filter(|&&v| v > 0.5).count();
        assert!((70..=90).contains(&inked), "{inked} pixels"); // π·5² ≈ 79
    }

    #[test]
    fn incremental_stamping_equals_a_rebuild() {
        let mut stroke = Stroke {
            points: vec![[0.1, 0.1], [0.3, 0.4]],
            width: 0.05,
        };
        let mut incremental = Raster::new(64);
        incremental.stamp(&stroke, 0);
        let stamped = stroke.points.len();
        stroke.points.extend([[0.6, 0.2], [0.9, 0.9]]);
        incremental.stamp(&stroke, stamped);
        let mut rebuilt = Raster::new(64);
        rebuilt.rebuild(std::slice::from_ref(&stroke));
        assert_eq!(incremental.pixels(), rebuilt.pixels());
    }

    #[test]
    fn a_base_picture_stays_under_the_strokes_until_cleared() {
        let mut raster = Raster::new(56);
        let mut pixels = vec![0.0; 28 * 28];
        pixels[14 * 28 + 14] = 1.0;
        raster.set_base(&InkImage::new(28, 28, pixels));
        raster.rebuild(&[]);
        assert!(raster.pixels().iter().any(|&v| v > 0.5));
        raster.clear();
        assert!(raster.pixels().iter().all(|&v| v == 0.0));
        assert!(!raster.has_base());
    }
}
