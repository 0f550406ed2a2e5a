//! Look-ahead and warm-up checks on the bundled BTCUSDT hourly candles (agent::evaluation::lookahead):
//! no indicator and no decision of the team changes when the data is cut right after the candle it
//! was made on, and after their warm-up the indicators do not depend on where the data started.

use agent::config::TeamConfig;
use agent::engine::{Series, Session};
use agent::evaluation::lookahead::{
    decision_lookahead, indicator_lookahead, sample, warm_up_dependence,
};
use agent::market::{read_candles, Candle};
use std::path::Path;

fn bundled_btc() -> Vec<Candle> {
    read_candles(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/BTCUSDT-1h.csv.gz"
    )))
    .unwrap()
}

#[test]
fn no_indicator_sees_a_later_candle() {
    let candles = bundled_btc();
    let candles = &candles[..8_000];
    // 200 candles spread over the data, the first ones inside every indicator's warm-up
    indicator_lookahead(candles, &sample(0, candles.len(), 200)).unwrap();
}

#[test]
fn indicators_forget_where_the_data_started() {
    let candles = bundled_btc();
    // started 500 candles later, every indicator agrees within 1e-4 (relative) after 2,500 candles
    // (the longest exact window is the quarter's momentum, 2,160 candles; the Wilder and
    // exponential averages forget their start geometrically); OBV is cumulative and exempt
    warm_up_dependence(&candles[..9_000], 500, 2_500, 1e-4).unwrap();
}

#[tokio::test]
async fn no_decision_sees_a_later_candle() {
    let candles = bundled_btc();
    // 2020-01-01 on: 150 days, of which the first 100 are history (warm-up and learning)
    let start = candles
        .iter()
        .position(|c| c.open_time >= 1_577_836_800_000)
        .unwrap();
    let slice = candles[start..start + 150 * 24].to_vec();
    let trade_from = slice[100 * 24].open_time;
    let mut config = TeamConfig::builtin().unwrap();
    config.strategy.spec.symbols = vec!["BTCUSDT".into()];
    let backtest = Session {
        trade_from: Some(trade_from),
        ..Session::new(
            config,
            vec![Series {
                symbol: "BTCUSDT".into(),
                candles: slice,
            }],
            3_600_000,
        )
    };
    // 24 decisions spread over the traded part, each replayed with the data ending at its candle
    let samples = sample(100 * 24, 150 * 24, 24);
    decision_lookahead(&backtest, &samples).await.unwrap();
}
