//! The operator's figures (issue 7): reconcile latency of one TradingAssistant against the mocked
//! API (kube-rs client over tower-test, served by the in-memory API server), the time to reconcile
//! 1,000 TradingAssistants, and resident memory with 1,000 objects cached the way the controllers
//! cache them (reflector stores of TradingAssistants and their Deployments and ConfigMaps).
//!
//! `cargo bench -p ia-operator --bench reconcile --features testing`; `cargo test` runs it as a
//! quick smoke run (no `--bench` argument).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use operator::controllers::{assistant, Context};
use operator::decisions::DecisionWatchers;
use operator::fake_api::FakeApi;
use operator::resources::assistant as build;
use protocol::crd::{Strategy, TradingAssistant};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "bench";

fn sample(file: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/../config/samples/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let doc = serde_yaml::Deserializer::from_str(&text).next().unwrap();
    let mut v: Value = serde::Deserialize::deserialize(doc).unwrap();
    v["metadata"]["namespace"] = json!(NS);
    v
}

fn assistant_named(i: usize) -> Value {
    let mut ta = sample("team.yaml");
    ta["metadata"]["name"] = json!(format!("assistant-{i:04}"));
    ta["metadata"]["uid"] = json!(format!("00000000-0000-0000-0000-{i:012}"));
    ta
}

/// Resident set size of this process, in MiB (Linux).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
}

fn cache_memory(objects: usize) {
    let before = rss_mib();
    let strategy: Strategy = serde_json::from_value(sample("strategy.yaml")).unwrap();
    let mut assistants = Writer::<TradingAssistant>::default();
    let mut deployments = Writer::<Deployment>::default();
    let mut config_maps = Writer::<ConfigMap>::default();
    for i in 0..objects {
        let ta: TradingAssistant = serde_json::from_value(assistant_named(i)).unwrap();
        let d = build::deployment(&ta, Some(&strategy), &[]).unwrap();
        let cm = build::config_map(&ta).unwrap();
        assistants.apply_watcher_event(&watcher::Event::Apply(ta));
        deployments.apply_watcher_event(&watcher::Event::Apply(d));
        config_maps.apply_watcher_event(&watcher::Event::Apply(cm));
    }
    let after = rss_mib();
    assert_eq!(assistants.as_reader().state().len(), objects);
    println!(
        "cache: {objects} TradingAssistants + {objects} Deployments + {objects} ConfigMaps cached; \
         resident {after:.1} MiB (runtime alone {before:.1} MiB, caches +{:.1} MiB)",
        after - before
    );
    drop((assistants, deployments, config_maps));
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // memory first, before the in-memory API server holds its own copies
        cache_memory(if quick { 100 } else { 1_000 });

        let (client, api) = FakeApi::start();
        let ctx = Arc::new(Context::new(
            client,
            "bench",
            Arc::new(DecisionWatchers::disabled()),
        ));
        api.insert(sample("strategy.yaml"));
        api.insert(assistant_named(0));
        let read = |name: &str| -> Arc<TradingAssistant> {
            Arc::new(
                serde_json::from_value(api.get("trading.ia-agents.dev/v1alpha1", "TradingAssistant", NS, name).unwrap())
                    .unwrap(),
            )
        };
        // steady state: one converged TradingAssistant reconciled again and again
        let rounds = if quick { 200 } else { 2_000 };
        for _ in 0..50 {
            assistant::reconcile(read("assistant-0000"), ctx.clone()).await.unwrap();
        }
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let ta = read("assistant-0000");
            let started = Instant::now();
            assistant::reconcile(ta, ctx.clone()).await.unwrap();
            samples.push(started.elapsed());
        }
        report("reconcile one converged TradingAssistant", samples);

        // 1,000 new TradingAssistants, each reconciled once (ConfigMap + Deployment created, status written)
        let n = if quick { 100 } else { 1_000 };
        for i in 1..=n {
            api.insert(assistant_named(i));
        }
        let mut samples = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 1..=n {
            let ta = read(&format!("assistant-{i:04}"));
            let one = Instant::now();
            assistant::reconcile(ta, ctx.clone()).await.unwrap();
            samples.push(one.elapsed());
        }
        let total = started.elapsed();
        report("reconcile a new TradingAssistant", samples);
        println!(
            "reconcile {n} new TradingAssistants one after another: {:.2} s ({:.0}/s); {} Deployments in the API",
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64(),
            api.all("Deployment").len()
        );
    });
}
