//! The survey on disk, one file per model and data set in the cache directory
//! (`CNNVIZ_CACHE_DIR` overrides it, as for the tuner): a first line naming the format, a
//! JSON header line, then the labels, the predictions (a byte each) and the channel
//! statistics (three little-endian f32 per image and channel, block after block). A file
//! that does not match the model and data set exactly — wrong hash, shapes, length — is
//! ignored (the caller logs why) and rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BlockSurvey, ChannelStat, Survey};

const MAGIC: &str = "cnnviz.survey/1";

#[derive(Serialize, Deserialize)]
struct Header {
    model_hash: String,
    data_hash: String,
    classes: usize,
    images: usize,
    blocks: Vec<BlockHeader>,
}

#[derive(Serialize, Deserialize)]
struct BlockHeader {
    name: String,
    channels: usize,
    height: usize,
    width: usize,
}

/// Where the survey of a model and data set lives in `dir`.
pub fn survey_path(dir: &Path, model_hash: &str, data_hash: &str) -> PathBuf {
    dir.join(format!("survey-{model_hash}-{data_hash}.bin"))
}

/// Writes `survey` (to a temporary name first, so a crash never leaves half a file).
pub fn save(path: &Path, survey: &Survey) -> Result<(), String> {
    let header = Header {
        model_hash: survey.model_hash.clone(),
        data_hash: survey.data_hash.clone(),
        classes: survey.classes,
        images: survey.images(),
        blocks: survey
            .blocks
            .iter()
            .map(|b| BlockHeader {
                name: b.name.clone(),
                channels: b.channels,
                height: b.height,
                width: b.width,
            })
            .collect(),
    };
    let mut bytes = format!("{MAGIC}\n").into_bytes();
    bytes.extend(serde_json::to_vec(&header).map_err(|e| e.to_string())?);
    bytes.push(b'\n');
    bytes.extend(&survey.labels);
    bytes.extend(&survey.predicted);
    for block in &survey.blocks {
        for s in &block.stats {
            for v in [s.max, s.argmax as f32, s.mean] {
                bytes.extend(v.to_le_bytes());
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)
        .map_err(|e| format!("creating {}: {e}", temporary.display()))?;
    file.write_all(&bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}

/// The survey in `path` if it is exactly the one of `model_hash`, `data_hash`, `images`
/// images and `blocks` (names and shapes); `Ok(None)` when there is no file, `Err` (why)
/// when it exists but does not fit.
pub fn load(
    path: &Path,
    model_hash: &str,
    data_hash: &str,
    images: usize,
    blocks: &[(String, usize, usize, usize)],
) -> Result<Option<Survey>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let mut lines = bytes.splitn(3, |&b| b == b'\n');
    if lines.next() != Some(MAGIC.as_bytes()) {
        return Err(format!("{} is not a {MAGIC} file", path.display()));
    }
    let header: Header = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|e| format!("{}: bad header: {e}", path.display()))?;
    let body = lines.next().unwrap_or_default();
    let shapes: Vec<(String, usize, usize, usize)> = header
        .blocks
        .iter()
        .map(|b| (b.name.clone(), b.channels, b.height, b.width))
        .collect();
    if header.model_hash != model_hash
        || header.data_hash != data_hash
        || header.images != images
        || shapes != blocks
    {
        return Err(format!(
            "{} belongs to another model or data set",
            path.display()
        ));
    }
    let channels: usize = blocks.iter().map(|b| b.1).sum();
    let expected = 2 * images + 12 * images * channels;
    if body.len() != expected {
        return Err(format!(
            "{} has {} bytes of data; {expected} expected",
            path.display(),
            body.len()
        ));
    }
    let (labels, rest) = body.split_at(images);
    let (predicted, mut stats) = rest.split_at(images);
    if predicted.iter().any(|&p| usize::from(p) >= header.classes) {
        return Err(format!(
            "{} has a prediction outside the classes",
            path.display()
        ));
    }
    let mut surveys = Vec::with_capacity(blocks.len());
    for (name, channels, height, width) in blocks {
        let (mine, rest) = stats.split_at(12 * images * channels);
        stats = rest;
        let values: Vec<f32> = mine
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        surveys.push(BlockSurvey {
            name: name.clone(),
            channels: *channels,
            height: *height,
            width: *width,
            stats: values
                .chunks_exact(3)
                .map(|s| ChannelStat {
                    max: s[0],
                    argmax: s[1] as u32,
                    mean: s[2],
                })
                .collect(),
        });
    }
    Ok(Some(Survey {
        model_hash: header.model_hash,
        data_hash: header.data_hash,
        classes: header.classes,
        labels: labels.to_vec(),
        predicted: predicted.to_vec(),
        blocks: surveys,
    }))
}
