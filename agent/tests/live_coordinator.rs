//! A `mode: live` coordinator as a process, against real nats-server and a local server that speaks
//! Binance's REST, WebSocket and signed order API: every voter says BUY, yet no order goes out for
//! the warm-up candles; the orders that do go out are the live candles' decisions', signed, and on
//! the symbol's lot step.

use test_support as support;
use test_support::binance;

use agent::bus::nats::NatsBus;
use agent::exchange::binance::client_order_id;
use agent::roles::{Analyst, Judgement};
use agent::service::AssistantService;
use protocol::messages::RoundRequest;
use protocol::subjects::Subjects;
use protocol::{Action, Role};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const KEY: &str = "live-test-key";
const SECRET: &str = "live-test-secret";

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

/// The sample Strategy, live on one-minute candles, its orders to `base_url`.
fn live_strategy(dir: &std::path::Path, base_url: &str) -> std::path::PathBuf {
    let sample = std::fs::read_to_string(format!("{ROOT}/config/samples/strategy.yaml")).unwrap();
    let path = dir.join("strategy.yaml");
    std::fs::write(
        &path,
        sample
            .replace("mode: paper", "mode: live")
            .replace("interval: 1h", "interval: 1m")
            .replace("analysis: \"0 * * * *\"", "analysis: \"* * * * *\"")
            .replace(
                "  exchange:\n",
                &format!(
                    "  exchange:\n    baseUrl: {base_url}\n    credentialsSecretRef:\n      name: binance-keys\n"
                ),
            ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_coordinator_orders_only_on_live_candles_and_within_the_lot_rules() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let (addr, current, posted) = binance::live_exchange(2, KEY, SECRET).await;
    let bus = NatsBus::connect(&server.url()).await.unwrap();
    let subjects = Subjects::new("live", "btc-eth-paper").unwrap();
    for role in Role::DEFAULT_VOTERS {
        let service = AssistantService {
            bus: bus.clone(),
            subjects: subjects.clone(),
            strategy: "btc-eth-paper".into(),
            assistant: role.as_str().into(),
            instance: format!("{}-0", role.as_str()),
            role,
            weight: 1.0,
            analyst: Arc::new(AlwaysBuy(role)),
            heartbeat_every: Duration::from_millis(500),
            llm: None,
        };
        tokio::spawn(service.run(std::future::pending()));
    }
    let dir = tempfile::tempdir().unwrap();
    let strategy = live_strategy(dir.path(), &format!("http://{addr}"));
    let url = server.url();
    let output = tokio::task::block_in_place(|| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
        command
            .args([
                "coordinator",
                "--nats",
                &url,
                "--namespace",
                "live",
                "--json",
            ])
            .args(["--symbols", "BTCUSDT"])
            .args(["--strategy-file", strategy.to_str().unwrap()])
            .args([
                "--policy-file",
                &format!("{ROOT}/config/samples/consensuspolicy.yaml"),
            ])
            .args(["--rest-url", &format!("http://{addr}")])
            .args(["--ws-url", &format!("ws://{addr}")])
            .args(["--warmup", "60", "--max-cycles", "2"])
            .env("IA_EXCHANGE_API_KEY", KEY)
            .env("IA_EXCHANGE_API_SECRET", SECRET);
        support::output_within(command, Duration::from_secs(60))
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    let decisions = support::processes::json_lines(&output);
    assert_eq!(decisions.len(), 2, "one per live candle: {decisions:?}");
    let live_ids: Vec<String> = decisions
        .iter()
        .inspect(|d| assert!(d["decided_at"].as_i64().unwrap() > current, "{d}"))
        .map(|d| client_order_id(d["id"].as_str().unwrap()))
        .collect();
    let posted = posted.lock().unwrap().clone();
    assert!(!posted.is_empty(), "the BUY went out: {stderr}");
    for order in &posted {
        assert!(
            live_ids.contains(&order["newClientOrderId"]),
            "every order is a live candle's decision: {order:?} (live: {live_ids:?})"
        );
        let decimals = order["quantity"]
            .split_once('.')
            .map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "on the 0.001 lot step: {order:?}");
        assert!(!format!("{order:?}").contains(SECRET));
    }
    assert!(!stderr.contains(SECRET) && !stderr.contains(KEY));
}
