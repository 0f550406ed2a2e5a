//! The ML ensemble of the seed, with smartcore: a direction classifier (random forest), a magnitude
//! regressor (random forest on the forward return), a confidence model (logistic regression, whose
//! probability of a rise is calibrated by construction) and a risk regressor (random forest on the
//! forward absolute return). Features are the indicators, recent returns, the volatility regime and
//! the hour and weekday; labels look `horizon` candles ahead. [`walk_forward`] evaluates on time-ordered
//! folds (train on the past, test on the next slice), as a trader would have used the model.

use crate::indicators::IndicatorSet;
use crate::market::Candle;
use crate::roles::strategist::{Forecast, Forecaster};
use chrono::{Datelike, TimeZone, Timelike, Utc};
use protocol::messages::{Indicators, MarketSnapshot};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

/// The features, in order.
pub const FEATURES: [&str; 14] = [
    "rsi",
    "macd_hist_rel",
    "ema_gap",
    "bb_percent",
    "bb_width",
    "stoch_k",
    "willr",
    "cci",
    "adx",
    "atr_rel",
    "volume_ratio",
    "return_1",
    "return_12",
    "hour_of_week",
];
const N: usize = FEATURES.len();

/// The feature vector of a candle, once every indicator is warm.
pub fn features(open_time: i64, close: f64, i: &Indicators) -> Option<[f64; N]> {
    let (upper, lower, middle) = (i.bb_upper?, i.bb_lower?, i.bb_middle?);
    let width = upper - lower;
    let at = Utc.timestamp_millis_opt(open_time).single()?;
    Some([
        i.rsi_14? / 100.0,
        i.macd_hist? / close * 100.0,
        (close / i.ema_20? - 1.0) * 100.0,
        if width > 0.0 {
            (close - lower) / width
        } else {
            0.5
        },
        width / middle * 100.0,
        i.stoch_k? / 100.0,
        i.willr_14? / 100.0,
        i.cci_20? / 100.0,
        i.adx_14? / 100.0,
        i.atr_14? / close * 100.0,
        i.volume_ratio_20?.min(10.0),
        i.return_1? * 100.0,
        i.return_12? * 100.0,
        (at.weekday().num_days_from_monday() * 24 + at.hour()) as f64 / 168.0,
    ])
}

/// Features and labels of a candle series.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// One feature row per labelled candle, in [`FEATURES`] order.
    pub x: Vec<[f64; N]>,
    /// 1 when the close `horizon` candles later is higher.
    pub up: Vec<u32>,
    /// Forward return over the horizon, in percent.
    pub forward: Vec<f64>,
}

impl Dataset {
    /// The rows of `candles` whose indicators are warm and which have a candle `horizon` later
    /// (so the last `horizon` candles give none).
    pub fn from_candles(candles: &[Candle], horizon: usize) -> Self {
        let mut set = IndicatorSet::new();
        let mut ds = Dataset::default();
        for (k, c) in candles.iter().enumerate() {
            let v = set.update(c);
            let Some(later) = candles.get(k + horizon) else {
                break;
            };
            if let Some(f) = features(c.open_time, c.close, &v.indicators) {
                let r = (later.close / c.close - 1.0) * 100.0;
                ds.x.push(f);
                ds.up.push(u32::from(r > 0.0));
                ds.forward.push(r);
            }
        }
        ds
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    fn extend(&mut self, other: Dataset) {
        self.x.extend(other.x);
        self.up.extend(other.up);
        self.forward.extend(other.forward);
    }

    fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Self {
            x: self.x[range.clone()].to_vec(),
            up: self.up[range.clone()].to_vec(),
            forward: self.forward[range].to_vec(),
        }
    }
}

/// Why a model could not be trained or used.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error("training the {model}: {error}")]
    /// smartcore failed to fit or apply a model.
    Fit {
        /// Which model (`direction classifier`, `risk regressor`, `feature matrix`, ...).
        model: &'static str,
        /// smartcore's complaint.
        error: String,
    },
    #[error("too few samples to train: {0} (need at least {1})")]
    /// Fewer samples than training needs: (samples, minimum).
    TooFew(usize, usize),
    #[error("{path}: {error}")]
    /// A model file could not be written, read or decoded.
    File {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
}

impl Ensemble {
    /// The model as bytes (JSON), for the `models` table.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a trained model serialises")
    }

    /// A model from the bytes [`to_bytes`](Self::to_bytes) made; `what` names where they came from.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self, MlError> {
        serde_json::from_slice(bytes).map_err(|e| MlError::File {
            path: what.to_string(),
            error: format!("not an ia-agents model: {e}"),
        })
    }
}

type Matrix = DenseMatrix<f64>;

/// The trained ensemble.
#[derive(Serialize, Deserialize)]
pub struct Ensemble {
    /// Candles the labels looked ahead; [`Ensemble::train`] leaves it 0, `trading-agent train` sets it.
    pub horizon: usize,
    mean: Vec<f64>,
    std: Vec<f64>,
    direction: RandomForestClassifier<f64, u32, Matrix, Vec<u32>>,
    magnitude: RandomForestRegressor<f64, f64, Matrix, Vec<f64>>,
    confidence: LogisticRegression<f64, u32, Matrix, Vec<u32>>,
    risk: RandomForestRegressor<f64, f64, Matrix, Vec<f64>>,
}

/// What the ensemble says of one candle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// The forest's call: will the price be higher after the horizon?
    pub up: bool,
    /// The logistic model's probability of a rise.
    pub probability_up: f64,
    /// Expected forward return, percent.
    pub magnitude: f64,
    /// Expected absolute forward return, percent (risk).
    pub risk: f64,
}

/// Size of the forests.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    /// Trees per forest (default 40).
    pub trees: u16,
    /// Deepest a tree may grow (default 8).
    pub max_depth: u16,
    /// Seed of the forests' sampling (default 42), so training is reproducible.
    pub seed: u64,
}

impl Default for Training {
    fn default() -> Self {
        Self {
            trees: 40,
            max_depth: 8,
            seed: 42,
        }
    }
}

fn fit_err(model: &'static str) -> impl Fn(smartcore::error::Failed) -> MlError {
    move |e| MlError::Fit {
        model,
        error: e.to_string(),
    }
}

impl Ensemble {
    /// Fits the four models on `ds` (features standardised); at least 200 samples.
    pub fn train(ds: &Dataset, t: Training) -> Result<Self, MlError> {
        const MIN: usize = 200;
        if ds.len() < MIN {
            return Err(MlError::TooFew(ds.len(), MIN));
        }
        let n = ds.len() as f64;
        let mean: Vec<f64> = (0..N)
            .map(|j| ds.x.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let std: Vec<f64> = (0..N)
            .map(|j| {
                let v = ds.x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
                if v > 0.0 {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let x = matrix(&ds.x, &mean, &std)?;
        let risk_y: Vec<f64> = ds.forward.iter().map(|r| r.abs()).collect();
        Ok(Self {
            horizon: 0,
            direction: RandomForestClassifier::fit(
                &x,
                &ds.up,
                RandomForestClassifierParameters::default()
                    .with_n_trees(t.trees)
                    .with_max_depth(t.max_depth)
                    .with_seed(t.seed),
            )
            .map_err(fit_err("direction classifier"))?,
            magnitude: RandomForestRegressor::fit(
                &x,
                &ds.forward,
                RandomForestRegressorParameters::default()
                    .with_n_trees(t.trees as usize)
                    .with_max_depth(t.max_depth)
                    .with_seed(t.seed),
            )
            .map_err(fit_err("magnitude regressor"))?,
            confidence: LogisticRegression::fit(
                &x,
                &ds.up,
                LogisticRegressionParameters::default(),
            )
            .map_err(fit_err("confidence model"))?,
            risk: RandomForestRegressor::fit(
                &x,
                &risk_y,
                RandomForestRegressorParameters::default()
                    .with_n_trees(t.trees as usize)
                    .with_max_depth(t.max_depth)
                    .with_seed(t.seed + 1),
            )
            .map_err(fit_err("risk regressor"))?,
            mean,
            std,
        })
    }

    /// Predictions for many feature rows at once.
    pub fn predict(&self, rows: &[[f64; N]]) -> Result<Vec<Prediction>, MlError> {
        let x = matrix(rows, &self.mean, &self.std)?;
        let up = self
            .direction
            .predict(&x)
            .map_err(fit_err("direction classifier"))?;
        let magnitude = self
            .magnitude
            .predict(&x)
            .map_err(fit_err("magnitude regressor"))?;
        let risk = self.risk.predict(&x).map_err(fit_err("risk regressor"))?;
        let w = self.confidence.coefficients();
        let b = *self.confidence.intercept().get((0, 0));
        Ok((0..rows.len())
            .map(|k| {
                let z: f64 = b + (0..N).map(|j| *w.get((0, j)) * *x.get((k, j))).sum::<f64>();
                Prediction {
                    up: up[k] == 1,
                    probability_up: 1.0 / (1.0 + (-z).exp()),
                    magnitude: magnitude[k],
                    risk: risk[k],
                }
            })
            .collect())
    }

    /// Writes the model to `path` as JSON.
    pub fn save(&self, path: &std::path::Path) -> Result<(), MlError> {
        let file = |error: String| MlError::File {
            path: path.display().to_string(),
            error,
        };
        let json = serde_json::to_vec(self).map_err(|e| file(e.to_string()))?;
        std::fs::write(path, json).map_err(|e| file(e.to_string()))
    }

    /// Reads a model [`save`](Self::save) wrote.
    pub fn load(path: &std::path::Path) -> Result<Self, MlError> {
        let file = |error: String| MlError::File {
            path: path.display().to_string(),
            error,
        };
        let bytes = std::fs::read(path).map_err(|e| file(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| file(format!("not an ia-agents model: {e}")))
    }
}

fn matrix(rows: &[[f64; N]], mean: &[f64], std: &[f64]) -> Result<Matrix, MlError> {
    let scaled: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| (0..N).map(|j| (r[j] - mean[j]) / std[j]).collect())
        .collect();
    DenseMatrix::from_2d_vec(&scaled).map_err(fit_err("feature matrix"))
}

impl Forecaster for Ensemble {
    /// The logistic probability, nudged by the forest's call (the two agree more often than not).
    fn forecast(&self, s: &MarketSnapshot) -> Option<Forecast> {
        let f = features(s.open_time, s.close, &s.indicators)?;
        let p = self.predict(&[f]).ok()?.pop()?;
        let forest = if p.up { 1.0 } else { 0.0 };
        Some(Forecast {
            probability_up: (0.7 * p.probability_up + 0.3 * forest).clamp(0.0, 1.0),
        })
    }
}

/// What one retraining did, for the logs and the `models` table.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrainReport {
    /// Version of the model now in use (1 for the first one trained).
    pub version: u64,
    /// Samples the new model was trained on (every series together).
    pub trained_on: usize,
    /// Samples held out (the most recent ones) to compare the models on.
    pub held_out: usize,
    /// Direction accuracy of the previous model on the held-out samples (`None`: there was none).
    pub previous_accuracy: Option<f64>,
    /// Direction accuracy of the new model on the held-out samples (0 to 1).
    pub accuracy: f64,
    /// Brier score of the new model's probability on the held-out samples.
    pub brier: f64,
    /// What always guessing the held-out samples' majority direction scores: the bar to beat.
    pub baseline: f64,
    /// Whether the new model forecasts: only while it beats [`RetrainReport::baseline`] on the
    /// held-out samples; otherwise the strategist decides without a forecast.
    pub in_use: bool,
}

/// The strategist's forecaster, retrained on the learning schedule: it forecasts with the model
/// in use and swaps in a new one after each retraining, so the team never waits for training.
pub struct Retrainer {
    current: std::sync::RwLock<Option<(u64, std::sync::Arc<Ensemble>)>>,
    /// Whether the current model beat its baseline when it was trained (an initial model is
    /// trusted until the first retraining).
    in_use: std::sync::atomic::AtomicBool,
    training: Training,
    /// Forecast horizon in candles (labels).
    pub horizon: usize,
    /// Most recent candles per symbol a retraining uses.
    pub window: usize,
}

impl Retrainer {
    /// Forecasts with `initial` (version 0) until the first retraining; None forecasts nothing
    /// until then.
    pub fn new(
        initial: Option<Ensemble>,
        training: Training,
        horizon: usize,
        window: usize,
    ) -> Self {
        Self {
            current: std::sync::RwLock::new(initial.map(|m| (0, std::sync::Arc::new(m)))),
            in_use: std::sync::atomic::AtomicBool::new(true),
            training,
            horizon,
            window,
        }
    }

    /// The model in use and its version.
    pub fn current(&self) -> Option<(u64, std::sync::Arc<Ensemble>)> {
        self.current.read().expect("model lock").clone()
    }

    /// Trains a new model on the recent candles of each series, the last fifth held out to judge
    /// it, with a purge gap of `horizon` samples between them (a training label looks `horizon`
    /// candles ahead, into the held-out period). The new model replaces the previous one, and
    /// forecasts only if it beats the held-out samples' majority direction.
    pub fn retrain(&self, series: &[&[Candle]]) -> Result<RetrainReport, MlError> {
        let mut train = Dataset::default();
        let mut test = Dataset::default();
        for candles in series {
            let recent = &candles[candles.len().saturating_sub(self.window)..];
            let ds = Dataset::from_candles(recent, self.horizon);
            let cut = ds.len() * 4 / 5;
            train.extend(ds.slice(0..cut.saturating_sub(self.horizon)));
            test.extend(ds.slice(cut..ds.len()));
        }
        let model = Ensemble::train(&train, self.training)?;
        let accuracy = |m: &Ensemble| -> Result<(f64, f64), MlError> {
            let p = m.predict(&test.x)?;
            let n = test.len().max(1) as f64;
            let right = p
                .iter()
                .zip(&test.up)
                .filter(|(p, up)| p.up == (**up == 1))
                .count();
            let brier = p
                .iter()
                .zip(&test.up)
                .map(|(p, up)| (p.probability_up - f64::from(*up)).powi(2))
                .sum::<f64>()
                / n;
            Ok((right as f64 / n, brier))
        };
        let previous = self.current();
        let previous_accuracy = match &previous {
            Some((_, m)) if !test.is_empty() => Some(accuracy(m)?.0),
            _ => None,
        };
        let (new_accuracy, brier) = accuracy(&model)?;
        let baseline = majority_share(&test.up);
        let in_use = new_accuracy > baseline;
        let version = previous.map_or(1, |(v, _)| v + 1);
        *self.current.write().expect("model lock") = Some((version, std::sync::Arc::new(model)));
        self.in_use
            .store(in_use, std::sync::atomic::Ordering::Relaxed);
        Ok(RetrainReport {
            version,
            trained_on: train.len(),
            held_out: test.len(),
            previous_accuracy,
            accuracy: new_accuracy,
            brier,
            baseline,
            in_use,
        })
    }
}

impl Forecaster for Retrainer {
    fn forecast(&self, s: &MarketSnapshot) -> Option<Forecast> {
        if !self.in_use.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.current()?.1.forecast(s)
    }
}

/// The share of the majority direction among `up` labels (1 = up): what always guessing it scores.
fn majority_share(up: &[u32]) -> f64 {
    let n = up.len().max(1) as f64;
    let ups = up.iter().filter(|u| **u == 1).count() as f64 / n;
    ups.max(1.0 - ups)
}

/// One fold of the walk-forward evaluation.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Fold {
    /// Samples trained on (the first `k` slices).
    pub train: usize,
    /// Samples tested on (the next slice).
    pub test: usize,
    /// Share of correct up/down calls by the forest.
    pub accuracy: f64,
    /// Share of the test slice's majority direction (what always guessing it would score).
    pub baseline: f64,
    /// Brier score of the logistic probability (0.25 = a coin).
    pub brier: f64,
    /// Mean absolute error of the magnitude regressor, percent.
    pub magnitude_mae: f64,
    /// Mean absolute error of the risk regressor, percent.
    pub risk_mae: f64,
}

/// Trains on the first `k` slices and tests on slice `k + 1`, for `k = 1..folds`, leaving out the
/// last `purge` training samples (their labels look into the test slice: `purge` = the horizon).
pub fn walk_forward(
    ds: &Dataset,
    folds: usize,
    purge: usize,
    t: Training,
) -> Result<Vec<Fold>, MlError> {
    let folds = folds.max(2);
    let slice = ds.len() / (folds + 1);
    let mut out = Vec::new();
    for k in 1..=folds {
        let train = ds.slice(0..(slice * k).saturating_sub(purge));
        let test = ds.slice(slice * k..(slice * (k + 1)).min(ds.len()));
        if test.is_empty() {
            break;
        }
        let model = Ensemble::train(&train, t)?;
        let p = model.predict(&test.x)?;
        let n = test.len() as f64;
        let ups = test.up.iter().filter(|u| **u == 1).count() as f64;
        out.push(Fold {
            train: train.len(),
            test: test.len(),
            accuracy: p
                .iter()
                .zip(&test.up)
                .filter(|(p, u)| p.up == (**u == 1))
                .count() as f64
                / n,
            baseline: (ups / n).max(1.0 - ups / n),
            brier: p
                .iter()
                .zip(&test.up)
                .map(|(p, u)| (p.probability_up - *u as f64).powi(2))
                .sum::<f64>()
                / n,
            magnitude_mae: p
                .iter()
                .zip(&test.forward)
                .map(|(p, r)| (p.magnitude - r).abs())
                .sum::<f64>()
                / n,
            risk_mae: p
                .iter()
                .zip(&test.forward)
                .map(|(p, r)| (p.risk - r.abs()).abs())
                .sum::<f64>()
                / n,
        });
    }
    Ok(out)
}

/// What the model's tests share with the tests of its users (`stored_model`).
#[cfg(test)]
pub(crate) mod testing {
    use crate::indicators::IndicatorSet;
    use crate::market::file::parse_candles;
    use crate::market::{bundled, Candle};
    use flate2::read::MultiGzDecoder;
    use protocol::messages::MarketSnapshot;

    /// The first `n` bundled BTCUSDT hourly candles.
    pub fn candles(n: usize) -> Vec<Candle> {
        let (name, bytes) = bundled::find("BTCUSDT", "1h").unwrap();
        let mut all =
            parse_candles(MultiGzDecoder::new(bytes), std::path::Path::new(name)).unwrap();
        all.truncate(n);
        all
    }

    /// The snapshot after the last of `all`, its indicators computed over all of them.
    pub fn snapshot(all: &[Candle]) -> MarketSnapshot {
        let mut set = IndicatorSet::new();
        let mut last = None;
        for c in all {
            last = Some(set.update(c));
        }
        let c = all.last().unwrap();
        MarketSnapshot {
            symbol: "BTCUSDT".into(),
            open_time: c.open_time,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            indicators: last.unwrap().indicators,
            portfolio: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use testing::candles;

    const SMALL: Training = Training {
        trees: 8,
        max_depth: 5,
        seed: 7,
    };

    #[test]
    fn trains_predicts_and_round_trips_through_a_file() {
        let ds = Dataset::from_candles(&candles(1500), 12);
        assert!(ds.len() > 1400, "{}", ds.len());
        let model = Ensemble::train(&ds, SMALL).unwrap();
        let p = model.predict(&ds.x[..50]).unwrap();
        assert!(p
            .iter()
            .all(|p| (0.0..=1.0).contains(&p.probability_up) && p.risk >= 0.0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        model.save(&path).unwrap();
        let loaded = Ensemble::load(&path).unwrap();
        assert_eq!(
            loaded.predict(&ds.x[..50]).unwrap(),
            p,
            "the same predictions after a round trip"
        );
        let e = Ensemble::load(&dir.path().join("missing.json"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("missing.json"));
    }

    #[test]
    fn walk_forward_tests_only_on_unseen_later_data() {
        let ds = Dataset::from_candles(&candles(2000), 12);
        let folds = walk_forward(&ds, 3, 12, SMALL).unwrap();
        assert_eq!(folds.len(), 3);
        for (k, f) in folds.iter().enumerate() {
            assert_eq!(
                f.train,
                ds.len() / 4 * (k + 1) - 12,
                "purged of the horizon"
            );
            assert!((0.0..=1.0).contains(&f.accuracy) && f.brier < 1.0 && f.baseline >= 0.5);
        }
    }

    #[test]
    fn a_retraining_swaps_in_a_new_version_and_compares_it_with_the_old_one() {
        let all = candles(2400);
        let retrainer = Retrainer::new(None, SMALL, 12, 1200);
        let snapshot_at = |k: usize| testing::snapshot(&all[..=k]);
        assert!(
            retrainer.forecast(&snapshot_at(1300)).is_none(),
            "no model yet"
        );
        let first = retrainer.retrain(&[&all[..1300]]).unwrap();
        assert_eq!((first.version, first.previous_accuracy), (1, None));
        assert!(first.trained_on > 800 && first.held_out > 200, "{first:?}");
        assert!((0.0..=1.0).contains(&first.accuracy) && first.brier < 1.0);
        assert_eq!(
            retrainer.forecast(&snapshot_at(1300)).is_some(),
            first.in_use,
            "it forecasts only while it beats the majority direction: {first:?}"
        );
        assert_eq!(first.in_use, first.accuracy > first.baseline);
        // a day later (the learning schedule): version 2, judged beside version 1 on recent data
        let second = retrainer.retrain(&[&all[..2400]]).unwrap();
        assert_eq!(second.version, 2);
        assert!(second.previous_accuracy.is_some());
        assert_eq!(retrainer.current().unwrap().0, 2);
    }

    #[test]
    fn a_model_that_cannot_beat_the_majority_direction_forecasts_nothing() {
        // a market that swings, then only rises: on the held-out last fifth always guessing "up"
        // scores 100%, which no model beats
        let rising: Vec<Candle> = (0..1500)
            .map(|k| {
                let swing = if k < 1000 {
                    0.05 * (f64::from(k) / 20.0).sin()
                } else {
                    0.0
                };
                let close = 100.0 * 1.001_f64.powi(k) * (1.0 + swing);
                Candle {
                    open_time: i64::from(k) * 3_600_000,
                    open: close / 1.001,
                    high: close * 1.0005,
                    low: close / 1.0015,
                    close,
                    volume: 10.0 + f64::from(k % 7),
                }
            })
            .collect();
        let retrainer = Retrainer::new(None, SMALL, 12, 1500);
        let report = retrainer.retrain(&[&rising]).unwrap();
        assert_eq!(report.baseline, 1.0);
        assert!(!report.in_use, "{report:?}");
        let mut set = IndicatorSet::new();
        let last = rising.iter().map(|c| set.update(c)).last().unwrap();
        let c = rising.last().unwrap();
        let snapshot = MarketSnapshot {
            symbol: "BTCUSDT".into(),
            open_time: c.open_time,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            indicators: last.indicators,
            portfolio: Default::default(),
        };
        assert!(retrainer.forecast(&snapshot).is_none());
        assert!(
            retrainer.current().is_some(),
            "the model is kept (and stored), not used"
        );
    }

    #[test]
    fn too_little_data_is_named() {
        let ds = Dataset::from_candles(&candles(100), 12);
        assert!(matches!(
            Ensemble::train(&ds, SMALL),
            Err(MlError::TooFew(..))
        ));
    }
}
