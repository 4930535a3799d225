//! PNG encoding and size-limited decoding of drawings, and the small thumbnails the gallery
//! shows (stored beside each record, so a page of 100 decodes no PNG at all).

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageFormat, ImageReader, Limits};

use super::StoreError;
use super::codec::{CodecResult, Reader, Writer};
use super::record::{Drawing, MAX_DRAWING_SIDE, MAX_PNG_BYTES};

/// Thumbnails fit in this many pixels a side (twice MNIST's 28, enough for a gallery tile).
pub const THUMBNAIL_SIDE: u32 = 56;

/// A small grey picture of a drawing, 0 paper, 255 ink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u16,
    pub height: u16,
    pub pixels: Vec<u8>,
}

/// Encodes a drawing as an 8-bit grey PNG. Fast compression: strokes on black compress well
/// anyway, and this runs inside every save.
pub fn encode_png(drawing: &Drawing) -> Result<Vec<u8>, StoreError> {
    drawing.validate().map_err(StoreError::Invalid)?;
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(
            &drawing.pixels,
            drawing.width,
            drawing.height,
            ExtendedColorType::L8,
        )
        .map_err(|e| StoreError::Image(format!("cannot encode the drawing: {e}")))?;
    Ok(out)
}

/// Decodes a stored or imported PNG into grey pixels, refusing anything larger than a
/// drawing can be before allocating for it.
pub fn decode_png(png: &[u8]) -> Result<Drawing, StoreError> {
    if png.len() > MAX_PNG_BYTES {
        return Err(StoreError::Image(format!(
            "a PNG of {} bytes; at most {MAX_PNG_BYTES} are accepted",
            png.len()
        )));
    }
    let mut reader = ImageReader::with_format(Cursor::new(png), ImageFormat::Png);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DRAWING_SIDE);
    limits.max_image_height = Some(MAX_DRAWING_SIDE);
    // An RGBA 16-bit picture at the largest size, with room for the decoder's own buffers.
    limits.max_alloc = Some(u64::from(MAX_DRAWING_SIDE).pow(2) * 8 + (16 << 20));
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| StoreError::Image(format!("not a PNG this store can read: {e}")))?;
    let grey = image.into_luma8();
    Ok(Drawing {
        width: grey.width(),
        height: grey.height(),
        pixels: grey.into_raw(),
    })
}

/// Shrinks a drawing to fit [`THUMBNAIL_SIDE`], keeping its aspect ratio, by averaging the
/// source pixels under each thumbnail pixel (thin strokes stay visible as grey).
pub fn thumbnail(drawing: &Drawing) -> Thumbnail {
    let (sw, sh) = (drawing.width as usize, drawing.height as usize);
    let scale = (THUMBNAIL_SIDE as f64 / sw.max(sh) as f64).min(1.0);
    let tw = ((sw as f64 * scale).round() as usize).max(1);
    let th = ((sh as f64 * scale).round() as usize).max(1);
    let mut pixels = Vec::with_capacity(tw * th);
    for ty in 0..th {
        let y0 = ty * sh / th;
        let y1 = ((ty + 1) * sh).div_ceil(th).max(y0 + 1);
        for tx in 0..tw {
            let x0 = tx * sw / tw;
            let x1 = ((tx + 1) * sw).div_ceil(tw).max(x0 + 1);
            let mut sum = 0u32;
            for y in y0..y1 {
                let row = &drawing.pixels[y * sw..y * sw + sw];
                sum += row[x0..x1].iter().map(|&p| u32::from(p)).sum::<u32>();
            }
            let count = ((y1 - y0) * (x1 - x0)) as u32;
            pixels.push(((sum + count / 2) / count) as u8);
        }
    }
    Thumbnail {
        width: tw as u16,
        height: th as u16,
        pixels,
    }
}

pub(crate) fn encode_thumbnail(t: &Thumbnail) -> Vec<u8> {
    let mut w = Writer::with_capacity(8 + t.pixels.len());
    w.u16(super::record::FORMAT_VERSION as u16);
    w.u16(t.width);
    w.u16(t.height);
    w.zero_run_bytes(&t.pixels);
    w.finish()
}

pub(crate) fn decode_thumbnail(bytes: &[u8]) -> CodecResult<Thumbnail> {
    let mut r = Reader::new(bytes);
    let version = r.u16()?;
    if version == 0 || version as u32 > super::record::FORMAT_VERSION {
        return Err(format!("thumbnail version {version}"));
    }
    let width = r.u16()?;
    let height = r.u16()?;
    if width == 0 || height == 0 || u32::from(width.max(height)) > THUMBNAIL_SIDE {
        return Err(format!("a {width}×{height} thumbnail"));
    }
    let pixels = r.zero_run_bytes((THUMBNAIL_SIDE * THUMBNAIL_SIDE) as usize)?;
    if pixels.len() != width as usize * height as usize {
        return Err(format!(
            "a {width}×{height} thumbnail of {} bytes",
            pixels.len()
        ));
    }
    r.finish()?;
    Ok(Thumbnail {
        width,
        height,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_thumbnail_shape() {
        let drawing = Drawing {
            width: 280,
            height: 200,
            pixels: (0..280 * 200).map(|i| (i % 251) as u8).collect(),
        };
        let png = encode_png(&drawing).unwrap();
        assert_eq!(decode_png(&png).unwrap(), drawing);
        let t = thumbnail(&drawing);
        assert_eq!((t.width, t.height), (56, 40));
        assert_eq!(decode_thumbnail(&encode_thumbnail(&t)).unwrap(), t);
        assert!(decode_png(b"not a png").is_err());
    }
}
