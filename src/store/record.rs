//! The records the store keeps, their validation and their byte layout (format version 1).
//!
//! Every stored value begins with its own format version (u16), so a later cnnviz can read
//! old values and this one can refuse values it does not understand, record by record as
//! well as store-wide (the `meta` table).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::data::preprocess::InkImage;

use super::codec::{CodecResult, Reader, Writer};

/// The store format this cnnviz writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// A report's reason is free text of at most this many characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The drawing may be at most this wide and tall (canvas resolution, with room to spare).
pub const MAX_DRAWING_SIDE: u32 = 4096;
/// Stored PNGs larger than this are refused before decoding.
pub const MAX_PNG_BYTES: usize = 32 << 20;
/// Model inputs of at most this many values (1×28×28 for MNIST).
pub const MAX_INPUT_VALUES: usize = 1 << 20;
/// At most this many classes.
pub const MAX_CLASSES: usize = 4096;
/// Model and layer names longer than this are refused.
pub const MAX_NAME_BYTES: usize = 256;

/// Local id of a saved prediction, assigned in save order (1, 2, ...) by one store. Ids are
/// not stable across stores: export/import matches records by [`ContentId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PredictionId(pub u64);

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Local id of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportId(pub u64);

/// What a prediction *is*, independent of the store it lives in: a hash of its time, drawing,
/// input and model. Import uses it so that merging the same export twice adds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentId(pub [u8; 16]);

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl ContentId {
    pub fn from_hex(text: &str) -> Option<ContentId> {
        let mut out = [0u8; 16];
        from_hex_into(text, &mut out).then_some(ContentId(out))
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex_into(text: &str, out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 || !text.is_ascii() {
        return false;
    }
    for (i, slot) in out.iter_mut().enumerate() {
        match u8::from_str_radix(&text[2 * i..2 * i + 2], 16) {
            Ok(b) => *slot = b,
            Err(_) => return false,
        }
    }
    true
}

/// Which model made a prediction: the SHA-256 of its file and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelIdentity {
    pub name: String,
    pub sha256: [u8; 32],
}

impl ModelIdentity {
    /// Hashes a model file's bytes (the app reads the file once at start-up).
    pub fn from_file_bytes(name: &str, bytes: &[u8]) -> ModelIdentity {
        ModelIdentity {
            name: name.to_string(),
            sha256: Sha256::digest(bytes).into(),
        }
    }

    /// Reads and hashes a model file.
    pub fn of_file(name: &str, path: &std::path::Path) -> std::io::Result<ModelIdentity> {
        Ok(ModelIdentity::from_file_bytes(name, &std::fs::read(path)?))
    }

    pub fn sha256_hex(&self) -> String {
        to_hex(&self.sha256)
    }

    /// The first 12 hex digits, enough to tell models apart on screen.
    pub fn short_hash(&self) -> String {
        to_hex(&self.sha256[..6])
    }
}

/// A grey drawing at canvas resolution: 0 is paper, 255 full ink (white strokes on black, as
/// MNIST has them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drawing {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Drawing {
    /// From ink in 0..1, as the canvas and `data::preprocess::InkImage` hold it.
    pub fn from_ink(width: u32, height: u32, ink: &[f32]) -> Drawing {
        Drawing {
            width,
            height,
            pixels: ink
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect(),
        }
    }

    /// Ink in 0..1, ready for `data::preprocess`.
    pub fn to_ink(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
    }

    /// From the canvas's raster.
    pub fn from_ink_image(image: &InkImage) -> Drawing {
        Drawing::from_ink(image.width as u32, image.height as u32, &image.pixels)
    }

    /// Back into the canvas's form (for "put back on the canvas").
    pub fn to_ink_image(&self) -> InkImage {
        InkImage::new(self.width as usize, self.height as usize, self.to_ink())
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.width == 0
            || self.height == 0
            || self.width > MAX_DRAWING_SIDE
            || self.height > MAX_DRAWING_SIDE
        {
            return Err(format!(
                "a {}×{} drawing; 1 to {MAX_DRAWING_SIDE} pixels a side are accepted",
                self.width, self.height
            ));
        }
        if self.pixels.len() != self.width as usize * self.height as usize {
            return Err(format!(
                "a {}×{} drawing with {} pixels",
                self.width,
                self.height,
                self.pixels.len()
            ));
        }
        Ok(())
    }
}

/// The model's input as the network saw it: `channels × height × width` values after the
/// MNIST preprocessing and before normalisation (0..1), so a re-run is exact.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    pub channels: u16,
    pub height: u16,
    pub width: u16,
    pub values: Vec<f32>,
}

impl ModelInput {
    fn validate(&self) -> Result<(), String> {
        let n = self.channels as usize * self.height as usize * self.width as usize;
        if n == 0 || n > MAX_INPUT_VALUES || self.values.len() != n {
            return Err(format!(
                "a {}×{}×{} input with {} values",
                self.channels,
                self.height,
                self.width,
                self.values.len()
            ));
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err("an input value that is not finite".into());
        }
        Ok(())
    }
}

/// The Grad-CAM that was shown when the prediction was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GradCamRecord {
    /// The class it explained.
    pub target: u16,
    /// Index of the conv block (into `Model::conv_blocks`) and its name.
    pub block: u16,
    pub layer: String,
    /// The heatmap at input resolution, 0..255 (quantised: it is for looking at), or empty
    /// when none was computed.
    pub heatmap: Vec<u8>,
}

impl GradCamRecord {
    /// From a heatmap in 0..1 (as `CamOutput::heatmap` has it), quantised to bytes.
    pub fn from_heatmap(target: u16, block: u16, layer: &str, heatmap: &[f32]) -> GradCamRecord {
        GradCamRecord {
            target,
            block,
            layer: layer.to_string(),
            heatmap: heatmap
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect(),
        }
    }
}

/// A prediction to save; the store adds the id, the content id and the PNG encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPrediction {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub drawing: Drawing,
    pub input: ModelInput,
    pub predicted: u16,
    pub probabilities: Vec<f32>,
    pub grad_cam: GradCamRecord,
    pub model: ModelIdentity,
}

impl NewPrediction {
    /// What the window saves after an inference: the canvas, the model input (0..1, before
    /// normalisation), one image of `GpuNetwork` output, the Grad-CAM block's name and the
    /// model. Without Grad-CAM in the output, the heatmap is left empty.
    pub fn from_inference(
        time_ms: u64,
        canvas: &InkImage,
        input: ModelInput,
        output: &crate::gpu::ImageOutput,
        layer: &str,
        model: ModelIdentity,
    ) -> NewPrediction {
        let grad_cam = match &output.grad_cam {
            Some(cam) => GradCamRecord::from_heatmap(
                output.target as u16,
                cam.block as u16,
                layer,
                &cam.heatmap,
            ),
            None => GradCamRecord {
                target: output.target as u16,
                block: 0,
                layer: layer.to_string(),
                heatmap: Vec::new(),
            },
        };
        NewPrediction {
            time_ms,
            drawing: Drawing::from_ink_image(canvas),
            input,
            predicted: output.predicted as u16,
            probabilities: output.probabilities.clone(),
            grad_cam,
            model,
        }
    }
}

/// A saved prediction as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedPrediction {
    pub id: PredictionId,
    pub content_id: ContentId,
    /// The format version the record was written with.
    pub format_version: u16,
    pub time_ms: u64,
    /// The drawing as a grey PNG at canvas resolution.
    pub drawing_png: Vec<u8>,
    pub input: ModelInput,
    pub predicted: u16,
    pub probabilities: Vec<f32>,
    pub grad_cam: GradCamRecord,
    pub model: ModelIdentity,
}

impl SavedPrediction {
    /// The probability of the predicted class.
    pub fn confidence(&self) -> f32 {
        confidence(&self.probabilities, self.predicted)
    }

    /// Decodes the stored PNG, with size limits.
    pub fn drawing(&self) -> Result<Drawing, super::StoreError> {
        super::pixels::decode_png(&self.drawing_png)
    }
}

pub(crate) fn confidence(probabilities: &[f32], predicted: u16) -> f32 {
    probabilities
        .get(predicted as usize)
        .copied()
        .unwrap_or(0.0)
}

/// A misclassification report to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    /// The digit the drawing really is.
    pub true_digit: u8,
    /// Free text, at most [`MAX_REASON_CHARS`] characters; may be empty.
    pub reason: String,
    pub time_ms: u64,
}

/// A stored report. A prediction has at most one: reporting it again replaces the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub id: ReportId,
    pub prediction: PredictionId,
    pub format_version: u16,
    pub true_digit: u8,
    pub reason: String,
    pub time_ms: u64,
}

/// Checks a report's reason: at most [`MAX_REASON_CHARS`] characters and no control
/// characters other than newline and tab (they would garble lists and exports). The report
/// dialog uses the same check to say what is wrong while typing.
pub fn validate_reason(reason: &str) -> Result<(), String> {
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(format!(
            "the reason has {chars} characters; at most {MAX_REASON_CHARS} are allowed"
        ));
    }
    if let Some(c) = reason
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!(
            "the reason contains the control character U+{:04X}",
            c as u32
        ));
    }
    Ok(())
}

impl NewReport {
    pub fn validate(&self) -> Result<(), String> {
        if self.true_digit > 9 {
            return Err(format!("true digit {}; it must be 0 to 9", self.true_digit));
        }
        validate_reason(&self.reason)
    }
}

impl NewPrediction {
    pub fn validate(&self) -> Result<(), String> {
        self.drawing.validate()?;
        self.input.validate()?;
        validate_outputs(
            self.predicted,
            &self.probabilities,
            &self.grad_cam,
            &self.input,
            &self.model,
        )
    }
}

fn validate_outputs(
    predicted: u16,
    probabilities: &[f32],
    grad_cam: &GradCamRecord,
    input: &ModelInput,
    model: &ModelIdentity,
) -> Result<(), String> {
    let classes = probabilities.len();
    if classes == 0 || classes > MAX_CLASSES {
        return Err(format!("{classes} probabilities"));
    }
    if probabilities
        .iter()
        .any(|p| !p.is_finite() || *p < 0.0 || *p > 1.0 + 1e-3)
    {
        return Err("a probability outside 0..1".into());
    }
    if predicted as usize >= classes {
        return Err(format!("predicted class {predicted} of {classes}"));
    }
    if grad_cam.target as usize >= classes {
        return Err(format!("Grad-CAM target {} of {classes}", grad_cam.target));
    }
    let plane = input.height as usize * input.width as usize;
    if !grad_cam.heatmap.is_empty() && grad_cam.heatmap.len() != plane {
        return Err(format!(
            "a Grad-CAM heatmap of {} values for a {}×{} input",
            grad_cam.heatmap.len(),
            input.height,
            input.width
        ));
    }
    if grad_cam.layer.len() > MAX_NAME_BYTES || model.name.len() > MAX_NAME_BYTES {
        return Err("a layer or model name that is too long".into());
    }
    Ok(())
}

/// The content id: a hash of what makes the prediction this one.
pub(crate) fn content_id(
    time_ms: u64,
    drawing_png: &[u8],
    input: &ModelInput,
    model: &ModelIdentity,
) -> ContentId {
    let mut h = Sha256::new();
    h.update(b"cnnviz prediction v1\0");
    h.update(time_ms.to_le_bytes());
    h.update((drawing_png.len() as u64).to_le_bytes());
    h.update(drawing_png);
    h.update(input.channels.to_le_bytes());
    h.update(input.height.to_le_bytes());
    h.update(input.width.to_le_bytes());
    for v in &input.values {
        h.update(v.to_le_bytes());
    }
    h.update(model.sha256);
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    ContentId(id)
}

const RECORD_VERSION: u16 = FORMAT_VERSION as u16;

/// Reads the leading version of a value; newer than this cnnviz is an error the caller turns
/// into [`super::StoreError::NewerFormat`].
pub(crate) enum Versioned<T> {
    Known(T),
    Newer(u16),
}

fn versioned<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut Reader, u16) -> CodecResult<T>,
) -> CodecResult<Versioned<T>> {
    let mut r = Reader::new(bytes);
    let version = r.u16()?;
    if version > RECORD_VERSION {
        return Ok(Versioned::Newer(version));
    }
    if version == 0 {
        return Err("record version 0".into());
    }
    let value = read(&mut r, version)?;
    r.finish()?;
    Ok(Versioned::Known(value))
}

pub(crate) fn encode_prediction(p: &SavedPrediction) -> Vec<u8> {
    let mut w = Writer::with_capacity(p.drawing_png.len() + 4 * p.input.values.len() + 1024);
    w.u16(RECORD_VERSION);
    w.raw(&p.content_id.0);
    w.u64(p.time_ms);
    w.bytes(&p.drawing_png);
    w.u16(p.input.channels);
    w.u16(p.input.height);
    w.u16(p.input.width);
    w.packed_f32s(&p.input.values);
    w.u16(p.predicted);
    w.f32s(&p.probabilities);
    w.u16(p.grad_cam.target);
    w.u16(p.grad_cam.block);
    w.str(&p.grad_cam.layer);
    w.packed_bytes(&p.grad_cam.heatmap);
    w.str(&p.model.name);
    w.raw(&p.model.sha256);
    w.finish()
}

pub(crate) fn decode_prediction(
    id: PredictionId,
    bytes: &[u8],
) -> CodecResult<Versioned<SavedPrediction>> {
    versioned(bytes, |r, version| {
        let content_id = ContentId(r.raw()?);
        let time_ms = r.u64()?;
        let drawing_png = r.bytes(MAX_PNG_BYTES)?.to_vec();
        let (channels, height, width) = (r.u16()?, r.u16()?, r.u16()?);
        let values = r.packed_f32s(MAX_INPUT_VALUES)?;
        let predicted = r.u16()?;
        let probabilities = r.f32s(MAX_CLASSES)?;
        let grad_cam = GradCamRecord {
            target: r.u16()?,
            block: r.u16()?,
            layer: r.string(MAX_NAME_BYTES)?,
            heatmap: r.packed_bytes(MAX_INPUT_VALUES)?,
        };
        let model = ModelIdentity {
            name: r.string(MAX_NAME_BYTES)?,
            sha256: r.raw()?,
        };
        let input = ModelInput {
            channels,
            height,
            width,
            values,
        };
        input.validate()?;
        validate_outputs(predicted, &probabilities, &grad_cam, &input, &model)?;
        Ok(SavedPrediction {
            id,
            content_id,
            format_version: version,
            time_ms,
            drawing_png,
            input,
            predicted,
            probabilities,
            grad_cam,
            model,
        })
    })
}

pub(crate) fn encode_report(r: &Report) -> Vec<u8> {
    let mut w = Writer::with_capacity(64 + r.reason.len());
    w.u16(RECORD_VERSION);
    w.u64(r.prediction.0);
    w.u8(r.true_digit);
    w.str(&r.reason);
    w.u64(r.time_ms);
    w.finish()
}

pub(crate) fn decode_report(id: ReportId, bytes: &[u8]) -> CodecResult<Versioned<Report>> {
    versioned(bytes, |r, version| {
        let report = Report {
            id,
            prediction: PredictionId(r.u64()?),
            format_version: version,
            true_digit: r.u8()?,
            reason: r.string(4 * MAX_REASON_CHARS)?,
            time_ms: r.u64()?,
        };
        NewReport {
            true_digit: report.true_digit,
            reason: report.reason.clone(),
            time_ms: report.time_ms,
        }
        .validate()?;
        Ok(report)
    })
}

/// What the gallery shows of a prediction without decoding it: kept in its own table so a
/// page of 100 reads a few kilobytes, not 100 full records.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub id: PredictionId,
    pub time_ms: u64,
    pub predicted: u16,
    pub confidence: f32,
    /// Set when the prediction has been reported.
    pub true_digit: Option<u8>,
}

impl Summary {
    /// Reported, and the report says the prediction was wrong.
    pub fn is_wrong(&self) -> bool {
        self.true_digit
            .is_some_and(|t| u16::from(t) != self.predicted)
    }
}

pub(crate) fn encode_summary(s: &Summary) -> Vec<u8> {
    let mut w = Writer::with_capacity(24);
    w.u16(RECORD_VERSION);
    w.u64(s.time_ms);
    w.u16(s.predicted);
    w.f32(s.confidence);
    // 255: not reported (true digits are 0..9).
    w.u8(s.true_digit.unwrap_or(u8::MAX));
    w.finish()
}

pub(crate) fn decode_summary(id: PredictionId, bytes: &[u8]) -> CodecResult<Versioned<Summary>> {
    versioned(bytes, |r, _| {
        let time_ms = r.u64()?;
        let predicted = r.u16()?;
        let confidence = r.f32()?;
        let true_digit = match r.u8()? {
            u8::MAX => None,
            d @ 0..=9 => Some(d),
            d => return Err(format!("true digit {d}")),
        };
        Ok(Summary {
            id,
            time_ms,
            predicted,
            confidence,
            true_digit,
        })
    })
}
