//! The reported digits as a confusion matrix (the truth the visitor gave against the
//! model's prediction) and the digits of one cell, for the failure view. One scan of the
//! small summaries table; the matrix holds counts only, so memory does not grow with the
//! store.

use redb::ReadableTable;

use super::query::GalleryItem;
use super::read::known;
use super::record::{self, PredictionId};
use super::tables::{SUMMARIES, THUMBNAILS};
use super::{PredictionStore, StoreError, db_error};

/// Digits the store knows: reports carry a true digit 0..9.
pub const REPORT_CLASSES: usize = 10;

impl PredictionStore {
    /// `matrix[true digit][predicted]` over every reported prediction (predictions outside
    /// 0..9, from a model with more classes, are left out).
    pub fn report_confusion(&self) -> Result<Vec<Vec<usize>>, StoreError> {
        let mut matrix = vec![vec![0usize; REPORT_CLASSES]; REPORT_CLASSES];
        self.scan_reported(|_, truth, predicted| {
            matrix[truth][predicted] += 1;
            true
        })?;
        Ok(matrix)
    }

    /// Up to `limit` reported predictions whose true digit is `truth` and prediction
    /// `predicted`, oldest first, with their thumbnails.
    pub fn reported_cell(
        &self,
        truth: usize,
        predicted: usize,
        limit: usize,
    ) -> Result<Vec<GalleryItem>, StoreError> {
        let mut ids = Vec::new();
        self.scan_reported(|id, t, p| {
            if (t, p) == (truth, predicted) {
                ids.push(id);
            }
            ids.len() < limit
        })?;
        let path = self.path();
        let txn = self.read_txn()?;
        let summaries = txn.open_table(SUMMARIES).map_err(db_error(path))?;
        let thumbnails = txn.open_table(THUMBNAILS).map_err(db_error(path))?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let summary = summaries.get(id.0).map_err(db_error(path))?;
            let thumbnail = thumbnails.get(id.0).map_err(db_error(path))?;
            if let (Some(summary), Some(thumbnail)) = (summary, thumbnail) {
                let summary = known(
                    path,
                    "summaries",
                    record::decode_summary(id, summary.value()),
                )?;
                let thumbnail =
                    super::pixels::decode_thumbnail(thumbnail.value()).map_err(|reason| {
                        StoreError::BadRecord {
                            path: path.to_path_buf(),
                            table: "thumbnails",
                            reason,
                        }
                    })?;
                items.push(GalleryItem { summary, thumbnail });
            }
        }
        Ok(items)
    }

    /// Calls `visit(id, true digit, predicted)` for each reported prediction in id order
    /// until it returns `false`.
    fn scan_reported(
        &self,
        mut visit: impl FnMut(PredictionId, usize, usize) -> bool,
    ) -> Result<(), StoreError> {
        let path = self.path();
        let txn = self.read_txn()?;
        let summaries = txn.open_table(SUMMARIES).map_err(db_error(path))?;
        for entry in summaries.iter().map_err(db_error(path))? {
            let (key, value) = entry.map_err(db_error(path))?;
            let id = PredictionId(key.value());
            let summary = known(path, "summaries", record::decode_summary(id, value.value()))?;
            let Some(truth) = summary.true_digit else {
                continue;
            };
            let (truth, predicted) = (usize::from(truth), usize::from(summary.predicted));
            if truth < REPORT_CLASSES && predicted < REPORT_CLASSES && !visit(id, truth, predicted)
            {
                break;
            }
        }
        Ok(())
    }
}
