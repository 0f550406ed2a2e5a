//! The fundamental analyst: scores news sentiment per symbol with a finance lexicon.
//!
//! Headlines come from RSS/Atom feeds (the TradingAssistant's `params.feeds`), fetched by the
//! agent's news poller into a shared [`NewsBook`]. A replay has no live news: given a dated headline
//! file (`backtest --news FILE`, CSV `time,headline`, [`DatedHeadlines`]) the analyst reads the
//! headlines of the 24 hours up to the candle's open (never one published later); without one it
//! says so and abstains (HOLD at zero confidence: it counts towards quorum, never towards a side).

use super::{Analyst, Judgement};
use protocol::messages::RoundRequest;
use protocol::{Action, Role};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Words that move crypto prices, with their polarity.
const LEXICON: &[(&str, f64)] = &[
    ("surge", 1.0),
    ("surges", 1.0),
    ("rally", 1.0),
    ("rallies", 1.0),
    ("soar", 1.0),
    ("soars", 1.0),
    ("gain", 0.6),
    ("gains", 0.6),
    ("rise", 0.6),
    ("rises", 0.6),
    ("bull", 0.8),
    ("bullish", 0.8),
    ("record", 0.6),
    ("high", 0.3),
    ("approval", 0.8),
    ("approves", 0.8),
    ("approved", 0.8),
    ("adoption", 0.7),
    ("partnership", 0.5),
    ("upgrade", 0.5),
    ("inflows", 0.7),
    ("etf", 0.3),
    ("recover", 0.5),
    ("recovers", 0.5),
    ("breakout", 0.7),
    ("crash", -1.0),
    ("crashes", -1.0),
    ("plunge", -1.0),
    ("plunges", -1.0),
    ("dump", -0.8),
    ("fall", -0.6),
    ("falls", -0.6),
    ("drop", -0.6),
    ("drops", -0.6),
    ("bear", -0.8),
    ("bearish", -0.8),
    ("hack", -1.0),
    ("hacked", -1.0),
    ("exploit", -0.9),
    ("ban", -0.9),
    ("bans", -0.9),
    ("lawsuit", -0.7),
    ("sues", -0.7),
    ("fraud", -1.0),
    ("outflows", -0.7),
    ("liquidation", -0.6),
    ("liquidations", -0.6),
    ("selloff", -0.8),
    ("low", -0.3),
    ("collapse", -1.0),
    ("bankruptcy", -1.0),
    ("investigation", -0.6),
    ("fine", -0.4),
];

/// The sentiment of one text in [-1, 1]: the mean polarity of its lexicon words (0 when none).
pub fn sentiment(text: &str) -> f64 {
    let mut sum = 0.0;
    let mut hits = 0usize;
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let lower = word.to_ascii_lowercase();
        if let Some((_, polarity)) = LEXICON.iter().find(|(w, _)| *w == lower) {
            sum += polarity;
            hits += 1;
        }
    }
    if hits == 0 {
        0.0
    } else {
        (sum / hits as f64).clamp(-1.0, 1.0)
    }
}

/// Names by which a symbol's base asset appears in headlines.
pub fn aliases(symbol: &str) -> Vec<String> {
    let base = symbol
        .strip_suffix("USDT")
        .or_else(|| symbol.strip_suffix("USDC"))
        .or_else(|| symbol.strip_suffix("BUSD"))
        .unwrap_or(symbol)
        .to_ascii_lowercase();
    let mut names = vec![base.clone()];
    match base.as_str() {
        "btc" => names.push("bitcoin".into()),
        "eth" => names.extend(["ether".into(), "ethereum".into()]),
        "sol" => names.push("solana".into()),
        _ => {}
    }
    names
}

/// Recent headlines per symbol, shared between the news poller and the analyst.
#[derive(Debug, Clone, Default)]
pub struct NewsBook {
    inner: Arc<RwLock<HashMap<String, Vec<String>>>>,
}

impl NewsBook {
    /// Files each headline under every symbol it mentions (keeping the latest `keep` per symbol).
    pub fn add(&self, symbols: &[String], headlines: &[String], keep: usize) {
        let mut book = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for symbol in symbols {
            let names = aliases(symbol);
            let entry = book.entry(symbol.clone()).or_default();
            for headline in headlines {
                let lower = headline.to_ascii_lowercase();
                let mentions = lower
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| names.iter().any(|n| n == w));
                if mentions && !entry.contains(headline) {
                    entry.push(headline.clone());
                }
            }
            let excess = entry.len().saturating_sub(keep);
            entry.drain(..excess);
        }
    }

    /// The headlines filed under `symbol`, oldest first; empty when there are none.
    pub fn headlines(&self, symbol: &str) -> Vec<String> {
        let book = self.inner.read().unwrap_or_else(|e| e.into_inner());
        book.get(symbol).cloned().unwrap_or_default()
    }
}

/// How far back a replay's analyst reads dated headlines.
pub const DATED_WINDOW_MS: i64 = 24 * 3_600_000;

/// Headlines with the time they were published (ms since the epoch), ascending: a replay's news.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatedHeadlines {
    items: Vec<(i64, String)>,
}

/// Why a headline file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadlineFileError {
    /// The file could not be opened.
    #[error("{path}: {error}")]
    Io {
        /// The file, as given.
        path: String,
        /// Why opening it failed.
        error: std::io::Error,
    },
    /// A record is malformed: not CSV, not two fields, or a time that does not parse.
    #[error("{path} line {line}: {reason}")]
    Line {
        /// The file, as given.
        path: String,
        /// The record's line, counting from 1 with the header as line 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl DatedHeadlines {
    /// From `(time ms, headline)` pairs in any order.
    pub fn new(mut items: Vec<(i64, String)>) -> Self {
        items.sort_by_key(|(t, _)| *t);
        Self { items }
    }

    /// Reads a CSV file with a `time,headline` header; `time` is milliseconds since the epoch or an
    /// RFC 3339 instant (`2021-03-01T12:00:00Z`).
    pub fn load(path: &std::path::Path) -> Result<Self, HeadlineFileError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|error| HeadlineFileError::Io {
            path: name.clone(),
            error,
        })?;
        let mut items = Vec::new();
        for (i, record) in csv::Reader::from_reader(file).records().enumerate() {
            let at_fault = |reason: String| HeadlineFileError::Line {
                path: name.clone(),
                line: i + 2,
                reason,
            };
            let record = record.map_err(|e| at_fault(e.to_string()))?;
            let (Some(time), Some(headline)) = (record.get(0), record.get(1)) else {
                return Err(at_fault("expected two fields, time and headline".into()));
            };
            let time = time.trim();
            let at = time
                .parse::<i64>()
                .ok()
                .or_else(|| {
                    chrono::DateTime::parse_from_rfc3339(time)
                        .ok()
                        .map(|t| t.timestamp_millis())
                })
                .ok_or_else(|| {
                    at_fault(format!(
                        "time {time:?} is neither milliseconds since the epoch nor RFC 3339"
                    ))
                })?;
            items.push((at, headline.to_string()));
        }
        Ok(Self::new(items))
    }

    /// The headlines mentioning `symbol` published in `(until − DATED_WINDOW_MS, until]`.
    pub fn about(&self, symbol: &str, until: i64) -> Vec<String> {
        let names = aliases(symbol);
        let from = self
            .items
            .partition_point(|(t, _)| *t <= until - DATED_WINDOW_MS);
        let to = self.items.partition_point(|(t, _)| *t <= until);
        self.items[from..to]
            .iter()
            .filter(|(_, h)| {
                h.to_ascii_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| names.iter().any(|n| n == w))
            })
            .map(|(_, h)| h.clone())
            .collect()
    }
}

/// Votes the mean lexicon sentiment of the headlines about the snapshot's symbol: BUY at +0.2 or
/// more, SELL at −0.2 or less, else HOLD at confidence 0.3; abstains when there are none.
#[derive(Debug, Clone, Default)]
pub struct FundamentalAnalyst {
    /// The live headlines the news poller files; read only when `dated` is `None`.
    pub news: NewsBook,
    /// A replay's dated headlines; when given, they replace the live [`NewsBook`].
    pub dated: Option<Arc<DatedHeadlines>>,
}

impl Analyst for FundamentalAnalyst {
    fn role(&self) -> Role {
        Role::FundamentalAnalyst
    }

    fn analyze(&self, request: &RoundRequest) -> Judgement {
        let symbol = &request.snapshot.symbol;
        let headlines = match &self.dated {
            Some(dated) => dated.about(symbol, request.snapshot.open_time),
            None => self.news.headlines(symbol),
        };
        if headlines.is_empty() {
            return Judgement::new(
                Action::Hold,
                0.0,
                format!(
                    "no news about {} to judge; abstaining",
                    request.snapshot.symbol
                ),
            );
        }
        let scores: Vec<f64> = headlines.iter().map(|h| sentiment(h)).collect();
        let score = scores.iter().sum::<f64>() / scores.len() as f64;
        let opinionated = scores.iter().filter(|s| **s != 0.0).count();
        let coverage = opinionated as f64 / scores.len() as f64;
        let (action, confidence) = if score >= 0.2 {
            (Action::Buy, 0.3 + 0.5 * score * coverage)
        } else if score <= -0.2 {
            (Action::Sell, 0.3 - 0.5 * score * coverage)
        } else {
            (Action::Hold, 0.3)
        };
        Judgement::new(
            action,
            confidence,
            format!(
                "sentiment {score:+.2} over {} headlines ({opinionated} opinionated)",
                headlines.len()
            ),
        )
        .with("sentiment", score)
        .with("headlines", headlines.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::testing::request;

    #[test]
    fn lexicon_scores_polarity() {
        assert!(sentiment("Bitcoin surges to record high on ETF approval") > 0.5);
        assert!(sentiment("Exchange hacked; ether plunges") < -0.5);
        assert_eq!(sentiment("Bitcoin developers meet in Lisbon"), 0.0);
    }

    #[test]
    fn headlines_are_filed_under_the_symbols_they_mention() {
        let book = NewsBook::default();
        let symbols = vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()];
        book.add(
            &symbols,
            &[
                "Bitcoin rallies".into(),
                "Ethereum upgrade ships".into(),
                "Gold flat".into(),
            ],
            10,
        );
        assert_eq!(book.headlines("BTCUSDT"), vec!["Bitcoin rallies"]);
        assert_eq!(book.headlines("ETHUSDT"), vec!["Ethereum upgrade ships"]);
    }

    #[test]
    fn abstains_without_news_and_follows_sentiment_with_it() {
        let analyst = FundamentalAnalyst::default();
        let r = request(100.0, Default::default(), Default::default());
        let quiet = analyst.analyze(&r);
        assert_eq!((quiet.action, quiet.confidence), (Action::Hold, 0.0));
        analyst.news.add(
            &["BTCUSDT".into()],
            &["Bitcoin crashes after exchange hack".into()],
            10,
        );
        assert_eq!(analyst.analyze(&r).action, Action::Sell);
    }

    #[test]
    fn dated_headlines_are_read_up_to_the_candle_never_after() {
        let hour = 3_600_000;
        let news = DatedHeadlines::new(vec![
            (10 * hour, "Bitcoin rally lifts the market".into()),
            (2 * hour, "Bitcoin crash fears".into()),
            (13 * hour, "Bitcoin crash".into()),
            (11 * hour, "Ethereum upgrade approved".into()),
        ]);
        assert_eq!(
            news.about("BTCUSDT", 12 * hour),
            ["Bitcoin crash fears", "Bitcoin rally lifts the market"]
        );
        // a day later the old one has aged out; the one after the candle is never seen before it
        assert_eq!(
            news.about("BTCUSDT", 27 * hour),
            ["Bitcoin rally lifts the market", "Bitcoin crash"]
        );
        assert_eq!(news.about("BTCUSDT", 35 * hour), ["Bitcoin crash"]);
        let analyst = FundamentalAnalyst {
            dated: Some(Arc::new(news)),
            ..Default::default()
        };
        let mut r = crate::roles::testing::request(100.0, Default::default(), Default::default());
        r.snapshot.open_time = 10 * hour;
        assert_eq!(analyst.analyze(&r).evidence["headlines"], 2.0);
    }

    #[test]
    fn a_headline_file_reads_both_time_formats_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("news.csv");
        std::fs::write(
            &good,
            "time,headline\n1614600000000,Bitcoin surges\n2021-03-01T12:00:00Z,\"Ether, again\"\n",
        )
        .unwrap();
        let news = DatedHeadlines::load(&good).unwrap();
        assert_eq!(
            news.about("ETHUSDT", 1_614_600_000_000 + 3_600_000),
            ["Ether, again"]
        );
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "time,headline\nyesterday,Bitcoin surges\n").unwrap();
        let error = DatedHeadlines::load(&bad).unwrap_err().to_string();
        assert!(
            error.contains("bad.csv line 2") && error.contains("yesterday"),
            "{error}"
        );
    }
}
