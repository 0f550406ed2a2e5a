//! Prometheus metrics of the controllers: reconciles, failures and reconcile latency per controller.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Instant;

/// The operator's metrics, in their own registry (served on `/metrics`).
pub struct Metrics {
    /// Where the metrics are registered; `/metrics` gathers from it.
    pub registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "ia_operator_reconcile_total",
                "Reconciles run, per controller",
            ),
            &["controller"],
        )
        .expect("metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "ia_operator_reconcile_errors_total",
                "Reconciles that failed, per controller and error kind",
            ),
            &["controller", "error"],
        )
        .expect("metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ia_operator_reconcile_duration_seconds",
                "Time one reconcile took, per controller",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["controller"],
        )
        .expect("metric");
        for m in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
        ] {
            registry.register(m).expect("metrics register once");
        }
        Self {
            registry,
            reconciles,
            failures,
            duration,
        }
    }
}

/// Observes one reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .with_label_values(&[self.controller])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a reconcile of `controller` and times it until the returned guard drops.
    pub fn reconcile(&self, controller: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.with_label_values(&[controller]).inc();
        ReconcileTimer {
            metrics: self,
            controller,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn failed(&self, controller: &str, error: &super::Error) {
        self.failures
            .with_label_values(&[controller, error.metric_label()])
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// Reconciles counted so far for `controller`.
    pub fn reconciles(&self, controller: &str) -> u64 {
        self.reconciles.with_label_values(&[controller]).get()
    }
}
