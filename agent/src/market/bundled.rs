//! Real candles built into the binary (see `data/SOURCES.md` for their provenance and attribution),
//! so the local backtest runs anywhere with no download.

/// (symbol, interval, file name, gzip-compressed OHLCV CSV)
pub const BUNDLED: [(&str, &str, &str, &[u8]); 3] = [
    (
        "BTCUSDT",
        "1h",
        "BTCUSDT-1h.csv.gz",
        include_bytes!("../../../data/BTCUSDT-1h.csv.gz"),
    ),
    (
        "ETHUSDT",
        "1h",
        "ETHUSDT-1h.csv.gz",
        include_bytes!("../../../data/ETHUSDT-1h.csv.gz"),
    ),
    (
        "BTCUSDT",
        "1m",
        "BTCUSDT-1m.csv.gz",
        include_bytes!("../../../data/BTCUSDT-1m.csv.gz"),
    ),
];

/// Cite the bundled data as this.
pub const ATTRIBUTION: &str =
    "Binance market data (via CryptoDataDownload); 1-minute sample: Binance.US market data";

/// The bundled file for a symbol and interval: (name, gzip bytes).
pub fn find(symbol: &str, interval: &str) -> Option<(&'static str, &'static [u8])> {
    BUNDLED
        .iter()
        .find(|(s, i, _, _)| *s == symbol && *i == interval)
        .map(|(_, _, name, bytes)| (*name, *bytes))
}

/// "BTCUSDT 1h, ETHUSDT 1h, BTCUSDT 1m": what is bundled, for error messages.
pub fn listing() -> String {
    BUNDLED
        .iter()
        .map(|(s, i, _, _)| format!("{s} {i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::file::parse_candles;
    use flate2::read::MultiGzDecoder;
    use std::path::Path;

    #[test]
    fn every_bundled_file_reads() {
        for (symbol, interval, name, bytes) in BUNDLED {
            let candles = parse_candles(MultiGzDecoder::new(bytes), Path::new(name)).unwrap();
            assert!(
                candles.len() > 29_000,
                "{symbol} {interval}: {}",
                candles.len()
            );
        }
        assert!(find("BTCUSDT", "1m").is_some());
        assert!(find("SOLUSDT", "1h").is_none());
    }
}
