//! The probabilistic and deflated Sharpe ratios (Bailey & López de Prado, 2012 and 2014).
//!
//! Both work on per-candle returns (not annualised): the PSR is the probability that the true
//! Sharpe ratio exceeds a benchmark given the sample's length, skewness and kurtosis; the DSR is
//! the PSR against the Sharpe ratio the best of `trials` unskilled configurations would show by
//! luck. The trials' Sharpe variance is taken as the estimator's own sampling variance under the
//! null (the trials themselves are not at hand), the usual approximation when only their number is
//! known.

use statrs::distribution::{ContinuousCDF, Normal};

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Sample moments of a return series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Number of returns (at least three).
    pub n: usize,
    /// Per-period Sharpe ratio (mean over standard deviation).
    pub sharpe: f64,
    /// Skewness (0 for a symmetric distribution).
    pub skewness: f64,
    /// Kurtosis (3 for a normal distribution).
    pub kurtosis: f64,
}

/// The moments of `returns`, `None` with fewer than three returns or no variance.
pub fn moments(returns: &[f64]) -> Option<Moments> {
    let n = returns.len();
    if n < 3 {
        return None;
    }
    let mean = returns.iter().sum::<f64>() / n as f64;
    let central = |k: i32| returns.iter().map(|r| (r - mean).powi(k)).sum::<f64>() / n as f64;
    let variance = central(2);
    if variance <= 0.0 {
        return None;
    }
    let sd = variance.sqrt();
    Some(Moments {
        n,
        sharpe: mean / sd,
        skewness: central(3) / sd.powi(3),
        kurtosis: central(4) / variance.powi(2),
    })
}

fn normal() -> Normal {
    Normal::standard()
}

/// The standard error of the per-period Sharpe estimate.
fn sharpe_sd(m: &Moments) -> f64 {
    let v = 1.0 - m.skewness * m.sharpe + (m.kurtosis - 1.0) / 4.0 * m.sharpe.powi(2);
    (v.max(1e-12) / (m.n as f64 - 1.0)).sqrt()
}

/// P(true Sharpe > `benchmark`), both per period.
pub fn probabilistic_sharpe(m: &Moments, benchmark: f64) -> f64 {
    normal().cdf((m.sharpe - benchmark) / sharpe_sd(m))
}

/// The Sharpe ratio (per period) the best of `trials` skill-less configurations reaches by luck.
pub fn expected_max_sharpe(m: &Moments, trials: u32) -> f64 {
    if trials <= 1 {
        return 0.0;
    }
    let n = f64::from(trials);
    let z = |p: f64| normal().inverse_cdf(p);
    sharpe_sd(m)
        * ((1.0 - EULER_GAMMA) * z(1.0 - 1.0 / n)
            + EULER_GAMMA * z(1.0 - 1.0 / (n * std::f64::consts::E)))
}

/// The PSR against what `trials` configurations would reach by luck.
pub fn deflated_sharpe(m: &Moments, trials: u32) -> f64 {
    probabilistic_sharpe(m, expected_max_sharpe(m, trials))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(mean: f64, n: usize) -> Vec<f64> {
        // a deterministic ±1% zig-zag around `mean`
        (0..n)
            .map(|i| mean + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect()
    }

    #[test]
    fn moments_of_a_symmetric_series() {
        let m = moments(&series(0.001, 1000)).unwrap();
        assert!((m.sharpe - 0.1).abs() < 1e-9);
        assert!(m.skewness.abs() < 1e-9);
        assert!((m.kurtosis - 1.0).abs() < 1e-9); // two-point distribution
        assert!(moments(&[0.0, 0.0, 0.0]).is_none());
    }

    #[test]
    fn more_evidence_more_confidence_and_more_trials_less() {
        let short = moments(&series(0.001, 100)).unwrap();
        let long = moments(&series(0.001, 10_000)).unwrap();
        assert!(probabilistic_sharpe(&long, 0.0) > probabilistic_sharpe(&short, 0.0));
        assert!(
            (probabilistic_sharpe(&moments(&series(0.0, 100)).unwrap(), 0.0) - 0.5).abs() < 1e-9
        );
        let one = deflated_sharpe(&long, 1);
        let many = deflated_sharpe(&long, 100);
        assert!(many < one, "{many} < {one}");
        assert_eq!(one, probabilistic_sharpe(&long, 0.0));
    }
}
