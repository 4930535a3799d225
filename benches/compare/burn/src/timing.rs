//! Medians of wall-clock samples, the way `cnnviz bench` reports them.

use std::time::{Duration, Instant};

/// How many runs to time: `warmup` untimed, then up to `runs` timed ones, stopping early
/// (after at least three) once `budget` has passed, so slow configurations end in time.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub warmup: usize,
    pub runs: usize,
    pub budget: Duration,
}

pub struct Summary {
    pub median_s: f64,
    pub p99_s: f64,
    pub runs: usize,
}

impl Schedule {
    /// Times `run` (which returns its own elapsed seconds, so set-up can stay outside).
    pub fn sample(&self, mut run: impl FnMut() -> Result<f64, String>) -> Result<Summary, String> {
        for _ in 0..self.warmup {
            run()?;
        }
        let started = Instant::now();
        let mut samples = Vec::with_capacity(self.runs);
        while samples.len() < self.runs && (samples.len() < 3 || started.elapsed() < self.budget) {
            samples.push(run()?);
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        let p99 = samples[((0.99 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Ok(Summary {
            median_s: median,
            p99_s: p99,
            runs: n,
        })
    }
}
