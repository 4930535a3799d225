//! Reading the store: single records, gallery pages, id lists and figures. Reads run in redb
//! read transactions, which never wait for the writer, so the window can page through the
//! gallery while the worker thread saves.

use std::path::Path;

use redb::{AccessGuard, ReadTransaction, ReadableDatabase, ReadableTableMetadata};

use super::codec::CodecResult;
use super::pixels::{self, Thumbnail};
use super::query::{Filter, GalleryItem, Page, Sort};
use super::record::{
    self, FORMAT_VERSION, PredictionId, Report, ReportId, SavedPrediction, Summary, Versioned,
};
use super::tables::{
    self, COUNTS, INDEX, META, META_CREATED, META_FORMAT_VERSION, PREDICTIONS, REPORT_OF, REPORTS,
    SUMMARIES, THUMBNAILS,
};
use super::{PredictionStore, StoreError, db_error};

/// Turns a decoded value into a result: damaged → [`StoreError::BadRecord`], written by a
/// newer cnnviz → [`StoreError::NewerFormat`].
pub(crate) fn known<T>(
    path: &Path,
    table: &'static str,
    decoded: CodecResult<Versioned<T>>,
) -> Result<T, StoreError> {
    match decoded {
        Ok(Versioned::Known(v)) => Ok(v),
        Ok(Versioned::Newer(found)) => Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found: u32::from(found),
            supported: FORMAT_VERSION,
        }),
        Err(reason) => Err(StoreError::BadRecord {
            path: path.to_path_buf(),
            table,
            reason,
        }),
    }
}

/// Figures for `cnnviz store stats` and the dashboard's header.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StoreStats {
    pub path: String,
    pub file_bytes: u64,
    pub format_version: u64,
    pub created_ms: u64,
    pub predictions: u64,
    pub saved_only: u64,
    pub reported: u64,
    pub wrong: u64,
    /// Predictions per predicted digit 0..9.
    pub by_predicted: [u64; 10],
    /// Reports per true digit 0..9.
    pub by_true: [u64; 10],
}

/// What a re-run needs: the stored input and Grad-CAM target, by id.
#[derive(Clone, Debug, PartialEq)]
pub struct RerunInput {
    pub id: PredictionId,
    pub input: record::ModelInput,
    pub grad_cam_target: u16,
    pub grad_cam_block: u16,
}

impl PredictionStore {
    pub(crate) fn read_txn(&self) -> Result<ReadTransaction, StoreError> {
        self.db().begin_read().map_err(db_error(self.path()))
    }

    /// One saved prediction, or `None` if there is no such id.
    pub fn get(&self, id: PredictionId) -> Result<Option<SavedPrediction>, StoreError> {
        let path = self.path();
        let txn = self.read_txn()?;
        let table = txn.open_table(PREDICTIONS).map_err(db_error(path))?;
        let Some(bytes) = table.get(id.0).map_err(db_error(path))? else {
            return Ok(None);
        };
        known(
            path,
            "predictions",
            record::decode_prediction(id, bytes.value()),
        )
        .map(Some)
    }

    /// The report of a prediction, if it was reported.
    pub fn report_of(&self, id: PredictionId) -> Result<Option<Report>, StoreError> {
        let path = self.path();
        let txn = self.read_txn()?;
        let report_of = txn.open_table(REPORT_OF).map_err(db_error(path))?;
        let Some(report) = report_of.get(id.0).map_err(db_error(path))? else {
            return Ok(None);
        };
        let report = ReportId(report.value());
        let reports = txn.open_table(REPORTS).map_err(db_error(path))?;
        let Some(bytes) = reports.get(report.0).map_err(db_error(path))? else {
            return Ok(None);
        };
        known(
            path,
            "reports",
            record::decode_report(report, bytes.value()),
        )
        .map(Some)
    }

    /// The gallery summary of a prediction.
    pub fn summary(&self, id: PredictionId) -> Result<Option<Summary>, StoreError> {
        let path = self.path();
        let txn = self.read_txn()?;
        let table = txn.open_table(SUMMARIES).map_err(db_error(path))?;
        let bytes = table.get(id.0).map_err(db_error(path))?;
        bytes
            .map(|b| known(path, "summaries", record::decode_summary(id, b.value())))
            .transpose()
    }

    /// How many predictions match a filter (from the counts table: no scan).
    pub fn count(&self, filter: &Filter) -> Result<u64, StoreError> {
        let txn = self.read_txn()?;
        count_in(&txn, self.path(), filter)
    }

    /// One page of a filtered, sorted view: `limit` items from position `offset`. Cost grows
    /// with `limit` and (mildly, a key skip each) with `offset`, not with the store's size.
    pub fn page(
        &self,
        filter: &Filter,
        sort: Sort,
        offset: u64,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let path = self.path();
        let txn = self.read_txn()?;
        let total = count_in(&txn, path, filter)?;
        let ids = ids_in(&txn, path, filter, sort, offset, limit, total)?;
        let summaries = txn.open_table(SUMMARIES).map_err(db_error(path))?;
        let thumbnails = txn.open_table(THUMBNAILS).map_err(db_error(path))?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let summary = summaries
                .get(id.0)
                .map_err(db_error(path))?
                .map(|b| known(path, "summaries", record::decode_summary(id, b.value())))
                .transpose()?;
            let thumbnail = thumbnails
                .get(id.0)
                .map_err(db_error(path))?
                .map(|b| {
                    pixels::decode_thumbnail(b.value()).map_err(|reason| StoreError::BadRecord {
                        path: path.to_path_buf(),
                        table: "thumbnails",
                        reason,
                    })
                })
                .transpose()?;
            match (summary, thumbnail) {
                (Some(summary), Some(thumbnail)) => items.push(GalleryItem { summary, thumbnail }),
                // The index points at nothing: `check` reports it; the gallery shows the rest.
                (Some(summary), None) => items.push(GalleryItem {
                    summary,
                    thumbnail: Thumbnail {
                        width: 1,
                        height: 1,
                        pixels: vec![0],
                    },
                }),
                (None, _) => {}
            }
        }
        Ok(Page {
            total,
            offset,
            items,
        })
    }

    /// The ids of a filtered, sorted view, `limit` of them from `offset` (for re-run all and
    /// export). `usize::MAX` takes them all.
    pub fn ids(
        &self,
        filter: &Filter,
        sort: Sort,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<PredictionId>, StoreError> {
        let txn = self.read_txn()?;
        let total = count_in(&txn, self.path(), filter)?;
        ids_in(&txn, self.path(), filter, sort, offset, limit, total)
    }

    /// The stored inputs of some predictions, for putting them through the network again.
    /// Ids that no longer exist are skipped.
    pub fn rerun_inputs(&self, ids: &[PredictionId]) -> Result<Vec<RerunInput>, StoreError> {
        let path = self.path();
        let txn = self.read_txn()?;
        let table = txn.open_table(PREDICTIONS).map_err(db_error(path))?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(bytes) = table.get(id.0).map_err(db_error(path))? {
                let p = known(
                    path,
                    "predictions",
                    record::decode_prediction(id, bytes.value()),
                )?;
                out.push(RerunInput {
                    id,
                    input: p.input,
                    grad_cam_target: p.grad_cam.target,
                    grad_cam_block: p.grad_cam.block,
                });
            }
        }
        Ok(out)
    }

    /// Figures about the whole store.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        use super::query::{DigitFilter, Kind};
        let path = self.path();
        let txn = self.read_txn()?;
        let meta = txn.open_table(META).map_err(db_error(path))?;
        let get_meta = |key| -> Result<u64, StoreError> {
            Ok(meta
                .get(key)
                .map_err(db_error(path))?
                .map(|v| v.value())
                .unwrap_or(0))
        };
        let count = |kind, digit| count_in(&txn, path, &Filter { kind, digit });
        let mut by_predicted = [0; 10];
        let mut by_true = [0; 10];
        for d in 0..10u8 {
            by_predicted[d as usize] = count(Kind::All, DigitFilter::Predicted(u16::from(d)))?;
            by_true[d as usize] = count(Kind::All, DigitFilter::True(d))?;
        }
        Ok(StoreStats {
            path: path.display().to_string(),
            file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            format_version: get_meta(META_FORMAT_VERSION)?,
            created_ms: get_meta(META_CREATED)?,
            predictions: txn
                .open_table(PREDICTIONS)
                .map_err(db_error(path))?
                .len()
                .map_err(db_error(path))?,
            saved_only: count(Kind::Saved, DigitFilter::Any)?,
            reported: count(Kind::Reported, DigitFilter::Any)?,
            wrong: count(Kind::Wrong, DigitFilter::Any)?,
            by_predicted,
            by_true,
        })
    }
}

fn count_in(txn: &ReadTransaction, path: &Path, filter: &Filter) -> Result<u64, StoreError> {
    let Some(key) = tables::count_key(filter) else {
        return Ok(0);
    };
    let counts = txn.open_table(COUNTS).map_err(db_error(path))?;
    Ok(counts
        .get(key)
        .map_err(db_error(path))?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// `limit` ids from `offset` of a view of `total` ids. Skipping is a walk over index keys,
/// so a position past the middle is reached from the other end and the walk is at most
/// half the view (the last page of 100k is as quick as the first).
fn ids_in(
    txn: &ReadTransaction,
    path: &Path,
    filter: &Filter,
    sort: Sort,
    offset: u64,
    limit: usize,
    total: u64,
) -> Result<Vec<PredictionId>, StoreError> {
    let (order, backwards) = sort.indexed();
    let Some(group) = tables::group(filter, order) else {
        return Ok(Vec::new());
    };
    if offset >= total || limit == 0 {
        return Ok(Vec::new());
    }
    let take = (limit as u64).min(total - offset);
    let from_far_end = offset > total / 2;
    let (skip, backwards) = if from_far_end {
        (total - offset - take, !backwards)
    } else {
        (offset, backwards)
    };
    let index = txn.open_table(INDEX).map_err(db_error(path))?;
    let range = index
        .range((group, 0, 0)..=(group, u64::MAX, u64::MAX))
        .map_err(db_error(path))?;
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let take = usize::try_from(take).unwrap_or(usize::MAX);
    let mut ids = Vec::with_capacity(take.min(4096));
    type Entry<'a> = (AccessGuard<'a, (u16, u64, u64)>, AccessGuard<'a, ()>);
    let mut push = |entry: Result<Entry, redb::StorageError>| -> Result<(), StoreError> {
        let (key, _) = entry.map_err(db_error(path))?;
        let (_, _, tie) = key.value();
        ids.push(PredictionId(tables::id_of_key(tie)));
        Ok(())
    };
    if backwards {
        for entry in range.rev().skip(skip).take(take) {
            push(entry)?;
        }
    } else {
        for entry in range.skip(skip).take(take) {
            push(entry)?;
        }
    }
    if from_far_end {
        ids.reverse();
    }
    Ok(ids)
}
