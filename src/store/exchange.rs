//! Sharing records between installations: `export` writes a folder of PNGs and a JSON
//! manifest; `import` merges such a folder into a store. Records are matched by content id,
//! so importing the same folder twice adds nothing.
//!
//! ```text
//! DIR/manifest.json            format, version and one entry per prediction
//! DIR/drawings/<content>.png   the drawing at canvas resolution
//! DIR/gradcam/<content>.png    the stored Grad-CAM heatmap (grey, input resolution)
//! ```
//!
//! The model input stays in the manifest as numbers (exactly the f32s the network saw). An
//! import trusts nothing: file names must stay inside the folder, PNGs are decoded with
//! limits, every record is validated as a save would be, and the content id is recomputed.

use std::fs;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pixels::{decode_png, encode_png};
use super::query::{Filter, Sort};
use super::record::{
    ContentId, Drawing, GradCamRecord, MAX_PNG_BYTES, ModelIdentity, ModelInput, NewReport,
    PredictionId, SavedPrediction, from_hex_into,
};
use super::write::{self, Prepared, insert_prediction, set_report};
use super::{PredictionStore, StoreError};

pub const MANIFEST: &str = "manifest.json";
pub const EXPORT_FORMAT: &str = "cnnviz.store-export";
pub const EXPORT_VERSION: u32 = 1;
/// A manifest larger than this is refused before parsing.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 30;
/// Imports commit in batches this large: durable progress without one giant transaction.
const IMPORT_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a cnnviz export manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{0} already holds an export (manifest.json); choose an empty folder")]
    NotEmpty(PathBuf),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExchangeError + '_ {
    move |source| ExchangeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub exported_ms: u64,
    pub records: Vec<ManifestRecord>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestRecord {
    pub content_id: String,
    pub time_ms: u64,
    /// Relative to the folder.
    pub drawing: String,
    pub input: ManifestInput,
    pub predicted: u16,
    pub probabilities: Vec<f32>,
    pub grad_cam: ManifestGradCam,
    pub model: ManifestModel,
    pub report: Option<ManifestReport>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestInput {
    pub channels: u16,
    pub height: u16,
    pub width: u16,
    pub values: Vec<f32>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestGradCam {
    pub target: u16,
    pub block: u16,
    pub layer: String,
    /// Relative to the folder; absent when no heatmap was stored.
    pub heatmap: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestModel {
    pub name: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestReport {
    pub true_digit: u8,
    pub reason: String,
    pub time_ms: u64,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExportSummary {
    pub predictions: u64,
    pub reports: u64,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportSummary {
    /// Predictions that were new to this store.
    pub added: u64,
    /// Predictions that were already there (same content id).
    pub already_present: u64,
    /// Reports added or updated (a newer report replaces an older one).
    pub reports_added: u64,
    /// Records refused, one line each, naming the record and the reason.
    pub rejected: Vec<String>,
}

/// Writes the predictions that `filter` selects (oldest first, at most `limit`) to `dir`.
pub fn export(
    store: &PredictionStore,
    dir: &Path,
    filter: &Filter,
    limit: usize,
) -> Result<ExportSummary, ExchangeError> {
    let manifest_path = dir.join(MANIFEST);
    if manifest_path.exists() {
        return Err(ExchangeError::NotEmpty(dir.to_path_buf()));
    }
    for sub in ["drawings", "gradcam"] {
        fs::create_dir_all(dir.join(sub)).map_err(io(&dir.join(sub)))?;
    }
    let ids = store.ids(filter, Sort::Oldest, 0, limit)?;
    let mut summary = ExportSummary::default();
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(p) = store.get(id)? else { continue };
        let report = store.report_of(id)?;
        let name = p.content_id.to_string();
        let drawing = format!("drawings/{name}.png");
        write_file(&dir.join(&drawing), &p.drawing_png)?;
        let heatmap = if p.grad_cam.heatmap.is_empty() {
            None
        } else {
            let png = encode_png(&Drawing {
                width: u32::from(p.input.width),
                height: u32::from(p.input.height),
                pixels: p.grad_cam.heatmap.clone(),
            })?;
            let file = format!("gradcam/{name}.png");
            write_file(&dir.join(&file), &png)?;
            Some(file)
        };
        summary.predictions += 1;
        summary.reports += u64::from(report.is_some());
        records.push(ManifestRecord {
            content_id: name,
            time_ms: p.time_ms,
            drawing,
            input: ManifestInput {
                channels: p.input.channels,
                height: p.input.height,
                width: p.input.width,
                values: p.input.values,
            },
            predicted: p.predicted,
            probabilities: p.probabilities,
            grad_cam: ManifestGradCam {
                target: p.grad_cam.target,
                block: p.grad_cam.block,
                layer: p.grad_cam.layer,
                heatmap,
            },
            model: ManifestModel {
                name: p.model.name.clone(),
                sha256: p.model.sha256_hex(),
            },
            report: report.map(|r| ManifestReport {
                true_digit: r.true_digit,
                reason: r.reason,
                time_ms: r.time_ms,
            }),
        });
    }
    let manifest = Manifest {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        exported_ms: write::now_ms(),
        records,
    };
    // The manifest goes last and appears whole: a folder without one is an unfinished export.
    let temp = dir.join(".manifest.json.partial");
    {
        let file = fs::File::create(&temp).map_err(io(&temp))?;
        let mut out = BufWriter::new(file);
        serde_json::to_writer(&mut out, &manifest).map_err(|e| io(&temp)(e.into()))?;
        out.flush().map_err(io(&temp))?;
        out.get_ref().sync_all().map_err(io(&temp))?;
    }
    fs::rename(&temp, &manifest_path).map_err(io(&manifest_path))?;
    Ok(summary)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExchangeError> {
    fs::write(path, bytes).map_err(io(path))
}

/// Reads and checks a folder's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ExchangeError> {
    let path = dir.join(MANIFEST);
    let file = fs::File::open(&path).map_err(io(&path))?;
    let len = file.metadata().map_err(io(&path))?.len();
    let bad = |reason: String| ExchangeError::Manifest {
        path: path.clone(),
        reason,
    };
    if len > MAX_MANIFEST_BYTES {
        return Err(bad(format!("{len} bytes is too large")));
    }
    let manifest: Manifest =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    if manifest.format != EXPORT_FORMAT {
        return Err(bad(format!("format `{}`", manifest.format)));
    }
    if manifest.version > EXPORT_VERSION || manifest.version == 0 {
        return Err(bad(format!(
            "version {} (this cnnviz reads version {EXPORT_VERSION})",
            manifest.version
        )));
    }
    Ok(manifest)
}

/// A path from the manifest, resolved inside `dir`: relative, no `..`, no root.
fn inside(dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let rel = Path::new(relative);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if relative.is_empty() || !plain {
        return Err(format!("file name `{relative}` leaves the export folder"));
    }
    Ok(dir.join(rel))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PNG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() > MAX_PNG_BYTES {
        return Err(format!(
            "{}: larger than {MAX_PNG_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Turns a manifest entry into a record ready to insert, checking everything.
fn prepare(dir: &Path, r: &ManifestRecord) -> Result<(Prepared, Option<NewReport>), String> {
    let drawing_png = read_limited(&inside(dir, &r.drawing)?)?;
    let input = ModelInput {
        channels: r.input.channels,
        height: r.input.height,
        width: r.input.width,
        values: r.input.values.clone(),
    };
    let heatmap = match &r.grad_cam.heatmap {
        None => Vec::new(),
        Some(file) => {
            let png = read_limited(&inside(dir, file)?)?;
            let map = decode_png(&png).map_err(|e| format!("{file}: {e}"))?;
            if (map.width, map.height) != (u32::from(input.width), u32::from(input.height)) {
                return Err(format!(
                    "{file}: a {}×{} heatmap for a {}×{} input",
                    map.width, map.height, input.width, input.height
                ));
            }
            map.pixels
        }
    };
    let mut sha256 = [0u8; 32];
    if !from_hex_into(&r.model.sha256, &mut sha256) {
        return Err("the model hash is not 64 hex digits".into());
    }
    let record = SavedPrediction {
        id: PredictionId(0),
        content_id: ContentId([0; 16]),
        format_version: 0,
        time_ms: r.time_ms,
        drawing_png,
        input,
        predicted: r.predicted,
        probabilities: r.probabilities.clone(),
        grad_cam: GradCamRecord {
            target: r.grad_cam.target,
            block: r.grad_cam.block,
            layer: r.grad_cam.layer.clone(),
            heatmap,
        },
        model: ModelIdentity {
            name: r.model.name.clone(),
            sha256,
        },
    };
    let prepared = Prepared::imported(record).map_err(|e| e.to_string())?;
    if ContentId::from_hex(&r.content_id) != Some(prepared.record.content_id) {
        return Err("the content id does not match the record's content".into());
    }
    let report = r.report.as_ref().map(|rep| NewReport {
        true_digit: rep.true_digit,
        reason: rep.reason.clone(),
        time_ms: rep.time_ms,
    });
    if let Some(rep) = &report {
        rep.validate()?;
    }
    Ok((prepared, report))
}

/// Merges the export in `dir` into `store`. Records already present (same content id) are
/// not added again; a report is added to a prediction that has none, and replaces one that
/// is older. Invalid records are skipped and listed; the rest are imported.
pub fn import(store: &PredictionStore, dir: &Path) -> Result<ImportSummary, ExchangeError> {
    let manifest = read_manifest(dir)?;
    let mut summary = ImportSummary::default();
    let mut ready = Vec::with_capacity(manifest.records.len());
    for (i, r) in manifest.records.iter().enumerate() {
        match prepare(dir, r) {
            Ok(p) => ready.push(p),
            Err(reason) => {
                summary
                    .rejected
                    .push(format!("record {} ({}): {reason}", i + 1, r.content_id))
            }
        }
    }
    let path = store.path().to_path_buf();
    for batch in ready.chunks(IMPORT_BATCH) {
        let (added, present, reports) = store.write(|txn, err| {
            let (mut added, mut present, mut reports) = (0, 0, 0);
            for (prepared, report) in batch {
                let (id, new) = insert_prediction(txn, prepared, err)?;
                if new {
                    added += 1;
                } else {
                    present += 1;
                }
                let Some(report) = report else { continue };
                let existing = existing_report(txn, id, &path, err)?;
                let replace = match existing {
                    None => true,
                    Some(old) => {
                        old.time_ms < report.time_ms
                            && (old.true_digit, &old.reason) != (report.true_digit, &report.reason)
                    }
                };
                if replace {
                    set_report(txn, id, report, &path, err)?;
                    reports += 1;
                }
            }
            Ok((added, present, reports))
        })?;
        summary.added += added;
        summary.already_present += present;
        summary.reports_added += reports;
    }
    Ok(summary)
}

fn existing_report(
    txn: &redb::WriteTransaction,
    id: PredictionId,
    path: &Path,
    err: &dyn Fn(redb::Error) -> StoreError,
) -> Result<Option<super::Report>, StoreError> {
    use super::tables::{REPORT_OF, REPORTS};
    use redb::ReadableTable;
    let report_of = txn.open_table(REPORT_OF).map_err(|e| err(e.into()))?;
    let Some(rid) = report_of.get(id.0).map_err(|e| err(e.into()))? else {
        return Ok(None);
    };
    let rid = super::ReportId(rid.value());
    let reports = txn.open_table(REPORTS).map_err(|e| err(e.into()))?;
    let Some(bytes) = reports.get(rid.0).map_err(|e| err(e.into()))? else {
        return Ok(None);
    };
    super::read::known(
        path,
        "reports",
        super::record::decode_report(rid, bytes.value()),
    )
    .map(Some)
}
