//! Notifications from the engine (issue 18): a replay of real candles with a JSON webhook target on
//! a local HTTP server. Every stored fill is told once, and so is every veto and stop the risk rules
//! made; the replay never waits for the webhook.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use agent::config::TeamConfig;
use agent::engine::{Series, Session};
use agent::market::read_candles;
use agent::store::{PageQuery, Store};
use notify::{Notifier, Retry, Target};
use protocol::crd::{NotificationEvent, NotificationKind, NotificationTarget, SecretKeyRef};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

fn target(url: &str, events: Vec<NotificationEvent>) -> Target {
    let spec = NotificationTarget {
        name: "hook".into(),
        kind: NotificationKind::Webhook,
        secret_ref: SecretKeyRef {
            name: "hooks".into(),
            key: "hook".into(),
        },
        chat_id: None,
        events,
    };
    Target::new(&spec, url).unwrap()
}

/// The bodies of `kind` received so far.
fn of_kind(received: &Mutex<Vec<Value>>, kind: &str) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b["details"]["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_fill_and_every_veto_of_a_replay_is_told() {
    let (url, received) = test_support::webhook::serve().await;
    let notifier = Notifier::spawn(
        vec![target(
            &url,
            vec![NotificationEvent::Fill, NotificationEvent::Risk],
        )],
        Retry::default(),
    );
    let candles = read_candles(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/BTCUSDT-1h.csv.gz"
    )))
    .unwrap();
    // 2020-01-01 on: 100 days of warm-up, then 40 days traded
    let start = candles
        .iter()
        .position(|c| c.open_time >= 1_577_836_800_000)
        .unwrap();
    let slice = candles[start..start + 140 * 24].to_vec();
    let trade_from = slice[100 * 24].open_time;
    let mut config = TeamConfig::builtin().unwrap();
    config.strategy.spec.symbols = vec!["BTCUSDT".into()];
    let strategy = config.strategy.metadata.name.clone().unwrap();
    let backtest = Session {
        trade_from: Some(trade_from),
        notifier,
        ..Session::new(
            config,
            vec![Series {
                symbol: "BTCUSDT".into(),
                candles: slice,
            }],
            3_600_000,
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("n.db").display()))
        .await
        .unwrap();
    let outcome = backtest.run(Some(&store), |_, _| {}).await.unwrap();

    let orders = store
        .orders_page(
            &strategy,
            &PageQuery {
                limit: Some(10_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let filled: Vec<_> = orders.iter().filter(|o| o.status == "FILLED").collect();
    assert!(!filled.is_empty(), "the window trades");
    let stops = orders
        .iter()
        .filter(|o| ["stop-loss", "take-profit"].contains(&o.reason.as_str()))
        .count();
    let expected_risk = outcome.decisions.vetoed as usize + stops;
    assert!(expected_risk > 0, "the window has vetoes or stops");
    for _ in 0..300 {
        if of_kind(&received, "fill").len() >= filled.len()
            && of_kind(&received, "riskLimit").len() >= expected_risk
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fills = of_kind(&received, "fill");
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(
            fills
                .iter()
                .map(|f| f["details"]["fill"]["decisionId"]
                    .as_str()
                    .unwrap()
                    .to_string())
                .collect()
        ),
        sorted(filled.iter().map(|o| o.decision_id.clone()).collect()),
        "one message per stored fill"
    );
    assert!(fills.iter().all(|f| f["strategy"] == strategy.as_str()));
    let risk = of_kind(&received, "riskLimit");
    let reason = |r: &Value| {
        r["details"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let vetoes = risk
        .iter()
        .filter(|r| reason(r).contains(" vetoed "))
        .count();
    let exits = risk
        .iter()
        .filter(|r| ["stop-loss", "take-profit"].contains(&reason(r).as_str()))
        .count();
    assert_eq!(
        vetoes, outcome.decisions.vetoed as usize,
        "one message per veto"
    );
    assert_eq!(exits, stops, "one message per stop or target hit");
    assert!(
        of_kind(&received, "escalation").is_empty(),
        "nobody is asked in a backtest"
    );
}
