//! `check`: every cross-reference in the store, verified. redb has already checked every
//! page's checksum when the store was opened; this checks what redb cannot know — that each
//! record decodes, that summaries, thumbnails, content ids, reports, the index and the counts
//! all agree with the records, and that every drawing decodes within the limits.

use std::collections::{HashMap, HashSet};

use redb::{ReadableTable, TableHandle};

use super::record::{self, PredictionId, ReportId, Summary};
use super::tables::{
    self, CONTENT, COUNTS, INDEX, META, META_NEXT_PREDICTION, META_NEXT_REPORT, PREDICTIONS,
    REPORT_OF, REPORTS, SUMMARIES, THUMBNAILS,
};
use super::{PredictionStore, StoreError, db_error, pixels};

/// The result of [`PredictionStore::check`]: what was looked at and what is wrong.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CheckReport {
    pub predictions: u64,
    pub reports: u64,
    pub index_entries: u64,
    /// One line per problem; empty when the store is consistent.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Problems beyond this many are counted, not listed.
const MAX_LISTED: usize = 100;

impl PredictionStore {
    /// Verifies the store's internal consistency (see the module comment). Reads everything:
    /// seconds for a large store. Problems are reported, never repaired.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let path = self.path();
        let err = db_error::<redb::Error>(path);
        let e = |x: redb::StorageError| err(x.into());
        let txn = self.read_txn()?;
        let mut report = CheckReport::default();
        let mut problems = Vec::new();
        let mut problem = |text: String| problems.push(text);

        let predictions = txn.open_table(PREDICTIONS).map_err(|x| err(x.into()))?;
        let summaries = txn.open_table(SUMMARIES).map_err(|x| err(x.into()))?;
        let thumbnails = txn.open_table(THUMBNAILS).map_err(|x| err(x.into()))?;
        let reports = txn.open_table(REPORTS).map_err(|x| err(x.into()))?;
        let report_of = txn.open_table(REPORT_OF).map_err(|x| err(x.into()))?;
        let content = txn.open_table(CONTENT).map_err(|x| err(x.into()))?;
        let index = txn.open_table(INDEX).map_err(|x| err(x.into()))?;
        let counts = txn.open_table(COUNTS).map_err(|x| err(x.into()))?;
        let meta = txn.open_table(META).map_err(|x| err(x.into()))?;

        // Reports first: the summaries' true digits must agree with them.
        let mut true_digit_of: HashMap<u64, u8> = HashMap::new();
        let mut max_report = 0;
        for entry in reports.iter().map_err(e)? {
            let (key, value) = entry.map_err(e)?;
            let id = ReportId(key.value());
            max_report = max_report.max(id.0);
            report.reports += 1;
            match record::decode_report(id, value.value()) {
                Ok(record::Versioned::Known(r)) => {
                    match report_of.get(r.prediction.0).map_err(e)? {
                        Some(v) if v.value() == id.0 => {}
                        _ => problem(format!(
                            "report {} of prediction {} is not the one linked to it",
                            id.0, r.prediction
                        )),
                    }
                    if predictions.get(r.prediction.0).map_err(e)?.is_none() {
                        problem(format!(
                            "report {} points at prediction {}, which does not exist",
                            id.0, r.prediction
                        ));
                    }
                    true_digit_of.insert(r.prediction.0, r.true_digit);
                }
                Ok(record::Versioned::Newer(v)) => {
                    problem(format!("report {} has format version {v}", id.0))
                }
                Err(reason) => problem(format!("report {} does not decode: {reason}", id.0)),
            }
        }
        for entry in report_of.iter().map_err(e)? {
            let (prediction, rid) = entry.map_err(e)?;
            if reports.get(rid.value()).map_err(e)?.is_none() {
                problem(format!(
                    "prediction #{} links to report {}, which does not exist",
                    prediction.value(),
                    rid.value()
                ));
            }
        }

        let mut expected_index: HashSet<(u16, u64, u64)> = HashSet::new();
        let mut expected_counts: HashMap<u16, u64> = HashMap::new();
        let mut max_prediction = 0;
        for entry in predictions.iter().map_err(e)? {
            let (key, value) = entry.map_err(e)?;
            let id = PredictionId(key.value());
            max_prediction = max_prediction.max(id.0);
            report.predictions += 1;
            let p = match record::decode_prediction(id, value.value()) {
                Ok(record::Versioned::Known(p)) => p,
                Ok(record::Versioned::Newer(v)) => {
                    problem(format!("prediction {id} has format version {v}"));
                    continue;
                }
                Err(reason) => {
                    problem(format!("prediction {id} does not decode: {reason}"));
                    continue;
                }
            };
            let derived = Summary {
                id,
                time_ms: p.time_ms,
                predicted: p.predicted,
                confidence: p.confidence(),
                true_digit: true_digit_of.get(&id.0).copied(),
            };
            match summaries.get(id.0).map_err(e)? {
                None => problem(format!("prediction {id} has no summary")),
                Some(bytes) => match record::decode_summary(id, bytes.value()) {
                    Ok(record::Versioned::Known(s)) if s == derived => {}
                    Ok(_) => problem(format!("prediction {id}: its summary disagrees with it")),
                    Err(reason) => problem(format!(
                        "prediction {id}: summary does not decode: {reason}"
                    )),
                },
            }
            for key in tables::index_keys(&derived) {
                expected_index.insert(key);
            }
            for key in tables::count_keys(&derived) {
                *expected_counts.entry(key).or_default() += 1;
            }
            let drawing = pixels::decode_png(&p.drawing_png);
            match (&drawing, thumbnails.get(id.0).map_err(e)?) {
                (Err(why), _) => problem(format!("prediction {id}: drawing: {why}")),
                (Ok(_), None) => problem(format!("prediction {id} has no thumbnail")),
                (Ok(d), Some(t)) => match pixels::decode_thumbnail(t.value()) {
                    Ok(t) if t == pixels::thumbnail(d) => {}
                    Ok(_) => problem(format!("prediction {id}: thumbnail is not of its drawing")),
                    Err(reason) => problem(format!(
                        "prediction {id}: thumbnail does not decode: {reason}"
                    )),
                },
            }
            let recomputed = record::content_id(p.time_ms, &p.drawing_png, &p.input, &p.model);
            if recomputed != p.content_id {
                problem(format!(
                    "prediction {id}: content id does not match its content"
                ));
            }
            match content.get(p.content_id.0).map_err(e)? {
                Some(v) if v.value() == id.0 => {}
                _ => problem(format!("prediction {id}: content id not indexed")),
            }
        }
        for entry in summaries.iter().map_err(e)? {
            let (key, _) = entry.map_err(e)?;
            if predictions.get(key.value()).map_err(e)?.is_none() {
                problem(format!("summary of missing prediction #{}", key.value()));
            }
        }
        for entry in content.iter().map_err(e)? {
            let (_, id) = entry.map_err(e)?;
            if predictions.get(id.value()).map_err(e)?.is_none() {
                problem(format!("content id of missing prediction #{}", id.value()));
            }
        }

        let mut stray = 0u64;
        for entry in index.iter().map_err(e)? {
            let (key, _) = entry.map_err(e)?;
            report.index_entries += 1;
            if !expected_index.remove(&key.value()) {
                stray += 1;
            }
        }
        if stray > 0 {
            problem(format!(
                "{stray} index entries point at nothing or are stale"
            ));
        }
        if !expected_index.is_empty() {
            problem(format!(
                "{} index entries are missing",
                expected_index.len()
            ));
        }
        let mut actual_counts: HashMap<u16, u64> = HashMap::new();
        for entry in counts.iter().map_err(e)? {
            let (key, value) = entry.map_err(e)?;
            actual_counts.insert(key.value(), value.value());
        }
        if actual_counts != expected_counts {
            problem("the filter counts disagree with the records".to_string());
        }
        let next = |key| -> Result<u64, StoreError> {
            Ok(meta.get(key).map_err(e)?.map(|v| v.value()).unwrap_or(0))
        };
        if next(META_NEXT_PREDICTION)? <= max_prediction {
            problem(format!(
                "the next prediction id would reuse #{max_prediction}"
            ));
        }
        if next(META_NEXT_REPORT)? <= max_report {
            problem(format!("the next report id would reuse {max_report}"));
        }
        let _ = META.name();

        if problems.len() > MAX_LISTED {
            let more = problems.len() - MAX_LISTED;
            problems.truncate(MAX_LISTED);
            problems.push(format!("… and {more} more problems"));
        }
        report.problems = problems;
        Ok(report)
    }
}
