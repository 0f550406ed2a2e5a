//! Live safety of the engine (issue: the team on a cluster never trades by accident): candles of the
//! warm-up never reach an order, and a live candle is traded only while it is fresh (closed at most
//! one interval ago); an older one is decided on and its order recorded as EXPIRED, never sent.

use agent::config::TeamConfig;
use agent::consensus::Voter;
use agent::engine::{fresh, ReplayTeam, Series, Session};
use agent::market::stream::SymbolCandle;
use agent::market::Candle;
use agent::roles::{Analyst, Judgement};
use agent::store::{PageQuery, Store};
use agent::team::{LocalAssistant, LocalTeam};
use protocol::messages::RoundRequest;
use protocol::{Action, Role};

const HOUR: i64 = 3_600_000;

/// Every voter says BUY, confidently: whatever the engine does not trade, it held back itself.
struct AlwaysBuy(Role);

impl Analyst for AlwaysBuy {
    fn role(&self) -> Role {
        self.0
    }
    fn analyze(&self, _: &RoundRequest) -> Judgement {
        Judgement::new(Action::Buy, 0.9, "always buys")
    }
    fn debate(&self, r: &RoundRequest, _: &str) -> Judgement {
        self.analyze(r)
    }
}

fn eager_team() -> LocalTeam {
    LocalTeam::new(
        Role::DEFAULT_VOTERS
            .iter()
            .map(|&role| LocalAssistant {
                voter: Voter {
                    assistant: role.as_str().into(),
                    role,
                    weight: 1.0,
                },
                analyst: Box::new(AlwaysBuy(role)),
                llm: None,
            })
            .collect(),
    )
}

/// An hourly candle on a gentle rise, so that the indicators have something to measure.
fn candle(open_time: i64, i: usize) -> Candle {
    let p = 100.0 + i as f64 * 0.05 + (i % 5) as f64 * 0.1;
    Candle {
        open_time,
        open: p,
        high: p + 0.4,
        low: p - 0.4,
        close: p + 0.05,
        volume: 10.0,
    }
}

/// 300 warm-up candles ending at `live_from`, the live candles `live` (open times) sent on a feed,
/// run with every voter buying; returns the orders stored, newest first, and the decisions made.
async fn run_live(live_from: i64, live: &[i64]) -> (Vec<agent::store::OrderRow>, i64) {
    let warm_up: Vec<Candle> = (0..300)
        .map(|i| candle(live_from - (300 - i as i64) * HOUR, i))
        .collect();
    let mut config = TeamConfig::builtin().unwrap();
    config.strategy.spec.symbols = vec!["BTCUSDT".into()];
    let backtest = Session {
        trade_from: Some(live_from),
        ..Session::new(
            config,
            vec![Series {
                symbol: "BTCUSDT".into(),
                candles: warm_up,
            }],
            HOUR,
        )
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for (k, &t) in live.iter().enumerate() {
        tx.send(SymbolCandle {
            symbol: "BTCUSDT".into(),
            candle: candle(t, 300 + k),
        })
        .await
        .unwrap();
    }
    drop(tx);
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let team = eager_team();
    let voters = team.voters();
    let outcome = backtest
        .replay(
            Some(rx),
            ReplayTeam {
                transport: &team,
                escalations: &agent::engine::EscalationsTimeOut,
                voters,
            },
            Some(&store),
            |_| {},
            |_, _| {},
        )
        .await
        .unwrap();
    let orders = store
        .orders_page(
            "btc-eth-paper",
            &PageQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (orders, outcome.decisions.total as i64)
}

fn this_hour() -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    now - now.rem_euclid(HOUR)
}

#[tokio::test]
async fn no_order_for_a_warm_up_candle_and_one_for_a_fresh_live_candle() {
    let live_from = this_hour();
    let (orders, decisions) = run_live(live_from, &[live_from]).await;
    assert_eq!(decisions, 1, "the team decides on the live candle only");
    assert_eq!(orders.len(), 1, "{orders:#?}");
    assert_eq!(orders[0].status, "FILLED");
    assert_eq!(orders[0].side, "BUY");
    assert_eq!(
        orders[0].at,
        live_from + HOUR,
        "decided as the live candle closed"
    );
}

#[tokio::test]
async fn a_stale_live_candle_is_decided_on_but_its_order_expires_unsent() {
    // a feed that lagged a day: its candles closed long before now
    let live_from = this_hour() - 24 * HOUR;
    let (orders, decisions) = run_live(live_from, &[live_from, live_from + HOUR]).await;
    assert_eq!(decisions, 2);
    assert!(!orders.is_empty(), "the planned orders are recorded");
    for order in &orders {
        assert_eq!(order.status, "EXPIRED", "{order:#?}");
        assert!(
            order.reason.contains("more than one interval"),
            "{order:#?}"
        );
    }
}

#[test]
fn a_candle_is_fresh_for_one_interval_after_it_closed() {
    let closed = 10 * HOUR;
    assert!(fresh(closed, HOUR, closed - 5)); // still forming: fresh
    assert!(fresh(closed, HOUR, closed + HOUR));
    assert!(!fresh(closed, HOUR, closed + HOUR + 1));
}
