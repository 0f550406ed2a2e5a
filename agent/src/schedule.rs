//! The Strategy's cron schedules (`spec.schedule.analysis`, `spec.schedule.learning`), asked
//! "did you fire during this candle?" as time advances. The next fire time is cached, so a replay pays
//! for a cron search only when the schedule actually fires.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;

/// A cron schedule stepped forward through time.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    next: Option<i64>,
}

/// A schedule that is not a cron expression, naming the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field} {pattern:?} is not a cron expression: {reason}")]
pub struct ScheduleError {
    /// The Strategy field it came from (`spec.schedule.analysis`).
    pub field: &'static str,
    /// The expression as written.
    pub pattern: String,
    /// croner's complaint.
    pub reason: String,
}

impl Schedule {
    /// Parses a 5-field cron expression (UTC); `field` names it in errors.
    pub fn parse(field: &'static str, pattern: &str) -> Result<Self, ScheduleError> {
        let cron = pattern.parse::<Cron>().map_err(|e| ScheduleError {
            field,
            pattern: pattern.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { cron, next: None })
    }

    /// Whether the schedule fires in `(from, to]` (ms since the epoch). Calls must move forward.
    pub fn fires_within(&mut self, from: i64, to: i64) -> bool {
        let next = match self.next {
            Some(next) if next > from => next,
            _ => match self.next_after(from) {
                Some(next) => next,
                None => return false,
            },
        };
        self.next = Some(next);
        if next <= to {
            self.next = self.next_after(to);
            true
        } else {
            false
        }
    }

    fn next_after(&self, ms: i64) -> Option<i64> {
        let at: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single()?;
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn hourly_fires_once_per_hourly_candle_and_daily_once_a_day() {
        let mut hourly = Schedule::parse("analysis", "0 * * * *").unwrap();
        let mut daily = Schedule::parse("learning", "30 0 * * *").unwrap();
        let (mut h, mut d) = (0, 0);
        for i in 0..48 {
            let (open, close) = (i * HOUR, (i + 1) * HOUR);
            h += u32::from(hourly.fires_within(open, close));
            d += u32::from(daily.fires_within(open, close));
        }
        assert_eq!((h, d), (48, 2));
    }

    #[test]
    fn minute_candles_fire_on_the_hour_only() {
        let mut hourly = Schedule::parse("analysis", "0 * * * *").unwrap();
        let fired: Vec<i64> = (0..180)
            .filter(|m| hourly.fires_within(m * 60_000, (m + 1) * 60_000))
            .collect();
        assert_eq!(fired, vec![59, 119, 179]); // the candles closing at 01:00, 02:00, 03:00
    }

    #[test]
    fn a_bad_pattern_names_the_field() {
        let e = Schedule::parse("spec.schedule.analysis", "every hour").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("spec.schedule.analysis \"every hour\""),
            "{e}"
        );
    }
}
