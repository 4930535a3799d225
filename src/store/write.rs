//! Everything that changes the store. Each public operation is one redb write transaction
//! committed with `Durability::Immediate`: when it returns `Ok`, the change is on disk and
//! survives a `kill -9` or a power cut (redb fsyncs before the commit returns).

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::pixels::{self, Thumbnail};
use super::record::{
    self, ContentId, FORMAT_VERSION, NewPrediction, NewReport, PredictionId, Report, ReportId,
    SavedPrediction, Summary,
};
use super::tables::{
    self, CONTENT, COUNTS, INDEX, META, META_CREATED, META_FORMAT_VERSION, META_NEXT_PREDICTION,
    META_NEXT_REPORT, PREDICTIONS, REPORT_OF, REPORTS, SUMMARIES, THUMBNAILS,
};
use super::{PredictionStore, StoreError, db_error};

/// A prediction ready to insert: encoded, hashed and thumbnailed outside the transaction, so
/// the write lock is held only for the B-tree updates.
pub(crate) struct Prepared {
    pub record: SavedPrediction,
    pub thumbnail: Thumbnail,
}

impl Prepared {
    pub fn new(p: &NewPrediction) -> Result<Prepared, StoreError> {
        p.validate().map_err(StoreError::Invalid)?;
        let drawing_png = pixels::encode_png(&p.drawing)?;
        Ok(Prepared {
            thumbnail: pixels::thumbnail(&p.drawing),
            record: SavedPrediction {
                id: PredictionId(0),
                content_id: record::content_id(p.time_ms, &drawing_png, &p.input, &p.model),
                format_version: FORMAT_VERSION as u16,
                time_ms: p.time_ms,
                drawing_png,
                input: p.input.clone(),
                predicted: p.predicted,
                probabilities: p.probabilities.clone(),
                grad_cam: p.grad_cam.clone(),
                model: p.model.clone(),
            },
        })
    }

    /// An imported prediction keeps its PNG bytes exactly (so its content id is the same in
    /// every store); the PNG is decoded, with limits, only to check it and for the thumbnail.
    pub fn imported(mut record: SavedPrediction) -> Result<Prepared, StoreError> {
        let drawing = pixels::decode_png(&record.drawing_png)?;
        let check = NewPrediction {
            time_ms: record.time_ms,
            drawing,
            input: record.input.clone(),
            predicted: record.predicted,
            probabilities: record.probabilities.clone(),
            grad_cam: record.grad_cam.clone(),
            model: record.model.clone(),
        };
        check.validate().map_err(StoreError::Invalid)?;
        record.content_id = record::content_id(
            record.time_ms,
            &record.drawing_png,
            &record.input,
            &record.model,
        );
        record.format_version = FORMAT_VERSION as u16;
        Ok(Prepared {
            thumbnail: pixels::thumbnail(&check.drawing),
            record,
        })
    }
}

/// Creates every table and the meta entries of a new store.
pub(super) fn initialise(db: &Database, path: &Path) -> Result<(), StoreError> {
    // Opening an existing store must not write to it: look first.
    {
        let txn = db.begin_read().map_err(db_error(path))?;
        let has_meta = match txn.open_table(META) {
            Ok(meta) => meta
                .get(META_FORMAT_VERSION)
                .map_err(db_error(path))?
                .is_some(),
            Err(redb::TableError::TableDoesNotExist(_)) => false,
            Err(e) => return Err(db_error(path)(e)),
        };
        if has_meta {
            return Ok(());
        }
    }
    let mut txn = db.begin_write().map_err(db_error(path))?;
    txn.set_durability(Durability::Immediate)
        .map_err(db_error(path))?;
    {
        let mut meta = txn.open_table(META).map_err(db_error(path))?;
        if meta
            .get(META_FORMAT_VERSION)
            .map_err(db_error(path))?
            .is_none()
        {
            meta.insert(META_FORMAT_VERSION, u64::from(FORMAT_VERSION))
                .map_err(db_error(path))?;
            meta.insert(META_NEXT_PREDICTION, 1)
                .map_err(db_error(path))?;
            meta.insert(META_NEXT_REPORT, 1).map_err(db_error(path))?;
            meta.insert(META_CREATED, now_ms())
                .map_err(db_error(path))?;
        }
        // Create the rest so readers never meet a missing table.
        txn.open_table(PREDICTIONS).map_err(db_error(path))?;
        txn.open_table(SUMMARIES).map_err(db_error(path))?;
        txn.open_table(THUMBNAILS).map_err(db_error(path))?;
        txn.open_table(REPORTS).map_err(db_error(path))?;
        txn.open_table(REPORT_OF).map_err(db_error(path))?;
        txn.open_table(CONTENT).map_err(db_error(path))?;
        txn.open_table(INDEX).map_err(db_error(path))?;
        txn.open_table(COUNTS).map_err(db_error(path))?;
    }
    txn.commit().map_err(db_error(path))
}

pub(crate) use super::time::now_ms;

type Err<'a> = dyn Fn(redb::Error) -> StoreError + 'a;

fn next_id(txn: &WriteTransaction, key: &str, err: &Err) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
    let id = meta
        .get(key)
        .map_err(|e| err(e.into()))?
        .map(|v| v.value())
        .unwrap_or(1);
    meta.insert(key, id + 1).map_err(|e| err(e.into()))?;
    Ok(id)
}

fn add_to_indexes(txn: &WriteTransaction, s: &Summary, err: &Err) -> Result<(), StoreError> {
    let mut index = txn.open_table(INDEX).map_err(|e| err(e.into()))?;
    for key in tables::index_keys(s) {
        index.insert(key, ()).map_err(|e| err(e.into()))?;
    }
    let mut counts = txn.open_table(COUNTS).map_err(|e| err(e.into()))?;
    for key in tables::count_keys(s) {
        bump(&mut counts, key, 1, err)?;
    }
    Ok(())
}

fn remove_from_indexes(txn: &WriteTransaction, s: &Summary, err: &Err) -> Result<(), StoreError> {
    let mut index = txn.open_table(INDEX).map_err(|e| err(e.into()))?;
    for key in tables::index_keys(s) {
        index.remove(key).map_err(|e| err(e.into()))?;
    }
    let mut counts = txn.open_table(COUNTS).map_err(|e| err(e.into()))?;
    for key in tables::count_keys(s) {
        bump(&mut counts, key, -1, err)?;
    }
    Ok(())
}

fn bump(counts: &mut Table<u16, u64>, key: u16, by: i64, err: &Err) -> Result<(), StoreError> {
    let now = counts
        .get(key)
        .map_err(|e| err(e.into()))?
        .map(|v| v.value())
        .unwrap_or(0);
    let next = now.saturating_add_signed(by);
    if next == 0 {
        counts.remove(key).map_err(|e| err(e.into()))?;
    } else {
        counts.insert(key, next).map_err(|e| err(e.into()))?;
    }
    Ok(())
}

/// Inserts a prepared prediction unless one with the same content id is there already.
/// Returns its id and whether it was new.
pub(crate) fn insert_prediction(
    txn: &WriteTransaction,
    prepared: &Prepared,
    err: &Err,
) -> Result<(PredictionId, bool), StoreError> {
    let content = prepared.record.content_id.0;
    {
        let table = txn.open_table(CONTENT).map_err(|e| err(e.into()))?;
        if let Some(existing) = table.get(content).map_err(|e| err(e.into()))? {
            return Ok((PredictionId(existing.value()), false));
        }
    }
    let id = PredictionId(next_id(txn, META_NEXT_PREDICTION, err)?);
    let record = &prepared.record;
    let summary = Summary {
        id,
        time_ms: record.time_ms,
        predicted: record.predicted,
        confidence: record.confidence(),
        true_digit: None,
    };
    let put = |table, bytes: Vec<u8>| -> Result<(), StoreError> {
        let mut t = txn.open_table(table).map_err(|e| err(e.into()))?;
        t.insert(id.0, bytes.as_slice())
            .map_err(|e| err(e.into()))?;
        Ok(())
    };
    put(PREDICTIONS, record::encode_prediction(record))?;
    put(SUMMARIES, record::encode_summary(&summary))?;
    put(THUMBNAILS, pixels::encode_thumbnail(&prepared.thumbnail))?;
    txn.open_table(CONTENT)
        .map_err(|e| err(e.into()))?
        .insert(content, id.0)
        .map_err(|e| err(e.into()))?;
    add_to_indexes(txn, &summary, err)?;
    Ok((id, true))
}

pub(crate) fn load_summary(
    txn: &WriteTransaction,
    id: PredictionId,
    path: &Path,
    err: &Err,
) -> Result<Option<Summary>, StoreError> {
    let table = txn.open_table(SUMMARIES).map_err(|e| err(e.into()))?;
    let Some(bytes) = table.get(id.0).map_err(|e| err(e.into()))? else {
        return Ok(None);
    };
    super::read::known(path, "summaries", record::decode_summary(id, bytes.value())).map(Some)
}

/// Sets (or replaces) the report of a prediction.
pub(crate) fn set_report(
    txn: &WriteTransaction,
    prediction: PredictionId,
    report: &NewReport,
    path: &Path,
    err: &Err,
) -> Result<ReportId, StoreError> {
    report.validate().map_err(StoreError::Invalid)?;
    let old =
        load_summary(txn, prediction, path, err)?.ok_or(StoreError::NotFound(prediction.0))?;
    remove_report(txn, prediction, err)?;
    remove_from_indexes(txn, &old, err)?;
    let summary = Summary {
        true_digit: Some(report.true_digit),
        ..old
    };
    txn.open_table(SUMMARIES)
        .map_err(|e| err(e.into()))?
        .insert(prediction.0, record::encode_summary(&summary).as_slice())
        .map_err(|e| err(e.into()))?;
    add_to_indexes(txn, &summary, err)?;
    let id = ReportId(next_id(txn, META_NEXT_REPORT, err)?);
    let stored = Report {
        id,
        prediction,
        format_version: FORMAT_VERSION as u16,
        true_digit: report.true_digit,
        reason: report.reason.clone(),
        time_ms: report.time_ms,
    };
    txn.open_table(REPORTS)
        .map_err(|e| err(e.into()))?
        .insert(id.0, record::encode_report(&stored).as_slice())
        .map_err(|e| err(e.into()))?;
    txn.open_table(REPORT_OF)
        .map_err(|e| err(e.into()))?
        .insert(prediction.0, id.0)
        .map_err(|e| err(e.into()))?;
    Ok(id)
}

/// Removes the report of a prediction, if any (the summary is the caller's business).
fn remove_report(
    txn: &WriteTransaction,
    prediction: PredictionId,
    err: &Err,
) -> Result<(), StoreError> {
    let old = txn
        .open_table(REPORT_OF)
        .map_err(|e| err(e.into()))?
        .remove(prediction.0)
        .map_err(|e| err(e.into()))?
        .map(|v| v.value());
    if let Some(report) = old {
        txn.open_table(REPORTS)
            .map_err(|e| err(e.into()))?
            .remove(report)
            .map_err(|e| err(e.into()))?;
    }
    Ok(())
}

fn delete_prediction(
    txn: &WriteTransaction,
    id: PredictionId,
    path: &Path,
    err: &Err,
) -> Result<bool, StoreError> {
    let Some(summary) = load_summary(txn, id, path, err)? else {
        return Ok(false);
    };
    remove_from_indexes(txn, &summary, err)?;
    remove_report(txn, id, err)?;
    let content: Option<ContentId> = {
        let mut predictions = txn.open_table(PREDICTIONS).map_err(|e| err(e.into()))?;
        let removed = predictions.remove(id.0).map_err(|e| err(e.into()))?;
        // The content id sits right after the record's version; a damaged record still goes.
        removed.and_then(|v| {
            let bytes = v.value();
            bytes
                .get(2..18)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(ContentId)
        })
    };
    if let Some(content) = content {
        txn.open_table(CONTENT)
            .map_err(|e| err(e.into()))?
            .remove(content.0)
            .map_err(|e| err(e.into()))?;
    }
    for table in [SUMMARIES, THUMBNAILS] {
        txn.open_table(table)
            .map_err(|e| err(e.into()))?
            .remove(id.0)
            .map_err(|e| err(e.into()))?;
    }
    Ok(true)
}

impl PredictionStore {
    /// Runs `f` in one write transaction and commits it durably.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction, &Err) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let path = self.path();
        let mut txn = self.db().begin_write().map_err(db_error(path))?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_error(path))?;
        let value = f(&txn, &db_error::<redb::Error>(path))?;
        txn.commit().map_err(db_error(path))?;
        self.bump_generation();
        Ok(value)
    }

    /// Saves a prediction; when this returns, it is on disk. Saving the same prediction
    /// (same time, drawing, input and model) twice returns the first one's id.
    pub fn save(&self, prediction: &NewPrediction) -> Result<PredictionId, StoreError> {
        let prepared = Prepared::new(prediction)?;
        self.write(|txn, err| Ok(insert_prediction(txn, &prepared, err)?.0))
    }

    /// Saves many predictions in one durable transaction (bulk loading, benchmarks): far
    /// cheaper per record than [`PredictionStore::save`], whose cost is mostly the fsync.
    pub fn save_batch(
        &self,
        predictions: &[NewPrediction],
    ) -> Result<Vec<PredictionId>, StoreError> {
        let prepared = predictions
            .iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.write(|txn, err| {
            prepared
                .iter()
                .map(|p| insert_prediction(txn, p, err).map(|(id, _)| id))
                .collect()
        })
    }

    /// Reports a saved prediction as misclassified (replacing an earlier report of it).
    pub fn report(
        &self,
        prediction: PredictionId,
        report: &NewReport,
    ) -> Result<ReportId, StoreError> {
        let path = self.path().to_path_buf();
        self.write(|txn, err| set_report(txn, prediction, report, &path, err))
    }

    /// Saves a prediction and its report in one transaction: reporting a drawing that was
    /// never saved.
    pub fn save_and_report(
        &self,
        prediction: &NewPrediction,
        report: &NewReport,
    ) -> Result<(PredictionId, ReportId), StoreError> {
        report.validate().map_err(StoreError::Invalid)?;
        let prepared = Prepared::new(prediction)?;
        let path = self.path().to_path_buf();
        self.write(|txn, err| {
            let (id, _) = insert_prediction(txn, &prepared, err)?;
            Ok((id, set_report(txn, id, report, &path, err)?))
        })
    }

    /// Deletes a prediction with its report. Returns whether it existed.
    pub fn delete(&self, id: PredictionId) -> Result<bool, StoreError> {
        let path = self.path().to_path_buf();
        self.write(|txn, err| delete_prediction(txn, id, &path, err))
    }
}
