//! The store's two speed targets: a save with a durable commit (median ≤ 5 ms) and one
//! dashboard page of 100 thumbnails from a store of 100k records (≤ 20 ms). Also the
//! slower corners of paging: another sort order, filters, and pages deep in the view (a
//! page at offset N walks min(N, total − N) index keys first; the middle is the worst).
//!
//! The 100k-record store is built once per run in a temporary directory, in batches of
//! 5,000 per transaction (`CNNVIZ_BENCH_RECORDS` changes the size).

use std::time::Instant;

use cnnviz::store::sample::sample_prediction;
use cnnviz::store::{DigitFilter, Filter, Kind, PredictionStore, Sort};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const PAGE: usize = 100;

fn save(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = PredictionStore::open(&dir.path().join("save.redb")).expect("store");
    let mut seed = 0u64;
    c.bench_function("store/save (durable commit, 280×280 drawing)", |b| {
        b.iter_batched(
            || {
                seed += 1;
                sample_prediction(seed, 1_700_000_000_000 + seed)
            },
            |p| store.save(&p).expect("save"),
            BatchSize::SmallInput,
        )
    });
}

fn big_store(records: u64) -> (tempfile::TempDir, PredictionStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = PredictionStore::open(&dir.path().join("big.redb")).expect("store");
    // A hundred distinct drawings, saved at different times: distinct records that cost
    // only a PNG encode each to make.
    let bases: Vec<_> = (0..100).map(|i| sample_prediction(i, 0)).collect();
    let started = Instant::now();
    let mut next = 0u64;
    while next < records {
        let batch: Vec<_> = (next..(next + 5000).min(records))
            .map(|i| {
                let mut p = bases[(i % 100) as usize].clone();
                p.time_ms = 1_700_000_000_000 + i * 1000;
                p
            })
            .collect();
        store.save_batch(&batch).expect("bulk save");
        next += batch.len() as u64;
    }
    // Report some of them, so the "reported" and "wrong" views have something to show.
    for id in (1..=records).step_by(50) {
        let report = cnnviz::store::NewReport {
            true_digit: (id % 10) as u8,
            reason: "benchmark".into(),
            time_ms: 1,
        };
        store
            .report(cnnviz::store::PredictionId(id), &report)
            .expect("report");
    }
    let bytes = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "built a store of {records} records ({:.0} MB) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    (dir, store)
}

fn page(c: &mut Criterion) {
    let records: u64 = std::env::var("CNNVIZ_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (_dir, store) = big_store(records);
    let label = format!("{}k", records / 1000);
    let mut group = c.benchmark_group("store/page of 100");
    let cases = [
        ("newest, all", Filter::ALL, Sort::Newest, 0),
        ("least confident, all", Filter::ALL, Sort::LeastConfident, 0),
        (
            "newest, predicted 3",
            Filter {
                kind: Kind::All,
                digit: DigitFilter::Predicted(3),
            },
            Sort::Newest,
            0,
        ),
        (
            "newest, wrong",
            Filter {
                kind: Kind::Wrong,
                digit: DigitFilter::Any,
            },
            Sort::Newest,
            0,
        ),
        (
            "middle page (the slowest), all",
            Filter::ALL,
            Sort::Newest,
            records / 2,
        ),
        (
            "last page, all",
            Filter::ALL,
            Sort::Newest,
            records.saturating_sub(PAGE as u64),
        ),
    ];
    for (name, filter, sort, offset) in cases {
        let page = store.page(&filter, sort, offset, PAGE).expect("page");
        assert!(!page.items.is_empty(), "{name}: empty page");
        group.bench_function(format!("{name} ({label} records)"), |b| {
            b.iter(|| store.page(&filter, sort, offset, PAGE).expect("page"))
        });
    }
    group.finish();
    // Opening reads the whole file once (the probe's integrity check): worth knowing.
    let path = store.path().to_path_buf();
    drop(store);
    let started = Instant::now();
    let reopened = PredictionStore::open(&path).expect("reopen");
    eprintln!(
        "opening the {label}-record store (probe with a full integrity check): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(reopened);
}

criterion_group!(benches, save, page);
criterion_main!(benches);
