//! Drawing preprocessing: any picture of a digit becomes the same MNIST-style input, and
//! bad pictures get clear errors.

use std::path::Path;

use cnnviz::data::preprocess::{
    InkImage, PreprocessError, ink_from_image, load_image, mnist_input,
};
use cnnviz::data::{Split, default_data_dir, load_mnist};
use cnnviz::model::{load_model, reference};
use image::{DynamicImage, GrayImage, Rgb, RgbImage, Rgba, RgbaImage};

fn mnist_test_digits(count: usize) -> Vec<(GrayImage, u8)> {
    let test = load_mnist(&default_data_dir(), Split::Test).expect("MNIST test set");
    (0..count)
        .map(|i| {
            let image = GrayImage::from_raw(28, 28, test.image(i).to_vec()).expect("28×28");
            (image, test.labels[i])
        })
        .collect()
}

fn prepare(image: &DynamicImage) -> Vec<f32> {
    mnist_input(&ink_from_image(image), 28, 28).expect("has ink")
}

/// Draws `digit` `scale` times larger with its top-left corner at `(x, y)` on a canvas.
fn enlarged_on_canvas(
    digit: &GrayImage,
    scale: u32,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    dark_ink: bool,
) -> DynamicImage {
    let big = image::imageops::resize(
        digit,
        28 * scale,
        28 * scale,
        image::imageops::FilterType::Triangle,
    );
    let paper = if dark_ink { 255u8 } else { 0 };
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([paper, paper, paper]));
    // A dark blue pen on white paper, or a white pen on black.
    let pen = if dark_ink {
        [20.0, 30.0, 90.0]
    } else {
        [255.0; 3]
    };
    for (px, py, p) in big.enumerate_pixels() {
        let amount = p[0] as f32 / 255.0;
        let colour = pen.map(|c| (paper as f32 * (1.0 - amount) + c * amount).round() as u8);
        canvas.put_pixel(x + px, y + py, Rgb(colour));
    }
    DynamicImage::ImageRgb8(canvas)
}

#[test]
fn small_off_centre_digit_predicts_like_the_centred_one() {
    let model = load_model(Path::new("weights/mnist-cnn.safetensors")).expect("committed model");
    let predict = |input: &[f32]| {
        let acts = reference::forward(&model, &model.normalize(input));
        reference::argmax(acts.last().expect("logits"))
    };
    let digits = mnist_test_digits(30);
    let mut agree = 0;
    for (i, (digit, _)) in digits.iter().enumerate() {
        let centred = prepare(&DynamicImage::ImageLuma8(digit.clone()));
        // Small and off-centre on a large canvas, alternating light and dark paper.
        let off = enlarged_on_canvas(digit, 2, 17 + 9 * i as u32, 300, 900, 500, i % 2 == 0);
        let moved = prepare(&off);
        let diff: f32 = centred
            .iter()
            .zip(&moved)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / 784.0;
        assert!(diff < 0.08, "digit {i}: mean difference {diff}");
        if predict(&centred) == predict(&moved) {
            agree += 1;
        }
    }
    assert!(agree >= 29, "only {agree}/30 predictions agree");
}

#[test]
fn mnist_digits_pass_through_nearly_unchanged() {
    // MNIST digits already follow the convention: preprocessing should barely move them.
    for (digit, _) in mnist_test_digits(20) {
        let raw: Vec<f32> = digit.pixels().map(|p| p[0] as f32 / 255.0).collect();
        let prepared = prepare(&DynamicImage::ImageLuma8(digit));
        let diff: f32 = raw
            .iter()
            .zip(&prepared)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / 784.0;
        assert!(diff < 0.06, "mean difference {diff}");
    }
}

#[test]
fn output_is_centred_and_fits_the_box() {
    // A 30×90 bar, off to one side of a 400×400 canvas.
    let mut canvas = GrayImage::new(400, 400);
    for y in 250..340 {
        for x in 20..50 {
            canvas.put_pixel(x, y, image::Luma([255]));
        }
    }
    let input = prepare(&DynamicImage::ImageLuma8(canvas));
    let (mut rows, mut cols) = (vec![], vec![]);
    let (mut mx, mut my, mut total) = (0.0, 0.0, 0.0);
    for y in 0..28 {
        for x in 0..28 {
            let v = input[y * 28 + x];
            if v > 0.1 {
                rows.push(y);
                cols.push(x);
            }
            mx += v * x as f32;
            my += v * y as f32;
            total += v;
        }
    }
    let height = rows.iter().max().expect("ink") - rows.iter().min().expect("ink") + 1;
    assert_eq!(height, 20, "long side scaled to 20");
    assert!((mx / total - 14.0).abs() <= 0.5 && (my / total - 14.0).abs() <= 0.5);
}

#[test]
fn empty_and_blank_noisy_pictures_are_empty() {
    let black = DynamicImage::ImageLuma8(GrayImage::new(100, 60));
    assert!(matches!(
        mnist_input(&ink_from_image(&black), 28, 28),
        Err(PreprocessError::Empty)
    ));
    let white = DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 50, Rgb([255, 255, 255])));
    assert!(matches!(
        mnist_input(&ink_from_image(&white), 28, 28),
        Err(PreprocessError::Empty)
    ));
    // Paper with faint noise.
    let noisy = DynamicImage::ImageLuma8(GrayImage::from_fn(64, 64, |x, y| {
        image::Luma([240 + ((x * 7 + y * 3) % 9) as u8])
    }));
    assert!(matches!(
        mnist_input(&ink_from_image(&noisy), 28, 28),
        Err(PreprocessError::Empty)
    ));
    let clear = DynamicImage::ImageRgba8(RgbaImage::new(30, 30));
    assert!(matches!(
        mnist_input(&ink_from_image(&clear), 28, 28),
        Err(PreprocessError::Empty)
    ));
    let nothing = InkImage::new(1, 1, vec![0.0]);
    assert!(matches!(
        mnist_input(&nothing, 28, 28),
        Err(PreprocessError::Empty)
    ));
}

#[test]
fn transparent_strokes_take_ink_from_alpha() {
    let (digit, _) = mnist_test_digits(1).remove(0);
    let strokes = RgbaImage::from_fn(28, 28, |x, y| Rgba([0, 0, 0, digit.get_pixel(x, y)[0]]));
    let from_alpha = prepare(&DynamicImage::ImageRgba8(strokes));
    let from_grey = prepare(&DynamicImage::ImageLuma8(digit));
    let diff: f32 = from_alpha
        .iter()
        .zip(&from_grey)
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(diff < 1e-3, "{diff}");
}

#[test]
fn one_pixel_and_extreme_aspect_drawings_work() {
    let dot = InkImage::new(1, 1, vec![1.0]);
    let input = mnist_input(&dot, 28, 28).expect("a dot is ink");
    assert!(input.iter().any(|&v| v > 0.5));
    let line = InkImage::new(1000, 1, vec![1.0; 1000]);
    assert_eq!(mnist_input(&line, 28, 28).expect("ink").len(), 784);
}

#[test]
fn files_decode_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (digit, _) = mnist_test_digits(1).remove(0);

    let png = dir.path().join("digit.png");
    digit.save(&png).expect("png");
    let jpeg = dir.path().join("digit.jpg");
    DynamicImage::ImageLuma8(digit.clone())
        .to_rgb8()
        .save(&jpeg)
        .expect("jpeg");
    for file in [&png, &jpeg] {
        let input = prepare(&load_image(file).expect("decodes"));
        assert_eq!(input.len(), 784);
    }

    let missing = dir.path().join("missing.png");
    assert!(matches!(
        load_image(&missing),
        Err(PreprocessError::Io { .. })
    ));

    let text = dir.path().join("notes.png");
    std::fs::write(&text, "this is not a picture").expect("write");
    let err = load_image(&text).expect_err("text");
    assert!(matches!(err, PreprocessError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("notes.png"));

    let bytes = std::fs::read(&png).expect("read");
    let truncated = dir.path().join("truncated.png");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    assert!(matches!(
        load_image(&truncated),
        Err(PreprocessError::Decode { .. })
    ));

    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, png_header(50_000, 50_000)).expect("write");
    let err = load_image(&huge).expect_err("huge");
    assert!(
        matches!(
            err,
            PreprocessError::TooLarge {
                width: 50_000,
                height: 50_000,
                ..
            }
        ),
        "{err}"
    );
}

/// A PNG signature and a valid IHDR chunk claiming `width × height`, and nothing else.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc.sum().to_be_bytes());
    // An empty IDAT and IEND, so the decoder reaches the point of allocating.
    for chunk in [&b"IDAT"[..], &b"IEND"[..]] {
        let mut crc = flate2::Crc::new();
        crc.update(chunk);
        out.extend(0u32.to_be_bytes());
        out.extend(chunk);
        out.extend(crc.sum().to_be_bytes());
    }
    out
}

/// Linux's peak resident set of this process, KiB (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The largest accepted picture must not cost gigabytes: before preprocessing worked on a
/// downscaled copy, an 8192² picture became a 1 GiB f32 RGBA copy plus three 256 MiB
/// planes. Measures the peak resident memory of decoding and preprocessing one.
#[test]
fn an_8192_square_picture_preprocesses_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.png");
    {
        // A dark bar (a "1") on white paper, 8-bit grey.
        let mut picture = GrayImage::from_pixel(8192, 8192, image::Luma([255]));
        for y in 1500..6700 {
            for x in 3800..4400 {
                picture.put_pixel(x, y, image::Luma([10]));
            }
        }
        picture.save(&path).expect("big picture saves");
    }
    // Linux resets the peak to the current resident set on "5" (where allowed).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (Some(start), Some(_)) = (rss_kib(), peak_rss_kib()) else {
        eprintln!("note: no /proc/self/status; memory not measured");
        return;
    };
    let image = load_image(&path).expect("an 8192² picture is accepted");
    let ink = ink_from_image(&image);
    drop(image);
    let input = mnist_input(&ink, 28, 28).expect("the bar is ink");
    assert_eq!(input.len(), 28 * 28);
    let peak = peak_rss_kib().unwrap_or(0);
    let growth_mib = peak.saturating_sub(start) as f64 / 1024.0;
    eprintln!(
        "8192² PNG: peak RSS {:.0} MiB, {growth_mib:.0} MiB above the start (peak reset: {reset})",
        peak as f64 / 1024.0
    );
    assert!(
        growth_mib < 400.0,
        "preprocessing an 8192² picture raised the peak by {growth_mib:.0} MiB"
    );
}
