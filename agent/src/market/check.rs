//! The sanity rules every candle source applies. A file stops at the first bad row (with the file,
//! line and field); a live stream skips the candle and counts it, so trading goes on.

use super::Candle;

/// What is wrong with a candle, naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CandleProblem {
    #[error("field {field}: {value} is not a finite number")]
    /// A price or the volume is NaN or infinite.
    NotFinite {
        /// `open`, `high`, `low`, `close` or `volume`.
        field: &'static str,
        /// The value read.
        value: f64,
    },
    #[error("field {field}: price {value} must be greater than zero")]
    /// A price is zero or negative.
    NonPositivePrice {
        /// `open`, `high`, `low` or `close`.
        field: &'static str,
        /// The value read.
        value: f64,
    },
    #[error("field {field}: price {value} is outside [{MIN_PRICE:e}, {MAX_PRICE:e}], the range the exchange's exact decimal arithmetic is kept within")]
    /// A price is outside `MIN_PRICE..=MAX_PRICE`.
    PriceOutOfRange {
        /// `open`, `high`, `low` or `close`.
        field: &'static str,
        /// The value read.
        value: f64,
    },
    #[error("field volume: {value} must not be negative")]
    /// The volume is negative.
    NegativeVolume {
        /// The volume read.
        value: f64,
    },
    #[error("field high: {high} is below {other_field} {other}")]
    /// The high is below the open, the close or the low.
    HighTooLow {
        /// The candle's high.
        high: f64,
        /// `open`, `close` or `low`: the first one above the high.
        other_field: &'static str,
        /// That field's value.
        other: f64,
    },
    #[error("field low: {low} is above {other_field} {other}")]
    /// The low is above the open or the close.
    LowTooHigh {
        /// The candle's low.
        low: f64,
        /// `open` or `close`: the first one below the low.
        other_field: &'static str,
        /// That field's value.
        other: f64,
    },
    #[error("field open_time: duplicate candle at {open_time}")]
    /// The candle opens at the same time as the previous one.
    Duplicate {
        /// The repeated open time, ms since the epoch.
        open_time: i64,
    },
    #[error(
        "field open_time: {open_time} goes back in time (previous candle opened at {previous})"
    )]
    /// The candle opens before the previous one.
    NotMonotonic {
        /// The candle's open time, ms since the epoch.
        open_time: i64,
        /// The previous candle's open time, ms since the epoch.
        previous: i64,
    },
}

/// The highest price a candle may carry: far above any traded asset, and low enough that capital
/// (≤ 1e12 by the CRD) over price and quantity times price stay inside `rust_decimal`'s range
/// (about 7.9e28) instead of overflowing.
pub const MAX_PRICE: f64 = 1e15;
/// The lowest price a candle may carry (below it quantities would leave the decimal range).
pub const MIN_PRICE: f64 = 1e-12;

/// Checks candles one by one, remembering the previous open time.
#[derive(Debug, Default, Clone)]
pub struct CandleChecker {
    previous: Option<i64>,
}

impl CandleChecker {
    /// A checker that has seen no candle, so the first one has no ordering rule to meet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `candle` and, when it is good, accepts it as the latest.
    pub fn check(&mut self, candle: &Candle) -> Result<(), CandleProblem> {
        check_values(candle)?;
        if let Some(previous) = self.previous {
            if candle.open_time == previous {
                return Err(CandleProblem::Duplicate {
                    open_time: candle.open_time,
                });
            }
            if candle.open_time < previous {
                return Err(CandleProblem::NotMonotonic {
                    open_time: candle.open_time,
                    previous,
                });
            }
        }
        self.previous = Some(candle.open_time);
        Ok(())
    }
}

fn check_values(c: &Candle) -> Result<(), CandleProblem> {
    for (field, value) in [
        ("open", c.open),
        ("high", c.high),
        ("low", c.low),
        ("close", c.close),
        ("volume", c.volume),
    ] {
        if !value.is_finite() {
            return Err(CandleProblem::NotFinite { field, value });
        }
        if field != "volume" && value <= 0.0 {
            return Err(CandleProblem::NonPositivePrice { field, value });
        }
        if field != "volume" && !(MIN_PRICE..=MAX_PRICE).contains(&value) {
            return Err(CandleProblem::PriceOutOfRange { field, value });
        }
    }
    if c.volume < 0.0 {
        return Err(CandleProblem::NegativeVolume { value: c.volume });
    }
    for (other_field, other) in [("open", c.open), ("close", c.close), ("low", c.low)] {
        if c.high < other {
            return Err(CandleProblem::HighTooLow {
                high: c.high,
                other_field,
                other,
            });
        }
    }
    for (other_field, other) in [("open", c.open), ("close", c.close)] {
        if c.low > other {
            return Err(CandleProblem::LowTooHigh {
                low: c.low,
                other_field,
                other,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(t: i64, o: f64, h: f64, l: f64, c: f64, v: f64) -> Candle {
        Candle {
            open_time: t,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
        }
    }

    #[test]
    fn accepts_a_sound_series_including_flat_zero_volume_candles() {
        let mut checker = CandleChecker::new();
        checker
            .check(&candle(0, 10.0, 11.0, 9.0, 10.5, 3.0))
            .unwrap();
        checker
            .check(&candle(60_000, 10.5, 10.5, 10.5, 10.5, 0.0))
            .unwrap();
        // a gap (exchange maintenance) is fine
        checker
            .check(&candle(600_000, 10.5, 12.0, 10.0, 11.0, 1.0))
            .unwrap();
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (candle(0, f64::NAN, 1.0, 1.0, 1.0, 1.0), "field open"),
            (candle(0, 1.0, 1.0, 1.0, -1.0, 1.0), "field close"),
            (candle(0, 1.0, 1.0, 1.0, 1.0, -2.0), "field volume"),
            (candle(0, 1.0, 0.5, 0.5, 1.0, 1.0), "field high"),
            (candle(0, 1.0, 2.0, 1.5, 2.0, 1.0), "field low"),
            (candle(0, 1.0, f64::INFINITY, 1.0, 1.0, 1.0), "field high"),
            // past the decimal range the exchange computes in: refused, not silently zero
            (candle(0, 1.0, 8e28, 1.0, 1.0, 1.0), "field high"),
            (candle(0, 1e-13, 1.0, 1e-13, 1.0, 1.0), "field open"),
        ];
        for (bad, field) in cases {
            let error = CandleChecker::new().check(&bad).unwrap_err().to_string();
            assert!(
                error.starts_with(field),
                "{error:?} should start with {field:?}"
            );
        }
    }

    #[test]
    fn refuses_duplicates_and_time_going_backwards_and_keeps_the_last_good_time() {
        let mut checker = CandleChecker::new();
        let good = candle(120_000, 1.0, 1.0, 1.0, 1.0, 1.0);
        checker.check(&good).unwrap();
        assert_eq!(
            checker.check(&good),
            Err(CandleProblem::Duplicate { open_time: 120_000 })
        );
        assert_eq!(
            checker.check(&candle(60_000, 1.0, 1.0, 1.0, 1.0, 1.0)),
            Err(CandleProblem::NotMonotonic {
                open_time: 60_000,
                previous: 120_000
            })
        );
        // a refused candle does not move the clock
        checker
            .check(&candle(180_000, 1.0, 1.0, 1.0, 1.0, 1.0))
            .unwrap();
    }
}
