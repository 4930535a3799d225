//! Repetition and summary statistics: how many times a figure is measured (warm-up, a run
//! count, a time budget) and the median / percentiles it is reported as.

use std::time::{Duration, Instant};

use super::BenchError;

/// How one figure is sampled: `warmup` runs that are thrown away (cut short after a
/// quarter of the budget, but at least one), then up to `runs` measured runs, stopping
/// early once `budget` has passed and at least `min_runs` are in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub warmup: usize,
    pub runs: usize,
    pub min_runs: usize,
    pub budget: Duration,
}

impl Schedule {
    /// Runs `measure` (which returns one sample, e.g. nanoseconds) as scheduled and
    /// returns the measured samples.
    pub fn sample<T>(
        &self,
        mut measure: impl FnMut() -> Result<T, BenchError>,
    ) -> Result<Vec<T>, BenchError> {
        let started = Instant::now();
        for i in 0..self.warmup.max(1) {
            measure()?;
            if i + 1 < self.warmup && started.elapsed() * 4 > self.budget {
                break;
            }
        }
        let runs = self.runs.max(1);
        let min_runs = self.min_runs.clamp(1, runs);
        let started = Instant::now();
        let mut samples = Vec::with_capacity(runs.min(4096));
        while samples.len() < runs {
            samples.push(measure()?);
            if samples.len() >= min_runs && started.elapsed() > self.budget {
                break;
            }
        }
        Ok(samples)
    }
}

/// The `q`-quantile (0..=1) by the nearest-rank method on a copy of `values`; NaN for an
/// empty slice. `quantile(v, 0.5)` is the median (the upper one for even counts).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&hundred, 0.99), 99.0);
        assert_eq!(quantile(&hundred, 1.0), 100.0);
        assert_eq!(quantile(&hundred, 0.0), 1.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn the_schedule_stops_at_the_run_count_or_the_budget() {
        let mut calls = 0;
        let all = Schedule {
            warmup: 2,
            runs: 10,
            min_runs: 3,
            budget: Duration::from_secs(60),
        }
        .sample(|| {
            calls += 1;
            Ok(calls)
        })
        .expect("samples");
        assert_eq!(all, (3..=12).collect::<Vec<_>>());
        let short = Schedule {
            warmup: 0,
            runs: 1000,
            min_runs: 3,
            budget: Duration::ZERO,
        }
        .sample(|| Ok(()))
        .expect("samples");
        assert_eq!(short.len(), 3);
    }
}
