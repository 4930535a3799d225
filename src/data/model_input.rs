//! From a drawing or a picture to the model's input tensor: C×H×W values in 0..1 (before
//! normalisation), prepared the way the model states ([`Preprocessing`]).
//!
//! - MNIST centring: the picture's ink (grey) is centred as in [`super::preprocess`], at
//!   the model's H×W.
//! - Resize: the whole picture is resized to H×W (area averaging when shrinking, bilinear
//!   when enlarging). A colour picture keeps its colours for a 3-channel model and becomes
//!   grey (ITU-R 601 luma) for a 1-channel one.
//!
//! Grey content (every drawing, MNIST-centred ink) goes into every channel of a 3-channel
//! model: R = G = B, as a grey photograph would.

use image::DynamicImage;

use super::preprocess::{
    InkImage, PreprocessError, float_rgba, ink_bounds, ink_from_image, mnist_input, resample,
};
use crate::model::spec::{InputSpec, Preprocessing};

/// The input for a drawing (1 = ink on 0 = paper). `Err(Empty)` when there is no ink, so
/// a blank canvas has no prediction whatever the preprocessing.
pub fn input_from_ink(
    ink: &InkImage,
    input: InputSpec,
    preprocessing: Preprocessing,
) -> Result<Vec<f32>, PreprocessError> {
    ink_bounds(ink).ok_or(PreprocessError::Empty)?;
    let plane = match preprocessing {
        Preprocessing::MnistCentre => mnist_input(ink, input.height, input.width)?,
        Preprocessing::Resize => {
            // The field of the model's aspect in the middle of the (square) drawing, so
            // a non-square model sees the drawing undistorted (the canvas marks it).
            let [fx, fy, fw, fh] = drawing_field(input, preprocessing);
            let (w, h) = (ink.width as f32, ink.height as f32);
            let x0 = (fx * w).round() as usize;
            let y0 = (fy * h).round() as usize;
            let cw = ((fw * w).round() as usize).clamp(1, ink.width - x0);
            let ch = ((fh * h).round() as usize).clamp(1, ink.height - y0);
            resample(ink, (x0, y0, cw, ch), input.width, input.height)
        }
    };
    Ok(replicate(&plane, input.channels))
}

/// The input for a picture file. MNIST centring reads its ink (and fails with `Empty`
/// without any); a resize takes the picture as it is, in colour for a 3-channel model.
/// A picture with a transparent background is a drawing: its alpha is its ink.
pub fn input_from_image(
    image: &DynamicImage,
    input: InputSpec,
    preprocessing: Preprocessing,
) -> Result<Vec<f32>, PreprocessError> {
    if preprocessing == Preprocessing::MnistCentre {
        return input_from_ink(&ink_from_image(image), input, preprocessing);
    }
    let (rgba, has_transparency) = float_rgba(image);
    let (width, height) = (rgba.width() as usize, rgba.height() as usize);
    let plane_of = |value: &dyn Fn(&image::Rgba<f32>) -> f32| {
        let pixels = rgba.pixels().map(|p| value(p).clamp(0.0, 1.0)).collect();
        resize_plane(
            &InkImage::new(width, height, pixels),
            input.width,
            input.height,
        )
    };
    if has_transparency {
        return Ok(replicate(&plane_of(&|p| p[3]), input.channels));
    }
    if input.channels == 3 {
        return Ok((0..3).flat_map(|c| plane_of(&|p| p[c])).collect());
    }
    let luma = plane_of(&|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]);
    Ok(replicate(&luma, input.channels))
}

/// The part of a drawing the model sees, as fractions `[x, y, width, height]` of the
/// drawing: all of it for MNIST centring (which fits the ink into any shape) and for
/// square inputs; for a resize to a non-square input, the largest centred rectangle of
/// the input's aspect.
pub fn drawing_field(input: InputSpec, preprocessing: Preprocessing) -> [f32; 4] {
    if preprocessing == Preprocessing::MnistCentre || input.width == input.height {
        return [0.0, 0.0, 1.0, 1.0];
    }
    let aspect = input.width as f32 / input.height as f32;
    if aspect > 1.0 {
        let h = 1.0 / aspect;
        [0.0, (1.0 - h) / 2.0, 1.0, h]
    } else {
        [(1.0 - aspect) / 2.0, 0.0, aspect, 1.0]
    }
}

/// A plain resize of a whole single-channel picture to `width × height`.
pub fn resize_plane(picture: &InkImage, width: usize, height: usize) -> Vec<f32> {
    if (picture.width, picture.height) == (width, height) {
        return picture.pixels.clone();
    }
    resample(
        picture,
        (0, 0, picture.width, picture.height),
        width,
        height,
    )
}

/// One H×W plane repeated into `channels` channels.
pub fn replicate(plane: &[f32], channels: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(plane.len() * channels);
    for _ in 0..channels {
        out.extend_from_slice(plane);
    }
    out
}

/// One line for the window and `info`: how pictures become this model's input.
pub fn describe(input: InputSpec, preprocessing: Preprocessing) -> String {
    let (h, w) = (input.height, input.width);
    let how = match preprocessing {
        Preprocessing::MnistCentre => {
            format!("MNIST centring: the ink's box scaled into {h}×{w}, centred on its mass")
        }
        Preprocessing::Resize => format!("plain resize to {h}×{w}"),
    };
    let how = if input.width != input.height && preprocessing == Preprocessing::Resize {
        format!("{how} of the framed part of the canvas")
    } else {
        how
    };
    if input.channels == 3 {
        format!("{how}; 3-channel model: your drawing is fed as grey in R, G and B")
    } else {
        how
    }
}
