//! Attract mode's digits: MNIST test digits, one after another, each "drawn" as if by a
//! pen, so the canvas, the prediction, Grad-CAM and the scene all move while nobody is
//! there.
//!
//! The pen path of a digit is made from its pixels: the strong "core" pixels (ink ≥ 50 %)
//! are ordered by a greedy nearest-neighbour walk from the top-most one, which follows the
//! stroke the way a hand would; every fainter pixel (the anti-aliased edge) appears with
//! the core pixel nearest to it. At the end of the drawing the image is exactly the MNIST
//! digit.
//!
//! [`AttractPlayer::update`] turns "time since attract mode started" into a new canvas
//! image whenever the drawing has grown (at most [`UPDATES_PER_SECOND`] times a second, so
//! each step's forward pass and Grad-CAM are affordable on a software adapter). Everything
//! is deterministic given the seed.

use std::path::Path;
use std::time::Duration;

use super::config::AttractConfig;
use crate::data::preprocess::{InkImage, PreprocessError, ink_from_image, mnist_input};
use crate::data::{DataError, Split, load_mnist};

/// How often at most the drawing grows.
pub const UPDATES_PER_SECOND: f64 = 12.0;
/// The share of each digit's time spent drawing; the rest holds the finished digit.
pub const DRAW_SHARE: f64 = 2.0 / 3.0;
/// Ink at or above this (of 255) is the stroke's core, which the pen path visits.
const CORE_INK: u8 = 128;

/// Side of the built-in digits.
const BUILTIN_SIDE: usize = 28;
/// Ten MNIST test digits compiled in, so attract mode works without `data/mnist`.
const BUILTIN: [(u8, &[u8]); 10] = [
    (0, include_bytes!("../../samples/0-mnist-test-3.png")),
    (1, include_bytes!("../../samples/1-mnist-test-2.png")),
    (2, include_bytes!("../../samples/2-mnist-test-1.png")),
    (3, include_bytes!("../../samples/3-mnist-test-18.png")),
    (4, include_bytes!("../../samples/4-mnist-test-4.png")),
    (5, include_bytes!("../../samples/5-mnist-test-8.png")),
    (6, include_bytes!("../../samples/6-mnist-test-11.png")),
    (7, include_bytes!("../../samples/7-mnist-test-0.png")),
    (8, include_bytes!("../../samples/8-mnist-test-61.png")),
    (9, include_bytes!("../../samples/9-mnist-test-7.png")),
];

/// Why attract mode plays the built-in digits instead of the MNIST test set.
#[derive(Debug, thiserror::Error)]
pub enum AttractError {
    #[error("attract mode cannot read the MNIST test set; it plays the 10 built-in digits")]
    Mnist(#[source] DataError),
    #[error(
        "attract mode: the MNIST test set has no image with ink; it plays the 10 built-in digits"
    )]
    NoInk,
}

/// Where the digits come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigitSource {
    MnistTest,
    BuiltIn,
}

/// Grey digits (0 = background, 255 = ink), `rows × cols` each, with their labels.
#[derive(Clone, Debug)]
pub struct AttractDigits {
    rows: usize,
    cols: usize,
    images: Vec<u8>,
    labels: Vec<u8>,
    /// Index in the source (the MNIST test index) of each image.
    indices: Vec<usize>,
    source: DigitSource,
}

impl AttractDigits {
    /// The MNIST test set in `dir` (`data::default_data_dir()` in a checkout).
    pub fn from_mnist(dir: &Path) -> Result<AttractDigits, AttractError> {
        let data = load_mnist(dir, Split::Test).map_err(AttractError::Mnist)?;
        let n = data.pixels_per_image();
        // Blank images would be pauses with nothing to predict.
        let keep: Vec<usize> = (0..data.len())
            .filter(|&i| data.image(i).iter().any(|&v| v >= CORE_INK))
            .collect();
        if keep.is_empty() {
            return Err(AttractError::NoInk);
        }
        let mut images = Vec::with_capacity(keep.len() * n);
        for &i in &keep {
            images.extend_from_slice(data.image(i));
        }
        Ok(AttractDigits {
            rows: data.rows,
            cols: data.cols,
            images,
            labels: keep.iter().map(|&i| data.labels[i]).collect(),
            indices: keep,
            source: DigitSource::MnistTest,
        })
    }

    /// The ten digits compiled into the program (from `samples/`).
    pub fn builtin() -> AttractDigits {
        let side = BUILTIN_SIDE;
        let mut digits = AttractDigits {
            rows: side,
            cols: side,
            images: Vec::new(),
            labels: Vec::new(),
            indices: Vec::new(),
            source: DigitSource::BuiltIn,
        };
        for (i, (label, png)) in BUILTIN.iter().enumerate() {
            let Ok(image) = image::load_from_memory(png) else {
                continue;
            };
            let ink = ink_from_image(&image);
            let Ok(pixels) = mnist_input(&ink, side, side) else {
                continue;
            };
            digits.images.extend(
                pixels
                    .iter()
                    .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8),
            );
            digits.labels.push(*label);
            digits.indices.push(i);
        }
        digits
    }

    /// The MNIST test set, or the built-in digits and the reason (for the log).
    pub fn load(dir: &Path) -> (AttractDigits, Option<AttractError>) {
        match AttractDigits::from_mnist(dir) {
            Ok(digits) => (digits, None),
            Err(e) => (AttractDigits::builtin(), Some(e)),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn source(&self) -> DigitSource {
        self.source
    }

    fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.images[i * n..(i + 1) * n]
    }
}

/// The order in which a digit's pixels appear under the pen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PenPath {
    /// Per pixel, the step at which it appears; `u32::MAX` for background.
    reveal: Vec<u32>,
    /// Core pixels in pen order (row-major indices).
    order: Vec<u32>,
}

impl PenPath {
    /// The path through `pixels` (`cols` wide, row-major grey bytes).
    pub fn new(pixels: &[u8], cols: usize) -> PenPath {
        let cols = cols.max(1);
        let strongest = pixels.iter().copied().max().unwrap_or(0);
        let threshold = CORE_INK.min(strongest.div_ceil(2)).max(1);
        let core: Vec<u32> = (0..pixels.len() as u32)
            .filter(|&i| pixels[i as usize] >= threshold)
            .collect();
        let xy = |i: u32| ((i as usize % cols) as i64, (i as usize / cols) as i64);
        let d2 = |a: u32, b: u32| {
            let ((ax, ay), (bx, by)) = (xy(a), xy(b));
            (ax - bx).pow(2) + (ay - by).pow(2)
        };

        // Greedy nearest-neighbour walk from the top-most (then left-most) core pixel:
        // row-major order makes the first one that.
        let mut order = Vec::with_capacity(core.len());
        let mut left = core.clone();
        if !left.is_empty() {
            let mut at = left.remove(0);
            order.push(at);
            while !left.is_empty() {
                // Ties go to the first in row-major order: deterministic.
                let (k, _) = left
                    .iter()
                    .enumerate()
                    .min_by_key(|&(_, &p)| d2(at, p))
                    .unwrap_or((0, &0));
                at = left.remove(k);
                order.push(at);
            }
        }

        let mut reveal = vec![u32::MAX; pixels.len()];
        for (step, &p) in order.iter().enumerate() {
            reveal[p as usize] = step as u32;
        }
        // Faint pixels come with the nearest core pixel (the earliest among equals).
        for i in 0..pixels.len() as u32 {
            if pixels[i as usize] > 0 && reveal[i as usize] == u32::MAX {
                reveal[i as usize] = order
                    .iter()
                    .enumerate()
                    .min_by_key(|&(step, &p)| (d2(i, p), step))
                    .map_or(0, |(step, _)| step as u32);
            }
        }
        PenPath { reveal, order }
    }

    /// Pen steps from first to last core pixel.
    pub fn steps(&self) -> usize {
        self.order.len()
    }

    /// Core pixels in pen order (row-major indices), for tests and tools.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// The image after the pen's first `steps` steps, as ink in 0..1.
    pub fn reveal(&self, pixels: &[u8], steps: usize) -> Vec<f32> {
        pixels
            .iter()
            .zip(&self.reveal)
            .map(|(&v, &step)| {
                if (step as usize) < steps {
                    f32::from(v) / 255.0
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// One moment of attract mode.
#[derive(Clone, Debug, PartialEq)]
pub struct AttractFrame {
    /// Which digit of the sequence (0, 1, 2, …): a new number means a new, empty canvas.
    pub sequence: u64,
    /// The digit's label (what the model should say).
    pub label: u8,
    /// Index in the source (MNIST test index, or 0–9 for the built-in ones).
    pub index: usize,
    /// The digit drawn so far, for `Canvas::load_image`.
    pub ink: InkImage,
    /// How much of the pen path is drawn, 0..1.
    pub progress: f32,
}

impl AttractFrame {
    /// The 28×28 model input (MNIST convention, before normalisation) of the drawing so
    /// far; `Empty` at the very start of a digit.
    pub fn model_input(&self) -> Result<Vec<f32>, PreprocessError> {
        mnist_input(&self.ink, 28, 28)
    }
}

/// Plays [`AttractDigits`] in a seeded order; see the module docs.
#[derive(Clone, Debug)]
pub struct AttractPlayer {
    digits: AttractDigits,
    order: Vec<u32>,
    seconds_per_digit: f64,
    /// The current digit's sequence number and pen path.
    current: Option<(u64, PenPath)>,
    /// The (sequence, steps) last returned by `update`.
    shown: Option<(u64, usize)>,
}

impl AttractPlayer {
    pub fn new(digits: AttractDigits, config: &AttractConfig) -> AttractPlayer {
        let mut order: Vec<u32> = (0..digits.len() as u32).collect();
        let mut rng = SplitMix64(config.seed);
        // Fisher–Yates.
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        AttractPlayer {
            digits,
            order,
            seconds_per_digit: config.seconds_per_digit.max(0.1),
            current: None,
            shown: None,
        }
    }

    pub fn digits(&self) -> &AttractDigits {
        &self.digits
    }

    /// Forgets what was shown, so the next `update` returns a frame (call when attract
    /// mode starts).
    pub fn restart(&mut self) {
        self.shown = None;
    }

    /// The drawing at `elapsed` since attract mode started, when it differs from the one
    /// returned last; `None` when nothing changed (or there are no digits).
    pub fn update(&mut self, elapsed: Duration) -> Option<AttractFrame> {
        let (sequence, steps_wanted) = self.position(elapsed)?;
        if self.current.as_ref().is_none_or(|(s, _)| *s != sequence) {
            let image = self.image_of(sequence);
            let path = PenPath::new(image, self.digits.cols);
            self.current = Some((sequence, path));
        }
        let (_, path) = self.current.as_ref()?;
        let steps = steps_wanted(path.steps());
        if self.shown == Some((sequence, steps)) {
            return None;
        }
        self.shown = Some((sequence, steps));
        Some(self.frame(sequence, path, steps))
    }

    /// The drawing at `elapsed`, whether or not it changed (pure; recomputes the path).
    pub fn frame_at(&self, elapsed: Duration) -> Option<AttractFrame> {
        let (sequence, steps_wanted) = self.position(elapsed)?;
        let path = PenPath::new(self.image_of(sequence), self.digits.cols);
        let steps = steps_wanted(path.steps());
        Some(self.frame(sequence, &path, steps))
    }

    /// Which digit, and a function from its number of pen steps to the steps drawn.
    fn position(&self, elapsed: Duration) -> Option<(u64, impl Fn(usize) -> usize + use<>)> {
        if self.order.is_empty() {
            return None;
        }
        let t = elapsed.as_secs_f64();
        let per = self.seconds_per_digit;
        let sequence = (t / per).floor() as u64;
        // Time into this digit, quantised to the update rate.
        let local = t - sequence as f64 * per;
        let local = (local * UPDATES_PER_SECOND).floor() / UPDATES_PER_SECOND;
        let drawing = (per * DRAW_SHARE).max(1e-3);
        let share = (local / drawing).clamp(0.0, 1.0);
        Some((sequence, move |total: usize| {
            ((share * total as f64).ceil() as usize).min(total)
        }))
    }

    fn image_of(&self, sequence: u64) -> &[u8] {
        let slot = (sequence % self.order.len() as u64) as usize;
        self.digits.image(self.order[slot] as usize)
    }

    fn frame(&self, sequence: u64, path: &PenPath, steps: usize) -> AttractFrame {
        let slot = (sequence % self.order.len() as u64) as usize;
        let i = self.order[slot] as usize;
        let pixels = path.reveal(self.digits.image(i), steps);
        AttractFrame {
            sequence,
            label: self.digits.labels[i],
            index: self.digits.indices[i],
            ink: InkImage::new(self.digits.cols, self.digits.rows, pixels),
            progress: if path.steps() == 0 {
                1.0
            } else {
                steps as f32 / path.steps() as f32
            },
        }
    }
}

/// A tiny seedable generator (SplitMix64), enough to shuffle digits.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> AttractConfig {
        AttractConfig {
            seed,
            seconds_per_digit: 6.0,
            ..AttractConfig::default()
        }
    }

    #[test]
    fn the_builtin_digits_are_all_there() {
        let digits = AttractDigits::builtin();
        assert_eq!(digits.len(), 10);
        assert_eq!(digits.labels, (0..10).collect::<Vec<u8>>());
        for i in 0..10 {
            assert!(digits.image(i).iter().filter(|&&v| v >= CORE_INK).count() > 20);
        }
    }

    #[test]
    fn the_pen_walks_a_line_from_its_top() {
        // A vertical bar, two pixels wide, rows 3..9 of a 12×12 image, with a faint edge.
        let cols = 12;
        let mut pixels = vec![0u8; cols * cols];
        for y in 3..9 {
            pixels[y * cols + 5] = 255;
            pixels[y * cols + 6] = 200;
            pixels[y * cols + 7] = 40;
        }
        let path = PenPath::new(&pixels, cols);
        assert_eq!(path.steps(), 12);
        let rows: Vec<usize> = path.order().iter().map(|&i| i as usize / cols).collect();
        assert!(
            rows.windows(2).all(|w| w[0] <= w[1]),
            "top to bottom: {rows:?}"
        );
        // Each step moves to a neighbour: no jumps along a connected stroke.
        for w in path.order().windows(2) {
            let (a, b) = (w[0] as i64, w[1] as i64);
            let (dx, dy) = (a % 12 - b % 12, a / 12 - b / 12);
            assert!(dx.abs() <= 1 && dy.abs() <= 1, "jump {a} → {b}");
        }
        // Half way, the top half is drawn, edge included, and nothing below.
        let half = path.reveal(&pixels, 6);
        assert!(half[3 * cols + 7] > 0.0);
        assert_eq!(half[8 * cols + 5], 0.0);
        // At the end it is exactly the image.
        let all = path.reveal(&pixels, path.steps());
        let exact: Vec<f32> = pixels.iter().map(|&v| f32::from(v) / 255.0).collect();
        assert_eq!(all, exact);
        assert!(path.reveal(&pixels, 0).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn odd_images_do_not_panic() {
        for (pixels, cols) in [
            (vec![], 28),
            (vec![0u8; 784], 28),
            (vec![3u8; 784], 28),
            (vec![255u8; 5], 0),
        ] {
            let path = PenPath::new(&pixels, cols);
            assert_eq!(path.reveal(&pixels, usize::MAX).len(), pixels.len());
        }
    }

    #[test]
    fn digits_are_drawn_progressively_then_held_then_replaced() {
        let mut player = AttractPlayer::new(AttractDigits::builtin(), &config(7));
        let at = Duration::from_secs_f64;
        let first = player.update(at(0.0)).expect("a first frame");
        assert_eq!(first.sequence, 0);
        assert!(first.progress < 0.05);
        let mid = player.update(at(2.0)).expect("grown");
        assert!((0.4..0.6).contains(&mid.progress), "{}", mid.progress);
        let ink = |f: &AttractFrame| f.ink.pixels.iter().filter(|&&v| v > 0.0).count();
        assert!(ink(&mid) > ink(&first));
        // Within one update period nothing changes.
        assert!(player.update(at(2.0 + 0.2 / UPDATES_PER_SECOND)).is_none());
        let done = player.update(at(4.5)).expect("finished");
        assert_eq!(done.progress, 1.0);
        assert!(player.update(at(5.9)).is_none(), "held");
        let next = player.update(at(6.0)).expect("the next digit");
        assert_eq!(next.sequence, 1);
        assert!(ink(&next) < ink(&done));
        assert!(done.model_input().is_ok());
        // The pure query agrees with the player.
        assert_eq!(player.frame_at(at(2.0)).unwrap(), mid);
        // Starting over shows the frame again.
        player.restart();
        assert!(player.update(at(6.0)).is_some());
    }

    #[test]
    fn the_seed_decides_the_order() {
        let labels = |seed| {
            let player = AttractPlayer::new(AttractDigits::builtin(), &config(seed));
            (0..10)
                .map(|k| player.frame_at(Duration::from_secs(6 * k)).unwrap().label)
                .collect::<Vec<u8>>()
        };
        assert_eq!(labels(1), labels(1));
        assert_ne!(labels(1), labels(2));
        let mut sorted = labels(1);
        sorted.sort();
        assert_eq!(
            sorted,
            (0..10).collect::<Vec<u8>>(),
            "each digit once per cycle"
        );
    }

    #[test]
    fn a_missing_data_set_falls_back_to_the_builtin_digits() {
        let dir = tempfile::tempdir().unwrap();
        let (digits, error) = AttractDigits::load(&dir.path().join("nothing here"));
        assert_eq!(digits.source(), DigitSource::BuiltIn);
        assert_eq!(digits.len(), 10);
        let error = error.expect("the reason").to_string();
        assert!(error.contains("built-in"), "{error}");
        assert!(!error.contains('\n'));
    }
}
