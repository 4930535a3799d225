//! The redb tables and the index keys that make filtered, sorted paging cheap.
//!
//! Every gallery view is one "group" — a filter (all / saved / reported / wrong, optionally
//! narrowed to one predicted or true digit) under one sort order — and every group is a
//! contiguous key range of [`INDEX`]: `(group, sort key, tie-break)`. A page is a range scan
//! that skips `offset` keys and reads `limit`, whatever the store's size; [`COUNTS`] holds the
//! size of every group for "page 3 of 40". A record appears in 4 to 9 groups per sort order.

use redb::TableDefinition;

use super::query::{DigitFilter, Filter, Kind, Sort};
use super::record::Summary;

/// `format_version`, `next_prediction_id`, `next_report_id`, `created_ms`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Prediction id → encoded [`super::SavedPrediction`] (without its id).
pub const PREDICTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("predictions");
/// Prediction id → encoded [`Summary`]: what the gallery and the indexes need.
pub const SUMMARIES: TableDefinition<u64, &[u8]> = TableDefinition::new("summaries");
/// Prediction id → encoded [`super::Thumbnail`].
pub const THUMBNAILS: TableDefinition<u64, &[u8]> = TableDefinition::new("thumbnails");
/// Report id → encoded [`super::Report`] (without its id).
pub const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports");
/// Prediction id → the id of its report.
pub const REPORT_OF: TableDefinition<u64, u64> = TableDefinition::new("report_of");
/// Content id → prediction id, so imports and repeated saves find what is already there.
pub const CONTENT: TableDefinition<[u8; 16], u64> = TableDefinition::new("content");
/// `(group, sort key, tie-break)` → nothing; see the module comment.
pub const INDEX: TableDefinition<(u16, u64, u64), ()> = TableDefinition::new("index");
/// Filter group (sort bits zero) → number of predictions in it.
pub const COUNTS: TableDefinition<u16, u64> = TableDefinition::new("counts");

pub const META_FORMAT_VERSION: &str = "format_version";
pub const META_NEXT_PREDICTION: &str = "next_prediction_id";
pub const META_NEXT_REPORT: &str = "next_report_id";
pub const META_CREATED: &str = "created_ms";

/// The two sort orders that have index entries; the other two walk them backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexedOrder {
    Newest,
    LeastConfident,
}

impl Sort {
    pub(crate) fn indexed(self) -> (IndexedOrder, bool) {
        match self {
            Sort::Newest => (IndexedOrder::Newest, false),
            Sort::Oldest => (IndexedOrder::Newest, true),
            Sort::LeastConfident => (IndexedOrder::LeastConfident, false),
            Sort::MostConfident => (IndexedOrder::LeastConfident, true),
        }
    }
}

const ORDERS: [IndexedOrder; 2] = [IndexedOrder::Newest, IndexedOrder::LeastConfident];

/// The filter part of a group: kind in bits 8..10, digit filter in bits 0..8.
fn filter_code(filter: &Filter) -> Option<u16> {
    let kind = match filter.kind {
        Kind::All => 0,
        Kind::Saved => 1,
        Kind::Reported => 2,
        Kind::Wrong => 3,
    };
    let digit = match filter.digit {
        DigitFilter::Any => 0,
        // Predicted classes 0..=99 have groups; a model with more classes filters the rest
        // by scanning (they never match a digit filter from the dashboard anyway).
        DigitFilter::Predicted(d) if d < 100 => 1 + d,
        DigitFilter::True(d) if d < 10 => 128 + u16::from(d),
        _ => return None,
    };
    Some(kind << 8 | digit)
}

/// The group of a filter under an order; `None` for a filter nothing can match.
pub fn group(filter: &Filter, order: IndexedOrder) -> Option<u16> {
    let order_bit = match order {
        IndexedOrder::Newest => 0,
        IndexedOrder::LeastConfident => 1 << 12,
    };
    filter_code(filter).map(|code| order_bit | code)
}

/// The count key of a filter.
pub fn count_key(filter: &Filter) -> Option<u16> {
    filter_code(filter)
}

/// Every filter a prediction with this summary matches.
pub fn filters_of(s: &Summary) -> Vec<Filter> {
    let mut kinds = vec![Kind::All];
    match s.true_digit {
        None => kinds.push(Kind::Saved),
        Some(_) => {
            kinds.push(Kind::Reported);
            if s.is_wrong() {
                kinds.push(Kind::Wrong);
            }
        }
    }
    let mut digits = vec![DigitFilter::Any, DigitFilter::Predicted(s.predicted)];
    if let Some(t) = s.true_digit {
        digits.push(DigitFilter::True(t));
    }
    let mut out = Vec::with_capacity(kinds.len() * digits.len());
    for &kind in &kinds {
        for &digit in &digits {
            // "Saved" means not reported, so it has no true digit to filter on.
            out.push(Filter { kind, digit });
        }
    }
    out
}

/// The sort key and tie-break of a prediction under an order. Ascending keys give the
/// order's first entry first: newest (largest time, then largest id) or least confident.
pub fn sort_key(s: &Summary, order: IndexedOrder) -> (u64, u64) {
    let tie = u64::MAX - s.id.0;
    match order {
        IndexedOrder::Newest => (u64::MAX - s.time_ms, tie),
        // Probabilities are non-negative, and non-negative floats order like their bits.
        IndexedOrder::LeastConfident => (u64::from(s.confidence.max(0.0).to_bits()), tie),
    }
}

/// Every index key of a prediction, for insertion and removal.
pub fn index_keys(s: &Summary) -> Vec<(u16, u64, u64)> {
    let filters = filters_of(s);
    let mut keys = Vec::with_capacity(filters.len() * ORDERS.len());
    for order in ORDERS {
        let (key, tie) = sort_key(s, order);
        for f in &filters {
            if let Some(g) = group(f, order) {
                keys.push((g, key, tie));
            }
        }
    }
    keys
}

/// The count keys a prediction adds one to.
pub fn count_keys(s: &Summary) -> Vec<u16> {
    filters_of(s).iter().filter_map(count_key).collect()
}

/// The id an index key points at.
pub fn id_of_key(tie: u64) -> u64 {
    u64::MAX - tie
}
