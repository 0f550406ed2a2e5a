//! Issue 5's figures: orders per second through the executor, the paper exchange and the store
//! (decision + order + two audit-log rows per order, batched in transactions, idempotency on), and
//! the HTTP API's latency for `GET /api/v1/decisions` under wrk.
//!
//! `IA_BENCH_POSTGRES_URL=postgres://… cargo bench -p ia-agent --bench store_api` (falls back to
//! `IA_TEST_POSTGRES_URL`, then to SQLite in a temporary directory). The API part needs `wrk` on PATH
//! (Debian: `apt install wrk`). `cargo test` runs a quick smoke version (no `--bench` argument).

use agent::api::{serve, ApiState};
use agent::audit::AuditChain;
use agent::exchange::{FeeModel, PaperExchange};
use agent::executor::{Executor, Plan};
use agent::store::{OrderRecord, OrderStatus, Store, Table};
use protocol::messages::{Decision, PortfolioContext};
use protocol::Action;
use rust_decimal::Decimal;
use std::time::Instant;

fn decisions(strategy: &str, n: usize) -> Vec<Decision> {
    (0..n)
        .map(|i| {
            // a gentle random walk; BUY then SELL so that every decision trades
            let price = 20_000.0 + ((i as f64) * 0.37).sin() * 500.0;
            Decision {
                id: format!("{strategy}_BTCUSDT_{i}_schedule").into(),
                strategy: strategy.into(),
                symbol: "BTCUSDT".into(),
                action: if i % 2 == 0 {
                    Action::Buy
                } else {
                    Action::Sell
                },
                confidence: 0.8,
                consensus_reached: true,
                escalated: false,
                vetoed: false,
                rejected: false,
                resolved_by: None,
                rounds: vec![],
                transcript: vec![],
                price,
                decided_at: 1_600_000_000_000 + i as i64 * 60_000,
            }
        })
        .collect()
}

/// Runs the executor and the paper exchange over the decisions: the orders to store.
fn execute(strategy: &str, decisions: &[Decision]) -> Vec<OrderRecord> {
    let executor = Executor {
        strategy: strategy.into(),
        limits: Default::default(),
        paused: false,
        order_type: protocol::crd::OrderType::Market,
        limit_offset_bps: 0.0,
        min_hold_ms: 0,
    };
    let mut exchange = PaperExchange::new(Decimal::from(1_000_000), FeeModel::new(0.001, 5.0));
    let mut orders = Vec::with_capacity(decisions.len());
    for d in decisions {
        let price = Decimal::try_from(d.price).unwrap();
        exchange.mark(&d.symbol, price);
        let context = PortfolioContext {
            equity: 1_000_000.0,
            ..Default::default()
        };
        if let Plan::Trade(order) = executor.plan(d, &exchange, &context, Default::default()) {
            let record = match exchange.execute(&order, price, "decision") {
                Ok(fill) => OrderRecord {
                    order,
                    fill: Some(fill),
                    status: OrderStatus::Filled,
                    reason: "decision".into(),
                },
                Err(rejection) => OrderRecord {
                    order,
                    fill: None,
                    status: OrderStatus::Rejected,
                    reason: rejection.to_string(),
                },
            };
            orders.push(record);
        }
    }
    orders
}

fn wrk(url: &str, quick: bool, connections: u32) {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("api: wrk not found (apt install wrk); skipped");
        return;
    }
    let duration = if quick { "2s" } else { "15s" };
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            "-d",
            duration,
            "--latency",
            url,
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let pick = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "api: GET /api/v1/decisions?limit=50 with wrk -t2 -c{connections} -d{duration}: {} requests/s, p50 {} p99 {} (non-2xx: {})",
        pick("Requests/sec:"),
        pick("50%"),
        pick("99%"),
        text.lines()
            .find(|l| l.contains("Non-2xx"))
            .map(|l| l.split(':').nth(1).unwrap_or("0").trim().to_string())
            .unwrap_or_else(|| "0".into())
    );
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = std::env::var("IA_BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("IA_TEST_POSTGRES_URL"))
            .unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
        let store = Store::connect(&url).await.expect("the store connects");
        let strategy = format!("bench-{}", std::process::id());
        let n = if quick { 2_000 } else { 50_000 };
        let batch = 1_000;

        let decisions = decisions(&strategy, n);
        let started = Instant::now();
        let orders = execute(&strategy, &decisions);
        let executed = started.elapsed();
        let mut chain = AuditChain::default();
        let stored = Instant::now();
        for (ds, os) in decisions.chunks(batch).zip(orders.chunks(batch)) {
            store.record(&strategy, &mut chain, ds, os).await.unwrap();
        }
        let storing = stored.elapsed();
        let total = started.elapsed();
        let count = store.count(Table::Orders, &strategy).await.unwrap();
        assert_eq!(count as usize, orders.len());
        println!(
            "orders: {} decisions → {} orders on {} in batches of {batch}: {:.0} orders/s end to end \
             (executor + paper exchange {:.3} s, store {:.3} s: decision + order + 2 audit rows each)",
            n,
            orders.len(),
            store.name(),
            orders.len() as f64 / total.as_secs_f64(),
            executed.as_secs_f64(),
            storing.as_secs_f64()
        );

        // the same decisions again (a replay after a crash): nothing is stored twice
        let again = Instant::now();
        let mut replay_chain = store.audit_chain(&strategy, &agent::audit::AuditKey::Unkeyed).await.unwrap();
        for (ds, os) in decisions.chunks(batch).zip(orders.chunks(batch)) {
            store
                .record(&strategy, &mut replay_chain, ds, os)
                .await
                .unwrap();
        }
        let count_after = store.count(Table::Orders, &strategy).await.unwrap();
        assert_eq!(count_after, count, "a replay must not store an order twice");
        println!(
            "orders: replaying all {} decisions stored 0 new orders ({:.3} s)",
            n,
            again.elapsed().as_secs_f64()
        );

        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        // wrk is one client: the per-client rate limit is lifted to measure the API itself
        let unlimited = agent::api::guard::Rates {
            read: (f64::MAX, f64::MAX),
            write: (f64::MAX, f64::MAX),
        };
        let state = ApiState::new(store, &strategy, None, tx).with_rates(unlimited);
        let addr = serve(state, "127.0.0.1:0".parse().unwrap(), std::future::pending())
            .await
            .unwrap();
        let url = format!("http://{addr}/api/v1/decisions?limit=50");
        let probe = reqwest::get(&url).await.unwrap();
        assert_eq!(probe.status(), 200);
        // the store's pool holds 8 Postgres connections: at 8 clients nothing queues for one
        tokio::task::spawn_blocking(move || {
            for connections in [8, 16] {
                wrk(&url, quick, connections);
            }
        })
        .await
        .unwrap();
    });
}
