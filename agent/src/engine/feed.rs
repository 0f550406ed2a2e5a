//! The candles a session walks through (docs/architecture.md, "The engine"): the loaded ones,
//! grouped by open time across symbols, then, live, each candle as its stream delivers it.

use super::Series;
use crate::market::stream::SymbolCandle;
use crate::market::Candle;

/// One time step: an open time and the candles (by series index) that opened then; `live` when
/// they came from the live feed rather than the loaded history.
pub struct Step {
    /// The open time, ms.
    pub t: i64,
    /// The candles that opened at `t`, with the index of their series.
    pub candles: Vec<(usize, Candle)>,
    /// Whether they came from the live feed.
    pub live: bool,
}

/// Time steps to process: the loaded candles (grouped by open time), then live candles one by one.
pub struct Feed<'a> {
    series: &'a [Series],
    timeline: &'a [i64],
    next: usize,
    cursors: Vec<usize>,
    live: Option<tokio::sync::mpsc::Receiver<SymbolCandle>>,
}

impl<'a> Feed<'a> {
    /// The steps of `series` along `timeline` (see [`timeline`]), then of `live` when given.
    pub fn new(
        series: &'a [Series],
        timeline: &'a [i64],
        live: Option<tokio::sync::mpsc::Receiver<SymbolCandle>>,
    ) -> Self {
        Self {
            series,
            timeline,
            next: 0,
            cursors: vec![0; series.len()],
            live,
        }
    }

    /// Whether live candles follow the loaded ones.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The next open time and the candles (by series index) that opened then.
    pub async fn next(&mut self) -> Option<Step> {
        if let Some(&t) = self.timeline.get(self.next) {
            self.next += 1;
            return Some(self.loaded(t));
        }
        let live = self.live.as_mut()?;
        loop {
            let sc = live.recv().await?;
            if let Some(s) = self.series.iter().position(|s| s.symbol == sc.symbol) {
                return Some(Step {
                    t: sc.candle.open_time,
                    candles: vec![(s, sc.candle)],
                    live: true,
                });
            }
        }
    }

    /// The loaded candles that opened at `t`.
    fn loaded(&mut self, t: i64) -> Step {
        let mut candles = Vec::with_capacity(self.series.len());
        for (s, series) in self.series.iter().enumerate() {
            if let Some(c) = series
                .candles
                .get(self.cursors[s])
                .filter(|c| c.open_time == t)
            {
                self.cursors[s] += 1;
                candles.push((s, *c));
            }
        }
        Step {
            t,
            candles,
            live: false,
        }
    }
}

/// Every open time of every series, ascending, once.
pub fn timeline(series: &[Series]) -> Vec<i64> {
    let mut times: Vec<i64> = series
        .iter()
        .flat_map(|s| s.candles.iter().map(|c| c.open_time))
        .collect();
    times.sort_unstable();
    times.dedup();
    times
}

/// A live candle is traded only while it is fresh: if it closed at most one interval before now.
/// An older one (a feed that lagged, a reconnect that caught up, a stalled cycle) is decided on
/// but never traded: its order would act on a market that has moved since (docs/architecture.md,
/// "Live safety").
pub fn fresh(close_time: i64, interval_ms: i64, now_ms: i64) -> bool {
    now_ms - close_time <= interval_ms
}

/// The wall clock, in ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
