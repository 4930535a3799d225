//! The prediction store: round trips, format versions, filters and paging, export/import,
//! damaged files, and a store in use. (The kill -9 test is in `store_crash.rs`.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::ReadableTable;

use cnnviz::store::exchange;
use cnnviz::store::sample::sample_prediction;
use cnnviz::store::{
    DigitFilter, Filter, Kind, NewReport, PredictionId, PredictionStore, ReportTarget,
    SavedPrediction, Sort, StoreDone, StoreError, StoreOptions, StoreWorker, Summary,
    validate_reason,
};

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn report(digit: u8, reason: &str, time_ms: u64) -> NewReport {
    NewReport {
        true_digit: digit,
        reason: reason.to_string(),
        time_ms,
    }
}

/// A store with `n` predictions at distinct times; every third is reported, and of those
/// every other one as a different digit than predicted (wrong).
fn filled(path: &Path, n: u64) -> PredictionStore {
    let store = PredictionStore::open(path).expect("open");
    for i in 0..n {
        // Times not in id order, so "newest" and "by id" differ.
        let time = 1_700_000_000_000 + (i * 7919) % 1000 * 1000 + i;
        let id = store.save(&sample_prediction(i, time)).expect("save");
        if i % 3 == 0 {
            let s = store.summary(id).unwrap().unwrap();
            let truth = if i % 2 == 0 {
                (s.predicted as u8 + 1) % 10
            } else {
                s.predicted as u8
            };
            store
                .report(id, &report(truth, &format!("report {i}"), time + 5))
                .expect("report");
        }
    }
    store
}

#[test]
fn every_record_kind_round_trips() {
    let dir = temp();
    let path = dir.path().join("nested/dirs/s.redb");
    let store = PredictionStore::open(&path).expect("created with its parents");
    let new = sample_prediction(42, 1_700_000_123_456);
    let id = store.save(&new).unwrap();
    let saved = store.get(id).unwrap().expect("saved");
    assert_eq!(saved.id, id);
    assert_eq!(saved.time_ms, new.time_ms);
    assert_eq!(saved.input, new.input);
    assert_eq!(saved.predicted, new.predicted);
    assert_eq!(saved.probabilities, new.probabilities);
    assert_eq!(saved.grad_cam, new.grad_cam);
    assert_eq!(saved.model, new.model);
    assert_eq!(saved.format_version, 1);
    assert_eq!(
        saved.drawing().unwrap(),
        new.drawing,
        "the PNG keeps every pixel"
    );
    assert!(saved.drawing_png.starts_with(b"\x89PNG"));

    // Saving the very same prediction again finds it instead of duplicating it.
    assert_eq!(store.save(&new).unwrap(), id);

    let rid = store
        .report(id, &report(7, "looks like a 7\ttabbed\nnewline", 5))
        .unwrap();
    let r = store.report_of(id).unwrap().expect("reported");
    assert_eq!((r.id, r.prediction, r.true_digit), (rid, id, 7));
    assert_eq!(r.reason, "looks like a 7\ttabbed\nnewline");
    assert_eq!(r.time_ms, 5);
    // A second report replaces the first.
    store.report(id, &report(1, "", 6)).unwrap();
    assert_eq!(store.report_of(id).unwrap().unwrap().true_digit, 1);

    let (id2, rid2) = store
        .save_and_report(&sample_prediction(43, 1), &report(3, "new", 2))
        .unwrap();
    assert_eq!(store.report_of(id2).unwrap().unwrap().id, rid2);

    let page = store.page(&Filter::ALL, Sort::Oldest, 0, 10).unwrap();
    assert_eq!(page.total, 2);
    let item = &page.items[1];
    assert_eq!(item.summary.id, id);
    assert_eq!(item.summary.true_digit, Some(1));
    assert_eq!(item.summary.confidence, saved.confidence());
    assert_eq!(item.thumbnail, cnnviz::store::thumbnail(&new.drawing));

    // Everything survives closing and reopening.
    drop(store);
    let store = PredictionStore::open(&path).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap(), saved);
    assert!(store.check().unwrap().is_ok());

    assert!(store.delete(id).unwrap());
    assert!(!store.delete(id).unwrap());
    assert!(store.get(id).unwrap().is_none());
    assert!(store.report_of(id).unwrap().is_none());
    assert_eq!(store.count(&Filter::ALL).unwrap(), 1);
    let check = store.check().unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
}

#[test]
fn invalid_records_are_refused() {
    let dir = temp();
    let store = PredictionStore::open(&dir.path().join("s.redb")).unwrap();
    let id = store.save(&sample_prediction(1, 1)).unwrap();
    let long = "x".repeat(501);
    for bad in [
        report(10, "", 1),
        report(3, &long, 1),
        report(3, "bell\u{7}", 1),
        report(3, "escape\u{1b}[2J", 1),
    ] {
        assert!(matches!(
            store.report(id, &bad),
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(
        validate_reason(&"é".repeat(500)).is_ok(),
        "characters, not bytes"
    );
    assert!(store.report(PredictionId(999), &report(1, "", 1)).is_err());
    let mut broken = sample_prediction(2, 2);
    broken.probabilities.pop();
    broken.predicted = 9;
    broken.grad_cam.target = 9;
    assert!(matches!(store.save(&broken), Err(StoreError::Invalid(_))));
    let mut broken = sample_prediction(3, 3);
    broken.input.values.push(0.0);
    assert!(matches!(store.save(&broken), Err(StoreError::Invalid(_))));
    let mut broken = sample_prediction(4, 4);
    broken.drawing.width = 5000;
    assert!(matches!(store.save(&broken), Err(StoreError::Invalid(_))));
    assert_eq!(store.count(&Filter::ALL).unwrap(), 1);
}

/// Rewrites the store's meta format version with redb directly, as a newer cnnviz would.
fn set_format_version(path: &Path, version: u64) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        meta.insert("format_version", version).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_store_from_a_newer_version_is_refused_and_left_alone() {
    let dir = temp();
    let path = dir.path().join("s.redb");
    drop(filled(&path, 3));
    set_format_version(&path, 2);
    let before = std::fs::read(&path).unwrap();
    for reset in [false, true] {
        let options = StoreOptions {
            create: true,
            reset_corrupt: reset,
        };
        match PredictionStore::open_with(&path, &options) {
            Err(StoreError::NewerFormat {
                found: 2,
                supported: 1,
                ..
            }) => {}
            other => panic!("expected a newer-format error, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "never rewritten");
    }
    let message = PredictionStore::open(&path).unwrap_err().to_string();
    assert!(message.contains("format version 2"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_record_from_a_newer_version_is_refused() {
    let dir = temp();
    let path = dir.path().join("s.redb");
    let store = filled(&path, 2);
    drop(store);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("predictions"))
                .unwrap();
            let mut value = t.get(1).unwrap().unwrap().value().to_vec();
            value[0] = 9; // the record's own version, little-endian u16
            t.insert(1, value.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = PredictionStore::open(&path).unwrap();
    assert!(matches!(
        store.get(PredictionId(1)),
        Err(StoreError::NewerFormat { found: 9, .. })
    ));
    assert!(store.get(PredictionId(2)).unwrap().is_some());
    assert!(!store.check().unwrap().is_ok());
}

fn brute_force(all: &[Summary], filter: &Filter, sort: Sort) -> Vec<PredictionId> {
    let mut hits: Vec<&Summary> = all.iter().filter(|s| filter.matches(s)).collect();
    let newest = |a: &&Summary, b: &&Summary| b.time_ms.cmp(&a.time_ms).then(b.id.cmp(&a.id));
    let least =
        |a: &&Summary, b: &&Summary| a.confidence.total_cmp(&b.confidence).then(b.id.cmp(&a.id));
    match sort {
        Sort::Newest => hits.sort_by(newest),
        Sort::Oldest => hits.sort_by(|a, b| newest(b, a)),
        Sort::LeastConfident => hits.sort_by(least),
        Sort::MostConfident => hits.sort_by(|a, b| least(b, a)),
    }
    hits.iter().map(|s| s.id).collect()
}

#[test]
fn filters_and_paging_match_a_brute_force_scan() {
    let dir = temp();
    let store = filled(&dir.path().join("s.redb"), 120);
    // Delete a few so the indexes must have been maintained on removal too.
    for id in [5, 6, 60] {
        assert!(store.delete(PredictionId(id)).unwrap());
    }
    let all: Vec<Summary> = store
        .ids(&Filter::ALL, Sort::Oldest, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|id| store.summary(id).unwrap().unwrap())
        .collect();
    assert_eq!(all.len(), 117);
    let mut filters = Vec::new();
    for kind in [Kind::All, Kind::Saved, Kind::Reported, Kind::Wrong] {
        filters.push(Filter {
            kind,
            digit: DigitFilter::Any,
        });
        for d in 0..10u8 {
            filters.push(Filter {
                kind,
                digit: DigitFilter::Predicted(u16::from(d)),
            });
            filters.push(Filter {
                kind,
                digit: DigitFilter::True(d),
            });
        }
    }
    let mut non_empty = 0;
    for filter in &filters {
        for sort in [
            Sort::Newest,
            Sort::Oldest,
            Sort::LeastConfident,
            Sort::MostConfident,
        ] {
            let expected = brute_force(&all, filter, sort);
            assert_eq!(store.count(filter).unwrap(), expected.len() as u64);
            let mut paged = Vec::new();
            let mut offset = 0;
            loop {
                let page = store.page(filter, sort, offset, 7).unwrap();
                assert_eq!(page.total, expected.len() as u64, "{filter:?}");
                assert_eq!(page.offset, offset);
                if page.items.is_empty() {
                    break;
                }
                assert!(page.items.len() <= 7);
                paged.extend(page.items.iter().map(|i| i.summary.id));
                offset += 7;
            }
            assert_eq!(paged, expected, "{filter:?} {sort:?}");
            non_empty += usize::from(!expected.is_empty());
        }
    }
    assert!(non_empty > 100, "the sample data exercises most filters");
    // The kinds add up.
    let count = |kind| {
        store
            .count(&Filter {
                kind,
                digit: DigitFilter::Any,
            })
            .unwrap()
    };
    assert_eq!(count(Kind::All), count(Kind::Saved) + count(Kind::Reported));
    assert!(count(Kind::Wrong) > 0 && count(Kind::Wrong) < count(Kind::Reported));
    assert!(store.check().unwrap().is_ok());
}

/// A prediction without its local id, and its report's digit, reason and time.
type Comparable = (SavedPrediction, Option<(u8, String, u64)>);

fn by_content(store: &PredictionStore) -> HashMap<String, Comparable> {
    store
        .ids(&Filter::ALL, Sort::Oldest, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|id| {
            let mut p = store.get(id).unwrap().unwrap();
            let r = store
                .report_of(id)
                .unwrap()
                .map(|r| (r.true_digit, r.reason, r.time_ms));
            p.id = PredictionId(0); // local ids may differ between stores
            (p.content_id.to_string(), (p, r))
        })
        .collect()
}

#[test]
fn export_then_import_gives_identical_records_and_a_second_import_adds_nothing() {
    let dir = temp();
    let source = filled(&dir.path().join("a.redb"), 25);
    let out = dir.path().join("export");
    let written = exchange::export(&source, &out, &Filter::ALL, usize::MAX).unwrap();
    assert_eq!(written.predictions, 25);
    assert_eq!(written.reports, 9);
    assert!(out.join("manifest.json").is_file());
    assert_eq!(std::fs::read_dir(out.join("drawings")).unwrap().count(), 25);
    assert!(
        exchange::export(&source, &out, &Filter::ALL, usize::MAX).is_err(),
        "never writes over an export"
    );

    let target = PredictionStore::open(&dir.path().join("b.redb")).unwrap();
    let first = exchange::import(&target, &out).unwrap();
    assert_eq!((first.added, first.already_present), (25, 0));
    assert_eq!(first.reports_added, 9);
    assert!(first.rejected.is_empty(), "{:?}", first.rejected);
    assert_eq!(by_content(&target), by_content(&source));

    let second = exchange::import(&target, &out).unwrap();
    assert_eq!((second.added, second.already_present), (0, 25));
    assert_eq!(second.reports_added, 0);
    assert_eq!(target.count(&Filter::ALL).unwrap(), 25);
    assert_eq!(by_content(&target), by_content(&source));
    assert!(target.check().unwrap().is_ok());

    // A filtered export: only the wrong ones.
    let wrong = Filter {
        kind: Kind::Wrong,
        digit: DigitFilter::Any,
    };
    let out2 = dir.path().join("wrong");
    let w = exchange::export(&source, &out2, &wrong, usize::MAX).unwrap();
    assert_eq!(w.predictions, source.count(&wrong).unwrap());
    assert_eq!(w.reports, w.predictions);
}

#[test]
fn an_import_trusts_nothing_in_the_folder() {
    let dir = temp();
    let source = filled(&dir.path().join("a.redb"), 4);
    let out = dir.path().join("export");
    exchange::export(&source, &out, &Filter::ALL, usize::MAX).unwrap();
    let mut manifest = exchange::read_manifest(&out).unwrap();
    manifest.records[0].drawing = "../../etc/passwd".into();
    manifest.records[1].content_id = "00".repeat(16);
    manifest.records[2].probabilities = vec![2.0; 10];
    let victim = out.join(&manifest.records[3].drawing);
    std::fs::write(&victim, b"not a png").unwrap();
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let target = PredictionStore::open(&dir.path().join("b.redb")).unwrap();
    let result = exchange::import(&target, &out).unwrap();
    assert_eq!(result.added, 0);
    assert_eq!(result.rejected.len(), 4, "{:?}", result.rejected);
    assert!(result.rejected[0].contains("leaves the export folder"));

    std::fs::write(
        out.join("manifest.json"),
        b"{\"format\": \"something else\"",
    )
    .unwrap();
    assert!(exchange::import(&target, &out).is_err());
}

/// Deterministic pseudo-random numbers for picking damage.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Opens a damaged file: must not panic; an error must name the file and leave it as it
/// was. Returns whether the open was refused.
fn open_damaged(path: &Path, what: &str) -> bool {
    let before = std::fs::read(path).unwrap();
    let result = std::panic::catch_unwind(|| PredictionStore::open(path));
    let result = result.unwrap_or_else(|_| panic!("{what}: opening panicked"));
    match result {
        Err(e) => {
            let message = e.to_string();
            assert!(
                matches!(e, StoreError::Corrupt { .. }),
                "{what}: unexpected error {message}"
            );
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert_eq!(
                std::fs::read(path).unwrap(),
                before,
                "{what}: the file was modified"
            );
            true
        }
        Ok(store) => {
            // Damage redb cannot see (bytes in free space) must be harmless.
            let check = store.check().expect("check");
            assert!(check.is_ok(), "{what}: opened but {:?}", check.problems);
            false
        }
    }
}

fn good_store(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("good.redb");
    drop(filled(&path, 30));
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn empty_foreign_and_truncated_files_are_refused_untouched() {
    let dir = temp();
    let (_, good) = good_store(dir.path());
    let path = dir.path().join("s.redb");

    std::fs::write(&path, b"").unwrap();
    assert!(open_damaged(&path, "empty"));
    let message = PredictionStore::open(&path).unwrap_err().to_string();
    assert!(message.contains("empty") && message.contains("--reset-corrupt-store"));

    std::fs::write(&path, b"name,digit\nalice,7\n").unwrap();
    assert!(open_damaged(&path, "a text file"));
    let mut rng = Rng(0x5eed);
    let noise: Vec<u8> = (0..8192).map(|_| rng.below(256) as u8).collect();
    std::fs::write(&path, &noise).unwrap();
    assert!(open_damaged(&path, "random bytes"));

    // Some other program's redb database.
    std::fs::remove_file(&path).unwrap();
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("accounts"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(open_damaged(&path, "a foreign redb file"));

    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    assert!(PredictionStore::open(&dir.path().join("a-directory")).is_err());

    let mut lengths: Vec<u64> = vec![1, 8, 9, 100, 511, 4096, good.len() as u64 - 1];
    for _ in 0..12 {
        lengths.push(1 + rng.below(good.len() as u64 - 1));
    }
    for len in lengths {
        std::fs::write(&path, &good[..len as usize]).unwrap();
        assert!(
            open_damaged(&path, &format!("truncated to {len}")),
            "truncated to {len} of {}: opened",
            good.len()
        );
    }
}

#[test]
fn flipped_bytes_are_refused_untouched_or_harmless() {
    let dir = temp();
    let (_, good) = good_store(dir.path());
    let path = dir.path().join("s.redb");
    let mut rng = Rng(0xf1195);
    let mut refused = 0;
    let trials = 40;
    for trial in 0..trials {
        let mut bytes = good.clone();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            // Half the trials aim at the first 64 KiB, where the header and the busiest
            // pages are; the rest anywhere.
            let span = if trial % 2 == 0 {
                64 << 10
            } else {
                bytes.len() as u64
            };
            let at = rng.below(span.min(bytes.len() as u64)) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        std::fs::write(&path, &bytes).unwrap();
        refused += usize::from(open_damaged(&path, &format!("trial {trial}")));
    }
    eprintln!("{refused} of {trials} damaged files refused, the rest harmless");
    assert!(refused > 0, "some damage must be detected");
}

#[test]
fn resetting_a_corrupt_store_moves_it_aside_only_when_asked() {
    let dir = temp();
    let path = dir.path().join("s.redb");
    std::fs::write(&path, b"definitely not a store").unwrap();
    assert!(PredictionStore::open(&path).is_err());
    let options = StoreOptions {
        create: true,
        reset_corrupt: true,
    };
    let store = PredictionStore::open_with(&path, &options).unwrap();
    let aside = store.moved_aside().expect("moved").to_path_buf();
    assert_eq!(std::fs::read(&aside).unwrap(), b"definitely not a store");
    assert!(
        aside
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("s.redb.corrupt-")
    );
    store.save(&sample_prediction(1, 1)).unwrap();
    drop(store);
    // A good store is never moved, flag or not.
    let store = PredictionStore::open_with(&path, &options).unwrap();
    assert!(store.moved_aside().is_none());
    assert_eq!(store.count(&Filter::ALL).unwrap(), 1);
}

#[test]
fn two_opens_at_once_get_a_clear_error() {
    let dir = temp();
    let path = dir.path().join("s.redb");
    let first = filled(&path, 2);
    let before = std::fs::read(&path).unwrap();
    let second = PredictionStore::open(&path);
    match &second {
        Err(StoreError::InUse { path: p }) => assert_eq!(p, &path),
        other => panic!("expected in-use, got {other:?}"),
    }
    let message = second.unwrap_err().to_string();
    assert!(message.contains("in use"), "{message}");
    // The reset flag never touches a store that is merely in use.
    let options = StoreOptions {
        create: true,
        reset_corrupt: true,
    };
    assert!(matches!(
        PredictionStore::open_with(&path, &options),
        Err(StoreError::InUse { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // The first handle carries on.
    first.save(&sample_prediction(99, 99)).unwrap();
    drop(first);
    assert_eq!(
        PredictionStore::open(&path)
            .unwrap()
            .count(&Filter::ALL)
            .unwrap(),
        3
    );
}

#[test]
fn the_worker_saves_reports_and_deletes_off_thread() {
    let dir = temp();
    let store = PredictionStore::open(&dir.path().join("s.redb")).unwrap();
    let generation = store.generation();
    let mut worker = StoreWorker::spawn(store.clone());
    let save = worker.save(sample_prediction(1, 10));
    let report_new = worker.report(
        ReportTarget::New(Box::new(sample_prediction(2, 20))),
        report(4, "new drawing", 21),
    );
    let bad = worker.report(ReportTarget::Saved(PredictionId(77)), report(4, "", 1));
    let mut outcomes = HashMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while outcomes.len() < 3 && std::time::Instant::now() < deadline {
        for outcome in worker.poll() {
            outcomes.insert(outcome.ticket, outcome.result);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let Ok(StoreDone::Saved(id)) = outcomes[&save] else {
        panic!("{:?}", outcomes[&save])
    };
    assert!(matches!(
        outcomes[&report_new],
        Ok(StoreDone::Reported { .. })
    ));
    assert!(matches!(outcomes[&bad], Err(StoreError::NotFound(77))));
    assert!(store.generation() > generation, "views learn of the change");
    let delete = worker.delete(id);
    let outcome = worker.wait(std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(outcome.ticket, delete);
    assert_eq!(
        outcome.result.unwrap(),
        StoreDone::Deleted { id, existed: true }
    );
    // Dropping the worker finishes queued work first.
    worker.save(sample_prediction(3, 30));
    drop(worker);
    assert_eq!(store.count(&Filter::ALL).unwrap(), 2);
}

#[test]
fn the_store_path_comes_from_the_flag_then_the_environment_then_the_data_dir() {
    use cnnviz::store::resolve_store_path;
    let explicit = resolve_store_path(Some(Path::new("/x/y.redb"))).unwrap();
    assert_eq!(explicit, PathBuf::from("/x/y.redb"));
    // The environment is process-wide; this is the only test here that reads it.
    let default = resolve_store_path(None).unwrap();
    if std::env::var_os("CNNVIZ_STORE").is_none() {
        assert!(default.ends_with("cnnviz/cnnviz.redb") || default.ends_with("cnnviz.redb"));
    }
}

#[test]
fn a_prediction_is_built_from_an_inference_and_a_store_opens_in_the_background() {
    use cnnviz::gpu::{CamOutput, ImageOutput};
    use cnnviz::store::{ModelIdentity, ModelInput, NewPrediction, open_in_background};
    let sample = sample_prediction(5, 5);
    let canvas = sample.drawing.to_ink_image();
    let mut probabilities = vec![0.01; 10];
    probabilities[4] = 0.91;
    let output = ImageOutput {
        logits: vec![0.0; 10],
        probabilities: probabilities.clone(),
        predicted: 4,
        target: 4,
        grad_cam: Some(CamOutput {
            block: 1,
            channel_weights: vec![0.0; 32],
            raw: vec![0.0; 49],
            low_res: vec![0.0; 49],
            heatmap: (0..784).map(|i| i as f32 / 783.0).collect(),
            height: 7,
            width: 7,
        }),
        value_ranges: None,
    };
    let input = ModelInput {
        channels: 1,
        height: 28,
        width: 28,
        values: sample.input.values.clone(),
    };
    let model = ModelIdentity::from_file_bytes("mnist-cnn", b"weights");
    let p = NewPrediction::from_inference(9, &canvas, input, &output, "conv2", model);
    assert_eq!(p.drawing, sample.drawing);
    assert_eq!(
        (p.predicted, p.grad_cam.target, p.grad_cam.block),
        (4, 4, 1)
    );
    assert_eq!(p.grad_cam.heatmap[0], 0);
    assert_eq!(p.grad_cam.heatmap[783], 255);
    assert_eq!(p.probabilities, probabilities);

    let dir = temp();
    let path = dir.path().join("bg.redb");
    let store = open_in_background(path.clone(), StoreOptions::default(), || {})
        .wait()
        .unwrap();
    let id = store.save(&p).unwrap();
    assert_eq!(store.get(id).unwrap().unwrap().grad_cam.layer, "conv2");
    // A second background open of the same file reports it in use.
    let mut pending = open_in_background(path, StoreOptions::default(), || {});
    let result = loop {
        if let Some(r) = pending.poll() {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(matches!(result, Err(StoreError::InUse { .. })));
}

#[test]
fn the_reports_confusion_matrix_counts_truth_against_prediction() {
    let dir = temp();
    let store = filled(&dir.path().join("s.redb"), 60);
    let matrix = store.report_confusion().expect("matrix");
    // Expected from the summaries themselves.
    let mut expected = vec![vec![0usize; 10]; 10];
    let all = store
        .page(&Filter::default(), Sort::default(), 0, 1000)
        .expect("page");
    for item in &all.items {
        if let Some(truth) = item.summary.true_digit {
            expected[usize::from(truth)][usize::from(item.summary.predicted)] += 1;
        }
    }
    assert_eq!(matrix, expected);
    assert_eq!(
        matrix.iter().flatten().sum::<usize>(),
        20,
        "every third of 60 is reported"
    );
    // A cell's digits are exactly the reported ones with that truth and prediction.
    let (truth, predicted) = (0..10)
        .flat_map(|t| (0..10).map(move |p| (t, p)))
        .find(|&(t, p)| t != p && expected[t][p] > 0)
        .expect("a wrong report exists");
    let cell = store.reported_cell(truth, predicted, 100).expect("cell");
    assert_eq!(cell.len(), expected[truth][predicted]);
    for item in &cell {
        assert_eq!(item.summary.true_digit, Some(truth as u8));
        assert_eq!(usize::from(item.summary.predicted), predicted);
        assert!(!item.thumbnail.pixels.is_empty());
    }
    assert!(
        store
            .reported_cell(truth, predicted, 1)
            .expect("limit")
            .len()
            <= 1
    );
}
