//! Nothing acknowledged is lost: a child process saves through the store's writer thread in
//! a loop, printing each id once its commit is durable; we kill it with SIGKILL at random
//! moments — often right after an acknowledgement — ten times, then check that every
//! acknowledged record is there and the store is consistent. Also: a store held by another
//! process is reported as in use.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cnnviz::store::{Filter, PredictionId, PredictionStore, StoreError};

fn save_loop(store: &std::path::Path, seed: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cnnviz"))
        .args(["store", "--store"])
        .arg(store)
        .args(["save-loop", "--seed", &seed.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cnnviz store save-loop")
}

/// Complete lines ("ID CONTENT\n") from the child, as they come, on a channel.
fn acknowledgements(child: &mut Child) -> mpsc::Receiver<(u64, String)> {
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                // A line cut short by the kill is not an acknowledgement.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    let mut parts = line.split_whitespace();
                    let id = parts.next().and_then(|s| s.parse().ok());
                    let content = parts.next().map(str::to_string);
                    if let (Some(id), Some(content)) = (id, content)
                        && tx.send((id, content)).is_err()
                    {
                        break;
                    }
                }
                _ => break,
            }
        }
    });
    rx
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn every_acknowledged_save_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut rng = Rng(0xdead_beef);
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    let started = Instant::now();
    for round in 0..10u64 {
        let mut child = save_loop(&path, round);
        let acks = acknowledgements(&mut child);
        // Even rounds: kill the moment the n-th acknowledgement arrives. Odd rounds: kill
        // after a random time, most likely in the middle of a commit.
        let wanted = 1 + rng.below(25) as usize;
        let deadline = Instant::now() + Duration::from_millis(100 + rng.below(400));
        let mut got = 0;
        loop {
            let timeout = if round % 2 == 0 {
                Duration::from_secs(20)
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            match acks.recv_timeout(timeout) {
                Ok(ack) => {
                    acknowledged.push(ack);
                    got += 1;
                    if round % 2 == 0 && got >= wanted {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "round {round}: save-loop ended by itself: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        // Whatever was printed before the kill landed counts too.
        while let Ok(ack) = acks.recv_timeout(Duration::from_millis(200)) {
            acknowledged.push(ack);
        }
        assert!(
            round % 2 == 1 || got >= wanted,
            "round {round}: only {got} of {wanted} saves acknowledged"
        );
    }
    assert!(
        acknowledged.len() >= 10,
        "{} acknowledged",
        acknowledged.len()
    );

    let store = PredictionStore::open(&path).expect("reopens after ten kills");
    for (id, content) in &acknowledged {
        let saved = store
            .get(PredictionId(*id))
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged prediction #{id} is missing"));
        assert_eq!(&saved.content_id.to_string(), content, "#{id}");
    }
    let count = store.count(&Filter::ALL).unwrap();
    assert!(count >= acknowledged.len() as u64);
    let check = store.check().unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
    eprintln!(
        "{} acknowledged saves, {count} stored, ten kills, {:.1} s",
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_store_open_in_another_process_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut child = save_loop(&path, 1);
    let acks = acknowledgements(&mut child);
    acks.recv_timeout(Duration::from_secs(20))
        .expect("the child saved something");
    let result = PredictionStore::open(&path);
    child.kill().unwrap();
    child.wait().unwrap();
    match result {
        Err(StoreError::InUse { path: p }) => assert_eq!(p, path),
        other => panic!("expected in-use, got {other:?}"),
    }
    // And the CLI says so in one line, with a failure status.
    let mut holder = save_loop(&path, 2);
    let acks = acknowledgements(&mut holder);
    acks.recv_timeout(Duration::from_secs(20)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cnnviz"))
        .args(["store", "--store"])
        .arg(&path)
        .arg("stats")
        .output()
        .unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Once the holder is gone, the store opens.
    assert!(PredictionStore::open(&path).is_ok());
}
