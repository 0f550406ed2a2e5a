//! The fundamental analyst's news: RSS and Atom feeds (parsed with feed-rs) polled on an interval
//! into the shared [`NewsBook`], where each headline is filed under the symbols it mentions. A feed
//! that fails is logged and retried on the next poll; the others go on.

use crate::roles::fundamental::NewsBook;
use std::time::Duration;

/// Headlines kept per symbol.
pub const KEEP: usize = 50;

/// Why a feed could not be read, naming it.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed {url}: {error}")]
    /// The feed could not be downloaded (network error or a non-success status).
    Fetch {
        /// The feed's URL.
        url: String,
        /// Why.
        error: String,
    },
    #[error("feed {url}: not RSS or Atom: {error}")]
    /// The body is neither RSS nor Atom.
    Parse {
        /// The feed's URL.
        url: String,
        /// The parser's complaint.
        error: String,
    },
}

/// The titles (and summaries) of a feed's entries.
pub fn headlines(body: &[u8], url: &str) -> Result<Vec<String>, FeedError> {
    let feed = feed_rs::parser::parse(body).map_err(|e| FeedError::Parse {
        url: url.to_string(),
        error: e.to_string(),
    })?;
    Ok(feed
        .entries
        .into_iter()
        .filter_map(|e| {
            let title = e.title.map(|t| t.content).unwrap_or_default();
            let summary = e.summary.map(|s| s.content).unwrap_or_default();
            let text = format!("{title} {summary}").trim().to_string();
            (!text.is_empty()).then_some(text)
        })
        .collect())
}

/// Polls feeds into a news book.
#[derive(Clone)]
pub struct NewsPoller {
    client: reqwest::Client,
    /// The feeds' URLs, polled in this order.
    pub feeds: Vec<String>,
    /// The symbols headlines are filed under (`BTCUSDT` matches `btc` and `bitcoin`).
    pub symbols: Vec<String>,
    /// Where headlines go, shared with the fundamental analyst.
    pub book: NewsBook,
}

impl NewsPoller {
    /// A poller of `feeds` into `book`, with a 15 s timeout per request.
    pub fn new(feeds: Vec<String>, symbols: Vec<String>, book: NewsBook) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .user_agent(concat!("ia-agents/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a TLS backend is compiled in"),
            feeds,
            symbols,
            book,
        }
    }

    /// Fetches one feed.
    pub async fn fetch(&self, url: &str) -> Result<Vec<String>, FeedError> {
        let fetch = |error: String| FeedError::Fetch {
            url: url.to_string(),
            error,
        };
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fetch(format!("HTTP {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| fetch(e.to_string()))?;
        headlines(&body, url)
    }

    /// Polls every feed once; returns how many headlines were read and the feeds that failed.
    pub async fn poll_once(&self) -> (usize, Vec<FeedError>) {
        let mut read = 0;
        let mut failed = Vec::new();
        for url in &self.feeds {
            match self.fetch(url).await {
                Ok(headlines) => {
                    read += headlines.len();
                    self.book.add(&self.symbols, &headlines, KEEP);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "news feed failed; retrying on the next poll");
                    failed.push(e);
                }
            }
        }
        (read, failed)
    }

    /// Polls forever, every `every`.
    pub async fn run(self, every: Duration) {
        loop {
            let (read, failed) = self.poll_once().await;
            tracing::info!(read, failed = failed.len(), "polled news feeds");
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
        <item><title>Bitcoin surges to a record high</title><description>ETF inflows</description></item>
        <item><title>Ether falls after exchange hack</title></item>
        </channel></rss>"#;

    #[test]
    fn reads_rss_and_atom_and_names_a_bad_feed() {
        let h = headlines(RSS.as_bytes(), "http://x/rss").unwrap();
        assert_eq!(
            h,
            vec![
                "Bitcoin surges to a record high ETF inflows",
                "Ether falls after exchange hack"
            ]
        );
        let atom = r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>a</title><id>x</id><updated>2026-11-25T00:00:00Z</updated>
            <entry><title>Solana rallies</title><id>1</id><updated>2026-11-25T00:00:00Z</updated></entry></feed>"#;
        assert_eq!(
            headlines(atom.as_bytes(), "http://x/atom").unwrap(),
            vec!["Solana rallies"]
        );
        let e = headlines(b"<html>nope</html>", "http://x/page")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("feed http://x/page: not RSS or Atom"), "{e}");
    }
}
