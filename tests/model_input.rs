//! Pictures to model inputs of any shape: grey replicated into every channel, colour kept
//! for colour models and made grey for grey ones, plain resizes exact, MNIST centring at
//! the model's size.

use cnnviz::data::model_input::{
    describe, drawing_field, input_from_image, input_from_ink, replicate, resize_plane,
};
use cnnviz::data::preprocess::{InkImage, PreprocessError, mnist_input};
use cnnviz::model::spec::{InputSpec, Preprocessing};
use image::{DynamicImage, Rgb, RgbImage};

fn shape(channels: usize, height: usize, width: usize) -> InputSpec {
    InputSpec {
        channels,
        height,
        width,
    }
}

/// A drawing with a bar of ink, `side × side`.
fn bar_drawing(side: usize) -> InkImage {
    let mut pixels = vec![0.0; side * side];
    for y in side / 4..3 * side / 4 {
        for x in side / 3..side / 2 {
            pixels[y * side + x] = 1.0;
        }
    }
    InkImage::new(side, side, pixels)
}

#[test]
fn a_drawing_is_replicated_into_every_channel_of_a_colour_model() {
    let ink = bar_drawing(280);
    for preprocessing in [Preprocessing::MnistCentre, Preprocessing::Resize] {
        let grey = input_from_ink(&ink, shape(1, 32, 32), preprocessing).expect("ink");
        let colour = input_from_ink(&ink, shape(3, 32, 32), preprocessing).expect("ink");
        assert_eq!(grey.len(), 32 * 32);
        assert_eq!(colour, replicate(&grey, 3), "{preprocessing:?}");
        assert!(grey.iter().any(|&v| v > 0.9));
    }
}

#[test]
fn mnist_centring_is_the_mnist_rule_at_the_models_size() {
    let ink = bar_drawing(280);
    for (h, w) in [(28, 28), (20, 36), (64, 48)] {
        let input = input_from_ink(&ink, shape(1, h, w), Preprocessing::MnistCentre).expect("ink");
        assert_eq!(input, mnist_input(&ink, h, w).expect("ink"), "{h}×{w}");
    }
}

#[test]
fn a_blank_drawing_has_no_input_whatever_the_preprocessing() {
    let blank = InkImage::new(280, 280, vec![0.0; 280 * 280]);
    for preprocessing in [Preprocessing::MnistCentre, Preprocessing::Resize] {
        assert!(matches!(
            input_from_ink(&blank, shape(3, 32, 32), preprocessing),
            Err(PreprocessError::Empty)
        ));
    }
}

#[test]
fn a_plain_resize_averages_whole_blocks_exactly_and_keeps_same_size_pictures() {
    // 8×4 picture of 2×2 blocks with values (bx + 4 by) / 8 → a 4×2 picture of those values.
    let (w, h) = (8, 4);
    let pixels: Vec<f32> = (0..w * h)
        .map(|i| ((i % w / 2) + 4 * (i / w / 2)) as f32 / 8.0)
        .collect();
    let picture = InkImage::new(w, h, pixels.clone());
    let small = resize_plane(&picture, 4, 2);
    let expected: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
    assert_eq!(small, expected);
    assert_eq!(resize_plane(&picture, w, h), pixels);
}

#[test]
fn a_colour_picture_stays_colour_for_a_colour_model_and_turns_grey_for_a_grey_one() {
    // Left half pure red, right half pure blue, 16×8, to 4×2: each half exactly.
    let picture = DynamicImage::ImageRgb8(RgbImage::from_fn(16, 8, |x, _| {
        if x < 8 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    }));
    let colour = input_from_image(&picture, shape(3, 2, 4), Preprocessing::Resize).expect("ok");
    assert_eq!(
        colour,
        vec![
            1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, // R
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, // G
            0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, // B
        ]
    );
    let grey = input_from_image(&picture, shape(1, 2, 4), Preprocessing::Resize).expect("ok");
    let (red, blue) = (0.299f32, 0.114f32);
    for (i, v) in grey.iter().enumerate() {
        let want = if i % 4 < 2 { red } else { blue };
        assert!((v - want).abs() < 1e-6, "pixel {i}: {v} vs luma {want}");
    }
}

#[test]
fn a_drawing_for_a_non_square_resize_model_is_its_centred_field_undistorted() {
    let input = shape(1, 20, 40);
    let field = drawing_field(input, Preprocessing::Resize);
    assert_eq!(field, [0.0, 0.25, 1.0, 0.5]);
    assert_eq!(
        drawing_field(input, Preprocessing::MnistCentre),
        [0.0, 0.0, 1.0, 1.0]
    );
    // A dot of ink in the field's top-left 2×2 cell and one outside the field.
    let mut pixels = vec![0.0; 80 * 80];
    for y in 20..22 {
        for x in 0..2 {
            pixels[y * 80 + x] = 1.0;
        }
    }
    pixels[5 * 80 + 40] = 1.0;
    let ink = InkImage::new(80, 80, pixels);
    let prepared = input_from_ink(&ink, input, Preprocessing::Resize).expect("ink");
    assert_eq!(prepared.len(), 20 * 40);
    assert_eq!(prepared[0], 1.0, "the field's corner cell is all ink");
    assert_eq!(prepared.iter().filter(|&&v| v > 0.0).count(), 1);
    assert!(describe(shape(3, 32, 32), Preprocessing::Resize).contains("grey in R, G and B"));
    assert!(!describe(shape(1, 28, 28), Preprocessing::MnistCentre).contains("R, G"));
}
