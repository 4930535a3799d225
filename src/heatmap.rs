//! Grad-CAM overlays as pictures: the model input with the heatmap blended over it, as
//! `pytorch_grad_cam.show_cam_on_image` does (half image, half colour map). A grey input
//! is drawn grey, a 3-channel input in its colours.

use image::RgbImage;

use crate::colormap::ColorMap;

/// Weight of the input in the blend; the colour map gets the rest.
pub const IMAGE_WEIGHT: f32 = 0.5;

/// Renders `input` (0..1, C×`height`×`width` with C = 1 or 3, row-major planes) with `cam`
/// (0..1, `width × height`) over it, each model pixel drawn as a `scale × scale` block so
/// the pixels stay honest.
pub fn overlay(
    input: &[f32],
    cam: &[f32],
    width: usize,
    height: usize,
    scale: u32,
    map: ColorMap,
) -> RgbImage {
    let plane = width * height;
    assert!(
        input.len() == plane || input.len() == 3 * plane,
        "input size"
    );
    assert_eq!(cam.len(), plane, "cam size");
    let scale = scale.max(1);
    RgbImage::from_fn(width as u32 * scale, height as u32 * scale, |x, y| {
        let i = (y / scale) as usize * width + (x / scale) as usize;
        let colour = input_colour(input, plane, i);
        let heat = map.rgb(cam[i]);
        let mut out = [0u8; 3];
        for c in 0..3 {
            out[c] =
                ((IMAGE_WEIGHT * colour[c] + (1.0 - IMAGE_WEIGHT) * heat[c]) * 255.0).round() as u8;
        }
        image::Rgb(out)
    })
}

/// The RGB (0..1) of pixel `i` of a grey (one plane) or colour (three planes) input.
pub fn input_colour(input: &[f32], plane: usize, i: usize) -> [f32; 3] {
    if input.len() >= 3 * plane {
        [0, 1, 2].map(|c| input[c * plane + i].clamp(0.0, 1.0))
    } else {
        [input[i].clamp(0.0, 1.0); 3]
    }
}
