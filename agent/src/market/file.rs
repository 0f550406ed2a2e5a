//! Candles from files: our OHLCV CSV (header `open_time,open,high,low,close,volume`) or Binance's kline
//! CSV (12 columns, no header, as `data.binance.vision` publishes it), either optionally gzipped (`.gz`).
//!
//! Every problem is reported with the file, the line and the field at fault.

use super::{Candle, CandleChecker, CandleProblem};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The header of our OHLCV CSV.
pub const OHLCV_HEADER: [&str; 6] = ["open_time", "open", "high", "low", "close", "volume"];

/// Binance kline files carry 12 columns; the first six are ours.
const BINANCE_COLUMNS: usize = 12;

/// Open times above this are microseconds (Binance's spot files since 2025), not milliseconds.
const MICROSECONDS_THRESHOLD: i64 = 100_000_000_000_000;

/// Why a candle file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CandleFileError {
    #[error("{path}: {error}")]
    /// The file could not be opened or read (or is not valid gzip).
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    #[error("{path}: line {line}: {problem}")]
    /// A row is not CSV, has the wrong columns, or a cell is not a number.
    Row {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: u64,
        /// What is wrong with the row, naming the field.
        problem: String,
    },
    #[error("{path}: line {line}: {problem}")]
    /// A row parses but fails the candle checks.
    Candle {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: u64,
        /// The check it fails.
        problem: CandleProblem,
    },
    #[error("{path}: no candles in the file")]
    /// The file holds no candle (perhaps only a header).
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads every candle of a file, checking each (see [`CandleChecker`]).
pub fn read_candles(path: &Path) -> Result<Vec<Candle>, CandleFileError> {
    let io = |error| CandleFileError::Io {
        path: path.to_owned(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    parse_candles(reader, path)
}

/// Parses candles from any reader; `path` names the source in errors.
pub fn parse_candles(reader: impl Read, path: &Path) -> Result<Vec<Candle>, CandleFileError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let row_error = |line: u64, problem: String| CandleFileError::Row {
        path: path.to_owned(),
        line,
        problem,
    };
    let mut candles = Vec::new();
    let mut checker = CandleChecker::new();
    let mut record = csv::StringRecord::new();
    let mut line = 0u64;
    let mut columns: Option<usize> = None;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let at = error.position().map_or(line + 1, |p| p.line());
                return Err(row_error(at, error.to_string()));
            }
        }
        line = record.position().map_or(line + 1, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let expected = match columns {
            Some(n) => n,
            None => {
                // The first row decides the format: our header, or a Binance kline row.
                let first: Vec<&str> = record.iter().collect();
                if first == OHLCV_HEADER {
                    columns = Some(OHLCV_HEADER.len());
                    continue;
                }
                if first.first() == Some(&"open_time") && first.len() == BINANCE_COLUMNS {
                    // Binance's newer files may carry a header row of their own.
                    columns = Some(BINANCE_COLUMNS);
                    continue;
                }
                if first.len() == BINANCE_COLUMNS && first[0].parse::<i64>().is_ok() {
                    columns = Some(BINANCE_COLUMNS);
                    BINANCE_COLUMNS
                } else {
                    return Err(row_error(
                        line,
                        format!(
                            "unknown format: expected the header {:?} or a Binance kline row of {BINANCE_COLUMNS} columns, found {:?}",
                            OHLCV_HEADER.join(","),
                            first.join(",")
                        ),
                    ));
                }
            }
        };
        if record.len() != expected {
            return Err(row_error(
                line,
                format!(
                    "expected {expected} columns, found {} (missing or extra fields)",
                    record.len()
                ),
            ));
        }
        let candle = parse_row(&record).map_err(|problem| row_error(line, problem))?;
        checker
            .check(&candle)
            .map_err(|problem| CandleFileError::Candle {
                path: path.to_owned(),
                line,
                problem,
            })?;
        candles.push(candle);
    }
    if candles.is_empty() {
        return Err(CandleFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(candles)
}

fn parse_row(record: &csv::StringRecord) -> Result<Candle, String> {
    let number = |index: usize| -> Result<f64, String> {
        let text = &record[index];
        text.parse::<f64>()
            .map_err(|_| format!("field {}: {text:?} is not a number", OHLCV_HEADER[index]))
    };
    let text = &record[0];
    let mut open_time = text.parse::<i64>().map_err(|_| {
        format!("field open_time: {text:?} is not an integer (milliseconds since the Unix epoch)")
    })?;
    if open_time > MICROSECONDS_THRESHOLD {
        open_time /= 1000;
    }
    Ok(Candle {
        open_time,
        open: number(1)?,
        high: number(2)?,
        low: number(3)?,
        close: number(4)?,
        volume: number(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::corrupt;
    use proptest::prelude::*;
    use std::io::Write;

    fn parse(text: &str) -> Result<Vec<Candle>, CandleFileError> {
        parse_candles(text.as_bytes(), Path::new("test.csv"))
    }

    #[test]
    fn reads_our_ohlcv_csv() {
        let candles = parse(
            "open_time,open,high,low,close,volume\n\
             1502942400000,4261.48,4313.62,4261.32,4308.83,47.181009\n\
             1502946000000,4308.83,4328.69,4291.37,4315.32,23.234916\n",
        )
        .unwrap();
        assert_eq!(candles.len(), 2);
        assert_eq!(candles[1].open_time, 1_502_946_000_000);
        assert_eq!(candles[1].close, 4315.32);
    }

    #[test]
    fn reads_binance_kline_csv_in_milli_and_microseconds() {
        let candles = parse(
            "1502942400000,4261.48,4313.62,4261.32,4308.83,47.18,1502945999999,203.4,171,35.1,151.7,0\n\
             1502946000000000,4308.83,4328.69,4291.37,4315.32,23.23,1502949599999999,100.3,102,21.4,92.3,0\n",
        )
        .unwrap();
        assert_eq!(candles[0].open_time, 1_502_942_400_000);
        assert_eq!(candles[1].open_time, 1_502_946_000_000);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "open_time,open,high,low,close,volume\n1,2,3,1,2,5\n2,2,3,1,abc,5\n",
                "test.csv: line 3: field close: \"abc\" is not a number",
            ),
            (
                "open_time,open,high,low,close,volume\n1,2,3,1,2,5\n2,2,3,1\n",
                "test.csv: line 3: expected 6 columns, found 4",
            ),
            (
                "open_time,open,high,low,close,volume\n1,2,3,1,2,5\n1,2,3,1,2,5\n",
                "test.csv: line 3: field open_time: duplicate candle at 1",
            ),
            (
                "open_time,open,high,low,close,volume\n5,2,3,1,2,5\n4,2,3,1,2,5\n",
                "test.csv: line 3: field open_time: 4 goes back in time",
            ),
            (
                "open_time,open,high,low,close,volume\n5,2,3,1,NaN,5\n",
                "test.csv: line 2: field close: NaN is not a finite number",
            ),
            (
                "open_time,open,high,low,close,volume\n5,-2,3,1,2,5\n",
                "test.csv: line 2: field open: price -2 must be greater than zero",
            ),
            (
                "time,o,h,l,c,v\n5,2,3,1,2,5\n",
                "test.csv: line 1: unknown format",
            ),
            (
                "open_time,open,high,low,close,volume\n",
                "test.csv: no candles",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn reads_the_bundled_gzipped_data() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/BTCUSDT-1h.csv.gz");
        let candles = read_candles(&path).unwrap();
        assert_eq!(candles.len(), 29_578);
        assert_eq!(candles[0].open_time, 1_502_946_000_000); // 2017-08-17 05:00 UTC
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = read_candles(Path::new("/nonexistent/candles.csv")).unwrap_err();
        assert!(error.to_string().starts_with("/nonexistent/candles.csv: "));
    }

    /// Valid candles, one interval apart, opening after `start` ms.
    fn arb_candles(start: std::ops::Range<i64>) -> impl Strategy<Value = Vec<Candle>> {
        let candle = (
            1e-6f64..1e9,
            prop::array::uniform3(0.0f64..1.0),
            0.0f64..1e9,
        );
        (start, 1i64..10_000_000, prop::collection::vec(candle, 1..8)).prop_map(
            |(start, step, rows)| {
                let mut open_time = start;
                rows.into_iter()
                    .map(|(low, [a, b, c], volume)| {
                        let (open, close) = (low * (1.0 + a), low * (1.0 + b));
                        open_time += step;
                        Candle {
                            open_time,
                            open,
                            high: open.max(close) * (1.0 + c),
                            low,
                            close,
                            volume,
                        }
                    })
                    .collect()
            },
        )
    }

    /// The header row of Binance's newer kline files.
    const BINANCE_HEADER: &str = concat!(
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,",
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
    );

    /// A candle file in each format (our OHLCV CSV; Binance's kline CSV in milliseconds, in
    /// microseconds, with its header), and the candles it holds.
    fn arb_file() -> impl Strategy<Value = (String, Vec<Candle>)> {
        let format = 0u8..4;
        (format, arb_candles(0..1_000_000_000_000)).prop_map(|(format, candles)| {
            let mut text = match format {
                0 => format!("{}\n", OHLCV_HEADER.join(",")),
                3 => BINANCE_HEADER.into(),
                _ => String::new(),
            };
            for c in &candles {
                let (o, h, l, cl, v) = (c.open, c.high, c.low, c.close, c.volume);
                let time = match format {
                    // microseconds: above the threshold once the milliseconds are over 1e11
                    2 => (c.open_time + 100_000_000_000) * 1000,
                    _ => c.open_time,
                };
                text.push_str(&match format {
                    0 => format!("{time},{o},{h},{l},{cl},{v}\n"),
                    _ => format!("{time},{o},{h},{l},{cl},{v},{time},1.5,3,0.5,0.7,0\n"),
                });
            }
            let candles = candles
                .into_iter()
                .map(|c| Candle {
                    open_time: if format == 2 {
                        c.open_time + 100_000_000_000
                    } else {
                        c.open_time
                    },
                    ..c
                })
                .collect();
            (text, candles)
        })
    }

    /// Cells a damaged file may hold that random text seldom produces.
    #[rustfmt::skip]
    const ODD_CELLS: [&str; 15] = [
        "NaN", "inf", "-1", "0", "", " ", "\"", "\"\"", ",", "\n", "\r\n",
        "9223372036854775807", "-9223372036854775808", "1e400", "open_time",
    ];

    /// A cell as a hand-edited or damaged file may hold it.
    fn arb_cell() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,8}",
            "-?[0-9]{0,22}(\\.[0-9]{0,20})?(e-?[0-9]{1,3})?",
            prop::sample::select(ODD_CELLS.to_vec()).prop_map(String::from),
        ]
    }

    /// `text` with one line deleted, doubled, swapped with the next, or one cell replaced.
    fn edit_lines(
        text: &str,
        op: u8,
        line: prop::sample::Index,
        cell: prop::sample::Index,
        by: &str,
    ) -> String {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let (n, i) = (lines.len(), line.index(lines.len()));
        match op {
            0 => {
                lines.remove(i);
            }
            1 => lines.insert(i, lines[i].clone()),
            2 => lines.swap(i, (i + 1) % n),
            _ => {
                let mut cells: Vec<&str> = lines[i].split(',').collect();
                let j = cell.index(cells.len());
                cells[j] = by;
                lines[i] = cells.join(",");
            }
        }
        lines.join("\n")
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Vec<Candle>, CandleFileError> {
        parse_candles(bytes, Path::new("test.csv"))
    }

    /// What reading a file must guarantee: no panic; candles that pass the checks in order, or an
    /// error that names the line.
    fn check_total(result: Result<Vec<Candle>, CandleFileError>) -> Result<(), TestCaseError> {
        match result {
            Ok(candles) => {
                let mut checker = CandleChecker::new();
                prop_assert!(!candles.is_empty());
                for c in &candles {
                    prop_assert!(checker.check(c).is_ok(), "{:?}", c);
                }
            }
            Err(CandleFileError::Row { line, .. } | CandleFileError::Candle { line, .. }) => {
                prop_assert!(line >= 1);
            }
            Err(_) => {}
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Files of every format read back exactly.
        #[test]
        fn candle_files_read_back((text, candles) in arb_file()) {
            prop_assert_eq!(parse_bytes(text.as_bytes()).unwrap(), candles);
        }

        /// A line deleted, doubled or swapped, or a cell damaged: checked candles or an error
        /// naming the line, never a panic.
        #[test]
        fn edited_candle_files_never_panic((text, _) in arb_file(), op in 0u8..4, line in any::<prop::sample::Index>(), cell in any::<prop::sample::Index>(), by in arb_cell()) {
            check_total(parse_bytes(edit_lines(&text, op, line, cell, &by).as_bytes()))?;
        }

        /// Corrupted files and any bytes never panic.
        #[test]
        fn corrupted_candle_files_never_panic((text, _) in arb_file(), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            check_total(parse_bytes(corrupt(&text, flip, byte, cut).as_bytes()))?;
            check_total(parse_bytes(&bytes))?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A gzipped file with a corrupted byte, read from disk as `read_candles` reads any `.gz`.
        #[test]
        fn corrupted_gzip_files_never_panic((text, _) in arb_file(), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            let mut bytes = gz.finish().unwrap();
            let len = bytes.len();
            bytes[flip.index(len)] = byte;
            bytes.truncate(cut.index(len + 1).max(len / 2));
            let mut file = tempfile::Builder::new().suffix(".csv.gz").tempfile().unwrap();
            file.write_all(&bytes).unwrap();
            check_total(read_candles(file.path()))?;
        }
    }
}
