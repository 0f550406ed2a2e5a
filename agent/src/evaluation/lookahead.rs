//! Look-ahead and warm-up checks: does anything the team decides on depend on candles it has not
//! seen yet, or (after its warm-up) on where the data happened to start?
//!
//! - [`indicator_lookahead`]: every indicator at a sample of candles, computed over the whole
//!   series and over the series cut right after that candle, must be identical.
//! - [`decision_lookahead`]: the team's decision at a sample of candles, replayed over the whole
//!   series and over the series cut right after that candle, must be identical, every opinion and
//!   figure of it.
//! - [`warm_up_dependence`]: indicators computed from the first candle and from a later start must
//!   agree within a relative tolerance once the later start has warmed up.
//!
//! Each names what failed: the indicator, or the role and the figure of its opinion.

use crate::engine::{EscalationsTimeOut, ReplayTeam, Series, Session};
use crate::indicators::IndicatorSet;
use crate::market::Candle;
use protocol::messages::{Decision, Indicators};

/// What changed when the data was cut, or with a later start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Leak {
    #[error("indicator {indicator} at candle {open_time} is {full:?} with later candles and {cut:?} without: it looks ahead")]
    /// An indicator changed when the candles after it were removed.
    Indicator {
        /// The indicator's JSON name (`rsi_14`).
        indicator: String,
        /// Open time of the candle it was computed at, ms since the epoch.
        open_time: i64,
        /// Its value over the whole series (None while warming up).
        full: Option<f64>,
        /// Its value over the series cut after that candle.
        cut: Option<f64>,
    },
    #[error("decision {decision}: {what} differs with later candles ({full}) and without ({cut}): it looks ahead")]
    /// A decision changed when the candles after it were removed (or a replay failed).
    Decision {
        /// The decision's id, or `the full replay` when that failed.
        decision: String,
        /// What differs: an opinion's figure, the decision itself, or the replay's error.
        what: String,
        /// How it reads with later candles (action and confidence; empty on an error).
        full: String,
        /// How it reads without them.
        cut: String,
    },
    #[error("indicator {indicator} at candle {open_time} is {a} from the first candle and {b} from a start {offset} candles later: it depends on where the data started")]
    /// An indicator still depends on where the data started after the warm-up.
    WarmUp {
        /// The indicator's JSON name.
        indicator: String,
        /// Open time of the candle compared, ms since the epoch.
        open_time: i64,
        /// How many candles later the second computation started.
        offset: usize,
        /// Its value computed from the first candle.
        a: f64,
        /// Its value computed from `offset` candles later.
        b: f64,
    },
}

/// `count` indices spread evenly over `[from, len)`.
pub fn sample(from: usize, len: usize, count: usize) -> Vec<usize> {
    if len <= from || count == 0 {
        return Vec::new();
    }
    let span = len - from;
    let mut picks: Vec<usize> = (0..count.min(span))
        .map(|k| from + k * span / count.min(span))
        .collect();
    picks.dedup();
    picks
}

/// The indicators by name, as numbers (absent while warming up).
fn named(i: &Indicators) -> Vec<(String, Option<f64>)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(i) else {
        return Vec::new();
    };
    let mut all: Vec<(String, Option<f64>)> =
        map.into_iter().map(|(k, v)| (k, v.as_f64())).collect();
    // absent keys are warming up: list every field so that "absent" and "present" compare
    for key in serde_json::to_value(Indicators::default())
        .ok()
        .and_then(|v| v.as_object().cloned())
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !all.iter().any(|(k, _)| *k == key) {
            all.push((key, None));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn indicators_over(candles: &[Candle]) -> Vec<Indicators> {
    let mut set = IndicatorSet::new();
    candles.iter().map(|c| set.update(c).indicators).collect()
}

/// Checks that no indicator at the sampled candles changes when the data is cut right after them.
pub fn indicator_lookahead(candles: &[Candle], samples: &[usize]) -> Result<(), Leak> {
    lookahead_of(candles, samples, indicators_over)
}

/// [`indicator_lookahead`] for any way of computing indicators over a series.
fn lookahead_of(
    candles: &[Candle],
    samples: &[usize],
    compute: impl Fn(&[Candle]) -> Vec<Indicators>,
) -> Result<(), Leak> {
    let full = compute(candles);
    for &i in samples {
        let cut = compute(&candles[..=i]);
        let (a, b) = (named(&full[i]), named(&cut[i]));
        for ((name, x), (_, y)) in a.into_iter().zip(b) {
            if x.map(f64::to_bits) != y.map(f64::to_bits) {
                return Err(Leak::Indicator {
                    indicator: name,
                    open_time: candles[i].open_time,
                    full: x,
                    cut: y,
                });
            }
        }
    }
    Ok(())
}

/// Indicators whose level is cumulative by definition (OBV sums volume since the first candle);
/// no role reads their level.
pub const CUMULATIVE: [&str; 1] = ["obv"];

/// Differences this small are floating-point rounding (a %K of 1e-14 against 2e-13), not a
/// dependence on the start.
const ABSOLUTE_NOISE: f64 = 1e-9;

/// Checks that indicators started `offset` candles later agree with those started at the first
/// candle, within `tolerance` (relative; or [`ABSOLUTE_NOISE`]), from `warm_up` candles after the later start on.
pub fn warm_up_dependence(
    candles: &[Candle],
    offset: usize,
    warm_up: usize,
    tolerance: f64,
) -> Result<(), Leak> {
    let a = indicators_over(candles);
    let b = indicators_over(&candles[offset.min(candles.len())..]);
    for (j, later) in b.iter().enumerate().skip(warm_up) {
        let i = j + offset;
        for ((name, x), (_, y)) in named(&a[i]).into_iter().zip(named(later)) {
            if CUMULATIVE.contains(&name.as_str()) {
                continue;
            }
            if let (Some(x), Some(y)) = (x, y) {
                // relative, but rounding noise around zero (1e-9 absolute) is no dependence
                let gap = (x - y).abs();
                if gap > ABSOLUTE_NOISE && gap > tolerance * x.abs().max(y.abs()) {
                    return Err(Leak::WarmUp {
                        indicator: name,
                        open_time: candles[i].open_time,
                        offset,
                        a: x,
                        b: y,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Every decision of a replay of `backtest` (its own series and configuration, no store).
async fn decisions(backtest: &Session) -> Result<Vec<Decision>, crate::engine::SessionError> {
    let (team, voters) = backtest.local_team()?;
    let mut made = Vec::new();
    backtest
        .replay(
            None,
            ReplayTeam {
                transport: &team,
                escalations: &EscalationsTimeOut,
                voters,
            },
            None,
            |d| made.push(d.clone()),
            |_, _| {},
        )
        .await?;
    Ok(made)
}

/// The first difference between two decisions, as (what, full, cut).
fn difference(full: &Decision, cut: &Decision) -> Option<(String, String, String)> {
    let headline =
        |d: &Decision| format!("{} {:.6} rounds {}", d.action, d.confidence, d.rounds.len());
    for (a, b) in full.transcript.iter().zip(&cut.transcript) {
        if a != b {
            let figure = a
                .evidence
                .iter()
                .find(|(k, v)| b.evidence.get(*k).map(|w| w.to_bits()) != Some(v.to_bits()))
                .map_or("its action or confidence".to_string(), |(k, _)| {
                    format!("evidence {k}")
                });
            return Some((
                format!(
                    "the {} ({}) opinion in round {}: {figure}",
                    a.role, a.assistant, a.round
                ),
                format!("{} {:.6}", a.action, a.confidence),
                format!("{} {:.6}", b.action, b.confidence),
            ));
        }
    }
    (full != cut).then(|| ("the decision".to_string(), headline(full), headline(cut)))
}

/// Checks that the team's decisions on the sampled candles of `backtest`'s only series are the
/// same when the data ends right after each of them.
/// The cut replays keep the backtest's team, history, news, model and forecaster; a retraining
/// forecaster (`retrainer`) and live venues are not replayed (their state outlives one run).
pub async fn decision_lookahead(backtest: &Session, samples: &[usize]) -> Result<(), Leak> {
    let full = decisions(backtest).await.map_err(|e| Leak::Decision {
        decision: "the full replay".into(),
        what: e.to_string(),
        full: String::new(),
        cut: String::new(),
    })?;
    let series = &backtest.series[0];
    for &i in samples {
        let t = series.candles[i].open_time;
        let Some(expected) = full.iter().find(|d| d.id.contains(&format!("_{t}_"))) else {
            continue;
        };
        let cut = Session {
            team: backtest.team.clone(),
            max_cycles: backtest.max_cycles,
            trade_from: backtest.trade_from,
            shadow_cycles: backtest.shadow_cycles,
            news: backtest.news.clone(),
            llm: backtest.llm.clone(),
            forecaster: backtest.forecaster.clone(),
            ..Session::new(
                backtest.team_config.clone(),
                vec![Series {
                    symbol: series.symbol.clone(),
                    candles: series.candles[..=i].to_vec(),
                }],
                backtest.interval_ms,
            )
        };
        let made = decisions(&cut).await.map_err(|e| Leak::Decision {
            decision: expected.id.to_string(),
            what: e.to_string(),
            full: String::new(),
            cut: String::new(),
        })?;
        let got = made.iter().find(|d| d.id == expected.id);
        match got {
            Some(got) => {
                if let Some((what, a, b)) = difference(expected, got) {
                    return Err(Leak::Decision {
                        decision: expected.id.to_string(),
                        what,
                        full: a,
                        cut: b,
                    });
                }
            }
            None => {
                return Err(Leak::Decision {
                    decision: expected.id.to_string(),
                    what: "whether it is made at all".into(),
                    full: "made".into(),
                    cut: "not made".into(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candles(n: usize) -> Vec<Candle> {
        (0..n)
            .map(|i| {
                let p = 100.0 + (i as f64 * 0.3).sin() * 5.0;
                Candle {
                    open_time: i as i64 * 3_600_000,
                    open: p,
                    high: p + 1.0,
                    low: p - 1.0,
                    close: p,
                    volume: 10.0,
                }
            })
            .collect()
    }

    #[test]
    fn a_leaking_indicator_is_caught_and_named() {
        // an "indicator" that peeks at the last close of whatever data it is given
        let leaky = |cs: &[Candle]| -> Vec<Indicators> {
            let last = cs.last().map(|c| c.close);
            cs.iter()
                .map(|_| Indicators {
                    rsi_14: last,
                    ..Indicators::default()
                })
                .collect()
        };
        let cs = candles(50);
        let leak = lookahead_of(&cs, &[10, 20], leaky).unwrap_err();
        assert!(
            matches!(&leak, Leak::Indicator { indicator, .. } if indicator == "rsi14"),
            "{leak}"
        );
        assert!(leak.to_string().contains("rsi14"));
        // the real set does not leak on the same data
        assert_eq!(indicator_lookahead(&cs, &[10, 20, 49]), Ok(()));
    }

    #[test]
    fn a_start_dependent_indicator_is_caught() {
        // the volatility's exponential average (half-life 168 candles) forgets its start slowest
        let cs = candles(3_000);
        assert_eq!(warm_up_dependence(&cs, 50, 2_600, 1e-4), Ok(()));
        // with no warm-up at all, a fresh start differs (the EMA has not converged)
        assert!(matches!(
            warm_up_dependence(&cs, 50, 0, 1e-9),
            Err(Leak::WarmUp { .. })
        ));
    }

    #[test]
    fn samples_spread_over_the_range() {
        assert_eq!(sample(10, 20, 5), vec![10, 12, 14, 16, 18]);
        assert_eq!(sample(0, 3, 10), vec![0, 1, 2]);
        assert!(sample(5, 5, 3).is_empty());
    }
}
