//! Grad-CAM overlays as pictures: the model input in grey with the heatmap blended over it,
//! as `pytorch_grad_cam.show_cam_on_image` does (half image, half colour map).

use image::RgbImage;

use crate::colormap::ColorMap;

/// Weight of the grey input in the blend; the colour map gets the rest.
pub const IMAGE_WEIGHT: f32 = 0.5;

/// Renders `input` (0..1, `width × height`, row-major) with `cam` (0..1, same size) over it,
/// each model pixel drawn as a `scale × scale` block so the pixels stay honest.
pub fn overlay(
    input: &[f32],
    cam: &[f32],
    width: usize,
    height: usize,
    scale: u32,
    map: ColorMap,
) -> RgbImage {
    assert_eq!(input.len(), width * height, "input size");
    assert_eq!(cam.len(), width * height, "cam size");
    let scale = scale.max(1);
    RgbImage::from_fn(width as u32 * scale, height as u32 * scale, |x, y| {
        let i = (y / scale) as usize * width + (x / scale) as usize;
        let grey = input[i].clamp(0.0, 1.0);
        let heat = map.rgb(cam[i]);
        image::Rgb(
            heat.map(|c| ((IMAGE_WEIGHT * grey + (1.0 - IMAGE_WEIGHT) * c) * 255.0).round() as u8),
        )
    })
}
