//! Turning a drawing or a picture of a digit into what an MNIST model expects.
//!
//! MNIST's convention (LeCun et al.): white ink on black, the digit's bounding box scaled to
//! fit 20×20 keeping its aspect ratio with anti-aliasing, pasted into a 28×28 field so that
//! its centre of mass sits at the centre. Other input sizes scale the 20/28 box accordingly.
//! [`super::model_input`] turns pictures into any model's input with this or a plain resize.

use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};

/// Pictures wider or taller than this are refused before decoding.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Decoder allocation cap (an 8192² RGBA image is 256 MiB).
pub const MAX_IMAGE_BYTES: u64 = 300 << 20;
/// Pictures are brought down to at most this side (keeping their aspect ratio, in their own
/// 8-bit format) before anything else: the MNIST box is 20 pixels, so nothing is lost, and
/// an 8192² picture costs a few MiB of f32 instead of gigabytes.
pub const INK_MAX_SIDE: u32 = 1024;
/// Ink below this (0..1, after background removal) is treated as paper noise.
pub const INK_THRESHOLD: f32 = 0.1;

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("cannot read image {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PNG or JPEG image this program can read: {reason}")]
    Decode { path: String, reason: String },
    #[error(
        "{path} is {width}×{height} pixels; at most {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} are accepted"
    )]
    TooLarge {
        path: String,
        width: u32,
        height: u32,
    },
    #[error("the image is empty: no ink was found")]
    Empty,
}

/// A single-channel picture where 1 is ink and 0 is paper.
#[derive(Clone, Debug, PartialEq)]
pub struct InkImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl InkImage {
    pub fn new(width: usize, height: usize, pixels: Vec<f32>) -> Self {
        assert_eq!(pixels.len(), width * height, "pixel count");
        InkImage {
            width,
            height,
            pixels,
        }
    }

    fn at(&self, x: usize, y: usize) -> f32 {
        self.pixels[y * self.width + x]
    }
}

/// Decodes a PNG or JPEG with size limits, so a 50000×50000 header is refused up front.
pub fn load_image(path: &Path) -> Result<DynamicImage, PreprocessError> {
    let name = path.display().to_string();
    let decode = |reason: String| PreprocessError::Decode {
        path: name.clone(),
        reason,
    };
    let mut reader = ImageReader::open(path)
        .map_err(|source| PreprocessError::Io {
            path: name.clone(),
            source,
        })?
        .with_guessed_format()
        .map_err(|e| decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(decode("unrecognised file format".into()));
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| decode(e.to_string()))?;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(PreprocessError::TooLarge {
            path: name,
            width,
            height,
        });
    }
    // `into_dimensions` consumed the reader; open again for the pixels.
    reader = ImageReader::open(path)
        .map_err(|source| PreprocessError::Io {
            path: name.clone(),
            source,
        })?
        .with_guessed_format()
        .map_err(|e| decode(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| decode(e.to_string()))
}

/// Grey ink from any picture: colour or grey, white-on-black or black-on-white.
///
/// Transparent pictures (strokes on a clear background) take their ink from alpha. Opaque
/// ones take the paper colour from the border (a drawing's border is paper), invert when the
/// paper is light, and stretch so paper becomes 0 and the strongest ink 1.
pub fn ink_from_image(image: &DynamicImage) -> InkImage {
    let (rgba, has_transparency) = float_rgba(image);
    let (width, height) = (rgba.width() as usize, rgba.height() as usize);
    if has_transparency {
        let pixels = rgba.pixels().map(|p| p[3].clamp(0.0, 1.0)).collect();
        return InkImage::new(width, height, pixels);
    }
    let luma: Vec<f32> = rgba
        .pixels()
        .map(|p| (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).clamp(0.0, 1.0))
        .collect();
    let paper = border_median(&luma, width, height);
    let light_paper = paper > 0.5;
    let ink: Vec<f32> = luma
        .iter()
        .map(|&v| if light_paper { paper - v } else { v - paper })
        .map(|v| v.max(0.0))
        .collect();
    let strongest = ink.iter().cloned().fold(0.0f32, f32::max);
    // Stretch only where there is real contrast; noise on blank paper stays faint.
    let scale = if strongest >= 0.25 {
        1.0 / strongest
    } else {
        1.0
    };
    InkImage::new(
        width,
        height,
        ink.iter().map(|v| (v * scale).min(1.0)).collect(),
    )
}

/// The picture in float RGBA, brought down to at most [`INK_MAX_SIDE`] first (an integer
/// box filter in its own format: no full-size float copy), and whether it is a drawing on
/// a transparent background (some pixels clear, some opaque).
pub(crate) fn float_rgba(image: &DynamicImage) -> (image::Rgba32FImage, bool) {
    let smaller;
    let image = if image.width().max(image.height()) > INK_MAX_SIDE {
        smaller = image.thumbnail(INK_MAX_SIDE, INK_MAX_SIDE);
        &smaller
    } else {
        image
    };
    let rgba = image.to_rgba32f();
    let has_transparency = rgba.pixels().any(|p| p[3] < 0.5) && rgba.pixels().any(|p| p[3] >= 0.5);
    (rgba, has_transparency)
}

fn border_median(luma: &[f32], width: usize, height: usize) -> f32 {
    let mut border: Vec<f32> = Vec::with_capacity(2 * (width + height));
    for x in 0..width {
        border.push(luma[x]);
        border.push(luma[(height - 1) * width + x]);
    }
    for y in 0..height {
        border.push(luma[y * width]);
        border.push(luma[y * width + width - 1]);
    }
    border.sort_by(f32::total_cmp);
    border[border.len() / 2]
}

/// The model input (row-major `height × width`, 0..1, before normalisation) for a drawing,
/// following the MNIST convention. `Err(Empty)` when there is no ink.
pub fn mnist_input(
    ink: &InkImage,
    height: usize,
    width: usize,
) -> Result<Vec<f32>, PreprocessError> {
    let (x0, y0, x1, y1) = ink_bounds(ink).ok_or(PreprocessError::Empty)?;
    let (crop_w, crop_h) = (x1 - x0 + 1, y1 - y0 + 1);
    // The 20-pixel box of a 28-pixel field, scaled for other input sizes.
    let box_side = ((height.min(width) as f64) * 20.0 / 28.0).round().max(1.0) as usize;
    let scale = crop_w.max(crop_h) as f64 / box_side as f64;
    let out_w = ((crop_w as f64 / scale).round() as usize).clamp(1, box_side);
    let out_h = ((crop_h as f64 / scale).round() as usize).clamp(1, box_side);
    let digit = resample(ink, (x0, y0, crop_w, crop_h), out_w, out_h);

    // Centre of mass of the resized digit, in its own pixel coordinates.
    let total: f64 = digit.iter().map(|&v| v as f64).sum();
    let (mut cx, mut cy) = (0.0, 0.0);
    for y in 0..out_h {
        for x in 0..out_w {
            let v = digit[y * out_w + x] as f64;
            cx += v * x as f64;
            cy += v * y as f64;
        }
    }
    let (cx, cy) = if total > 0.0 {
        (cx / total, cy / total)
    } else {
        ((out_w as f64 - 1.0) / 2.0, (out_h as f64 - 1.0) / 2.0)
    };
    // Place the centre of mass on pixel `field / 2` (14 of 28), where MNIST's own digits
    // have theirs, keeping the digit inside the field.
    let place = |centre: f64, field: usize, size: usize| -> usize {
        let offset = ((field / 2) as f64 - centre).round();
        offset.clamp(0.0, (field - size) as f64) as usize
    };
    let (ox, oy) = (place(cx, width, out_w), place(cy, height, out_h));
    let mut field = vec![0.0f32; height * width];
    for y in 0..out_h {
        field[(oy + y) * width + ox..(oy + y) * width + ox + out_w]
            .copy_from_slice(&digit[y * out_w..(y + 1) * out_w]);
    }
    Ok(field)
}

/// Bounding box `(x0, y0, x1, y1)` (inclusive) of the pixels with ink.
pub(crate) fn ink_bounds(ink: &InkImage) -> Option<(usize, usize, usize, usize)> {
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for y in 0..ink.height {
        for x in 0..ink.width {
            if ink.at(x, y) > INK_THRESHOLD {
                bounds = Some(match bounds {
                    None => (x, y, x, y),
                    Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
                });
            }
        }
    }
    bounds
}

/// Resamples a crop to `out_w × out_h`: exact area averaging when shrinking (MNIST's
/// anti-aliasing), bilinear when enlarging (so a tiny drawing is not blocky).
pub(crate) fn resample(
    ink: &InkImage,
    crop: (usize, usize, usize, usize),
    out_w: usize,
    out_h: usize,
) -> Vec<f32> {
    let (x0, y0, cw, ch) = crop;
    let sx = cw as f64 / out_w as f64;
    let sy = ch as f64 / out_h as f64;
    let mut out = vec![0.0f32; out_w * out_h];
    for oy in 0..out_h {
        for ox in 0..out_w {
            out[oy * out_w + ox] = if sx >= 1.0 && sy >= 1.0 {
                area_average(
                    ink,
                    (x0, y0, cw, ch),
                    (ox as f64 * sx, (ox + 1) as f64 * sx),
                    (oy as f64 * sy, (oy + 1) as f64 * sy),
                )
            } else {
                bilinear_sample(
                    ink,
                    x0,
                    y0,
                    cw,
                    ch,
                    (ox as f64 + 0.5) * sx - 0.5,
                    (oy as f64 + 0.5) * sy - 0.5,
                )
            };
        }
    }
    out
}

/// Mean of the crop over the rectangle `[xa, xb) × [ya, yb)` in crop coordinates, with
/// partial pixels weighted by how much of them the rectangle covers.
fn area_average(
    ink: &InkImage,
    (x0, y0, cw, ch): (usize, usize, usize, usize),
    (xa, xb): (f64, f64),
    (ya, yb): (f64, f64),
) -> f32 {
    let mut sum = 0.0;
    let mut area = 0.0;
    // Clamped: float rounding may push the last edge a hair past the crop.
    for y in ya.floor() as usize..(yb.ceil() as usize).min(ch) {
        let wy = (yb.min(y as f64 + 1.0) - ya.max(y as f64)).max(0.0);
        for x in xa.floor() as usize..(xb.ceil() as usize).min(cw) {
            let wx = (xb.min(x as f64 + 1.0) - xa.max(x as f64)).max(0.0);
            sum += wx * wy * ink.at(x0 + x, y0 + y) as f64;
            area += wx * wy;
        }
    }
    if area > 0.0 { (sum / area) as f32 } else { 0.0 }
}

fn bilinear_sample(
    ink: &InkImage,
    x0: usize,
    y0: usize,
    cw: usize,
    ch: usize,
    x: f64,
    y: f64,
) -> f32 {
    let x = x.clamp(0.0, (cw - 1) as f64);
    let y = y.clamp(0.0, (ch - 1) as f64);
    let (xi, yi) = (x.floor() as usize, y.floor() as usize);
    let (xj, yj) = ((xi + 1).min(cw - 1), (yi + 1).min(ch - 1));
    let (fx, fy) = ((x - xi as f64) as f32, (y - yi as f64) as f32);
    let at = |xx: usize, yy: usize| ink.at(x0 + xx, y0 + yy);
    let top = at(xi, yi) * (1.0 - fx) + at(xj, yi) * fx;
    let bottom = at(xi, yj) * (1.0 - fx) + at(xj, yj) * fx;
    top * (1.0 - fy) + bottom * fy
}
