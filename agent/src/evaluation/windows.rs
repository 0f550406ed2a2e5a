//! Splitting a candle series into the walk-forward windows `evaluate` scores.
//!
//! Windows are calendar-aligned (`year`, `half`, `quarter`) or consecutive runs of `N` days from the
//! first scorable instant. A window is scored only from `warm_up_ms` after the data's first candle
//! (so the team never trades on indicators that have seen nothing), and a window shorter than
//! [`MIN_WINDOW_DAYS`] after that cut is dropped.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use std::str::FromStr;

const DAY_MS: i64 = 86_400_000;

/// Windows shorter than this (in days) are not scored: too few candles for a Sharpe ratio.
pub const MIN_WINDOW_DAYS: i64 = 28;

/// How long each scored window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowLength {
    /// Calendar years, from 1 January (UTC); `year`.
    Year,
    /// Calendar half-years, from 1 January and 1 July; `half`.
    Half,
    /// Calendar quarters; `quarter`.
    Quarter,
    /// Consecutive runs of this many days (at least [`MIN_WINDOW_DAYS`]) from the first scorable
    /// instant; `<N>d`.
    Days(u32),
}

impl FromStr for WindowLength {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "year" => Ok(Self::Year),
            "half" => Ok(Self::Half),
            "quarter" => Ok(Self::Quarter),
            other => other
                .strip_suffix('d')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| i64::from(*n) >= MIN_WINDOW_DAYS)
                .map(Self::Days)
                .ok_or_else(|| {
                    format!(
                        "{other:?} is not year, half, quarter or <N>d with N ≥ {MIN_WINDOW_DAYS}"
                    )
                }),
        }
    }
}

impl std::fmt::Display for WindowLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Year => f.write_str("year"),
            Self::Half => f.write_str("half"),
            Self::Quarter => f.write_str("quarter"),
            Self::Days(n) => write!(f, "{n}d"),
        }
    }
}

/// One scored window: candles opening in `[from, to)` (ms) are traded and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First open time scored, ms since the epoch (inclusive).
    pub from: i64,
    /// End of the window, ms since the epoch (exclusive).
    pub to: i64,
}

fn month_start(year: i32, month: u32) -> i64 {
    Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(year, month, 1)
            .expect("a valid month")
            .and_hms_opt(0, 0, 0)
            .expect("midnight"),
    )
    .timestamp_millis()
}

/// The calendar boundary at or after `t` for a length of `months` months, and the next one.
fn calendar_boundaries(first: i64, last: i64, months: u32) -> Vec<i64> {
    let start = DateTime::<Utc>::from_timestamp_millis(first).expect("a valid time");
    let mut year = start.year();
    let mut month = ((start.month() - 1) / months) * months + 1;
    let mut edges = Vec::new();
    loop {
        let edge = month_start(year, month);
        edges.push(edge);
        if edge > last {
            return edges;
        }
        month += months;
        if month > 12 {
            month -= 12;
            year += 1;
        }
    }
}

/// The windows over `[first, last]` (the open times of the data's first and last candle, already
/// limited to `--from/--to`), scored from `scorable_from` on.
pub fn split(first: i64, last: i64, scorable_from: i64, length: WindowLength) -> Vec<Span> {
    let edges: Vec<i64> = match length {
        WindowLength::Year => calendar_boundaries(first, last, 12),
        WindowLength::Half => calendar_boundaries(first, last, 6),
        WindowLength::Quarter => calendar_boundaries(first, last, 3),
        WindowLength::Days(n) => {
            let step = i64::from(n) * DAY_MS;
            let start = scorable_from.max(first);
            (0..)
                .map(|k| start + k * step)
                .take_while(|edge| *edge <= last + step)
                .collect()
        }
    };
    edges
        .windows(2)
        .filter_map(|w| {
            let from = w[0].max(scorable_from).max(first);
            let to = w[1].min(last + 1);
            (to - from >= MIN_WINDOW_DAYS * DAY_MS).then_some(Span { from, to })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> i64 {
        month_start(y, m) + i64::from(d - 1) * DAY_MS
    }

    #[test]
    fn years_are_calendar_years_cut_by_warm_up_and_the_data() {
        let first = day(2017, 8, 17);
        let last = day(2021, 6, 10);
        let spans = split(first, last, first + 90 * DAY_MS, WindowLength::Year);
        assert_eq!(spans.len(), 5);
        assert_eq!(spans[0].from, first + 90 * DAY_MS);
        assert_eq!(spans[0].to, day(2018, 1, 1));
        assert_eq!(
            (spans[1].from, spans[1].to),
            (day(2018, 1, 1), day(2019, 1, 1))
        );
        assert_eq!(spans[4].to, last + 1);
    }

    #[test]
    fn halves_quarters_and_days() {
        let first = day(2020, 1, 1);
        let last = day(2020, 12, 31);
        assert_eq!(split(first, last, first, WindowLength::Half).len(), 2);
        assert_eq!(split(first, last, first, WindowLength::Quarter).len(), 4);
        let spans = split(first, last, first, WindowLength::Days(90));
        assert_eq!(spans.len(), 4); // the fifth would be 1 day long
        assert_eq!(spans[1].from - spans[0].from, 90 * DAY_MS);
    }

    #[test]
    fn lengths_parse_and_bad_ones_are_named() {
        assert_eq!("year".parse(), Ok(WindowLength::Year));
        assert_eq!("60d".parse(), Ok(WindowLength::Days(60)));
        assert!("5d".parse::<WindowLength>().unwrap_err().contains("\"5d\""));
        assert!("weekly".parse::<WindowLength>().is_err());
    }
}
