//! `trading-operator run`: the three controllers, leader election on a Lease, the health and
//! metrics server, and graceful shutdown on SIGTERM / Ctrl-C. This is the binary's edge, hence
//! `anyhow`.

use super::leader::{Election, LeaseConfig};
use super::{assistant, error_policy, policy, strategy, Context};
use crate::decisions::DecisionWatchers;
use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, ResourceExt};
use protocol::crd::{ConsensusPolicy, Strategy, TradingAssistant};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// How the operator runs.
#[derive(Debug, Clone, clap::Args)]
pub struct RunConfig {
    /// Address of the health and metrics server.
    #[arg(long, env = "IA_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Hold a coordination.k8s.io Lease before reconciling, so several replicas can run.
    #[arg(long, env = "IA_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ia-agents-system")]
    pub lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "trading-operator-leader")]
    pub lease_name: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", default_value = "trading-operator")]
    pub identity: String,
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "IA_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Do not consume the teams' decision streams (no NATS access needed; the
    /// ConsensusReached / EscalationPending conditions are then not written).
    #[arg(long)]
    pub no_decisions: bool,
    /// Who may reach the teams' pods, and where DNS and the internet are (their NetworkPolicies).
    #[command(flatten)]
    pub network: crate::resources::network::NetworkPolicySettings,
}

/// Resolves when SIGTERM or Ctrl-C arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `trading-operator run`: serves health and metrics, waits for the leader Lease (unless leader
/// election is off), then runs the controllers until SIGTERM or Ctrl-C, or until the Lease is lost.
pub async fn run(config: RunConfig) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let decisions = Arc::new(if config.no_decisions {
        DecisionWatchers::disabled()
    } else {
        DecisionWatchers::new(client.clone())
    });
    let mut ctx = Context::new(client.clone(), &config.identity, decisions);
    ctx.network = config.network.clone();
    let ctx = Arc::new(ctx);
    let leading = Arc::new(AtomicBool::new(!config.leader_election));
    let (stop_tx, stop_rx) = watch::channel(false);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", config.listen))?;
    let server = tokio::spawn(serve(
        listener,
        ctx.clone(),
        client.clone(),
        leading.clone(),
        stop_rx.clone(),
    ));
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        });
    }

    let mut election = None;
    if config.leader_election {
        let lease = LeaseConfig::new(
            &config.lease_namespace,
            &config.lease_name,
            &config.identity,
        );
        let mut lead = Election::start(client.clone(), &lease).await?;
        tracing::info!(identity = %config.identity, lease = %config.lease_name, "waiting for leadership");
        let mut stop = stop_rx.clone();
        let stopped = tokio::select! {
            acquired = lead.acquired() => {
                acquired?;
                false
            }
            _ = stop.changed() => true,
        };
        if stopped {
            lead.release().await;
            let _ = server.await;
            return Ok(());
        }
        tracing::info!(identity = %config.identity, "leading; starting the controllers");
        leading.store(true, Ordering::SeqCst);
        election = Some(lead);
    }

    let reconciling = controllers(client, ctx, config.namespace.as_deref(), stop_rx);
    match election.as_mut() {
        Some(lead) => {
            tokio::pin!(reconciling);
            tokio::select! {
                () = &mut reconciling => {}
                () = lead.lost() => {
                    // another replica leads: stop reconciling at once
                    tracing::error!("lost the leader Lease; stopping");
                    let _ = stop_tx.send(true);
                    reconciling.await;
                }
            }
        }
        None => reconciling.await,
    }
    if let Some(lead) = election {
        // releasing the Lease lets the next leader start without waiting for it to expire
        lead.release().await;
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the three controllers until `stop` turns true, letting in-flight reconciles finish.
pub async fn controllers(
    client: Client,
    ctx: Arc<Context>,
    namespace: Option<&str>,
    stop: watch::Receiver<bool>,
) {
    let ours = watcher::Config::default().labels("app.kubernetes.io/managed-by=trading-operator");
    let shutdown = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };

    let assistants = Controller::new(
        api::<TradingAssistant>(&client, namespace),
        watcher::Config::default(),
    );
    let assistant_store = assistants.store();
    let team_store = assistant_store.clone();
    let assistants = assistants
        .owns(api::<Deployment>(&client, namespace), ours.clone())
        .owns(api::<ConfigMap>(&client, namespace), ours.clone())
        .watches(
            api::<TradingAssistant>(&client, namespace),
            watcher::Config::default(),
            // an executor or auditor coming or going makes the other one a service, or not
            move |ta: TradingAssistant| assistant::service_partners(&team_store.state(), &ta),
        )
        .watches(
            api::<Strategy>(&client, namespace),
            watcher::Config::default(),
            move |s: Strategy| {
                // a Strategy appearing, pausing or changing its dependencies concerns its team
                let namespace = s.namespace();
                let name = s.name_any();
                assistant_store
                    .state()
                    .into_iter()
                    .filter(|ta| ta.namespace() == namespace && ta.spec.strategy_ref.name == name)
                    .map(|ta| ObjectRef::from_obj(ta.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown(stop.clone()))
        .run(assistant::reconcile, error_policy, ctx.clone())
        .for_each(drain("tradingassistant"));

    let strategies = Controller::new(
        api::<Strategy>(&client, namespace),
        watcher::Config::default(),
    );
    let strategy_store = strategies.store();
    let strategies = strategies
        .owns(api::<Deployment>(&client, namespace), ours.clone())
        .owns(api::<StatefulSet>(&client, namespace), ours.clone())
        .owns(api::<Job>(&client, namespace), ours.clone())
        .watches(
            api::<TradingAssistant>(&client, namespace),
            watcher::Config::default(),
            |ta: TradingAssistant| {
                let r = ObjectRef::<Strategy>::new(&ta.spec.strategy_ref.name);
                Some(match ta.namespace() {
                    Some(ns) => r.within(&ns),
                    None => r,
                })
            },
        )
        .watches(
            api::<ConsensusPolicy>(&client, namespace),
            watcher::Config::default(),
            move |p: ConsensusPolicy| {
                let namespace = p.namespace();
                let name = p.name_any();
                strategy_store
                    .state()
                    .into_iter()
                    .filter(|s| {
                        s.namespace() == namespace && s.spec.consensus_policy_ref.name == name
                    })
                    .map(|s| ObjectRef::from_obj(s.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown(stop.clone()))
        .run(strategy::reconcile, error_policy, ctx.clone())
        .for_each(drain("strategy"));

    let policies = Controller::new(
        api::<ConsensusPolicy>(&client, namespace),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(shutdown(stop))
    .run(policy::reconcile, error_policy, ctx)
    .for_each(drain("consensuspolicy"));
    tokio::join!(assistants, strategies, policies);
}

/// Drains a controller's stream: failed reconciles are already logged and counted by
/// `error_policy`; what else it reports (an object gone from the cache, a watch error) is logged here.
fn drain<T, E: std::fmt::Display>(
    controller: &'static str,
) -> impl FnMut(Result<T, E>) -> futures::future::Ready<()> {
    move |result| {
        if let Err(error) = result {
            tracing::debug!(%error, controller, "controller stream");
        }
        futures::future::ready(())
    }
}

/// `/healthz` (the process serves), `/readyz` (the API server answers, and this replica leads or
/// stands by), `/metrics`.
async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<Context>,
    client: Client,
    leading: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    use warp::Filter;
    let healthz = warp::path!("healthz").map(|| String::from("ok"));
    let readyz = warp::path!("readyz").then(move || {
        let client = client.clone();
        let leading = leading.clone();
        async move {
            match client.apiserver_version().await {
                Ok(_) => warp::reply::with_status(
                    String::from(if leading.load(Ordering::SeqCst) {
                        "ready: leading"
                    } else {
                        "ready: standing by"
                    }),
                    warp::http::StatusCode::OK,
                ),
                Err(_) => warp::reply::with_status(
                    String::from("the Kubernetes API does not answer"),
                    warp::http::StatusCode::SERVICE_UNAVAILABLE,
                ),
            }
        }
    });
    let metrics = warp::path!("metrics").map(move || {
        warp::reply::with_header(
            ctx.metrics.render(),
            "content-type",
            "text/plain; version=0.0.4",
        )
    });
    let routes = warp::get().and(healthz.or(readyz).or(metrics));
    tracing::info!(listen = ?listener.local_addr().ok(), "serving /healthz, /readyz and /metrics");
    warp::serve(routes)
        .incoming(listener)
        .graceful(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api::FakeApi;

    #[tokio::test]
    async fn health_readiness_and_metrics_are_served_until_shutdown() {
        let (client, _api) = FakeApi::start();
        let ctx = Arc::new(Context::new(
            client.clone(),
            "test",
            Arc::new(DecisionWatchers::disabled()),
        ));
        drop(ctx.metrics.reconcile(super::super::assistant::CONTROLLER));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let leading = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, ctx, client, leading.clone(), stopped));
        let get = |path: &str| {
            let url = format!("http://{addr}{path}");
            async move {
                let r = reqwest::get(url).await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        assert_eq!(get("/healthz").await, (200, "ok".into()));
        assert_eq!(get("/readyz").await, (200, "ready: standing by".into()));
        leading.store(true, Ordering::SeqCst);
        assert_eq!(get("/readyz").await, (200, "ready: leading".into()));
        let (status, metrics) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(
            metrics.contains("ia_operator_reconcile_total{controller=\"tradingassistant\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("ia_operator_reconcile_duration_seconds_bucket"));
        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("the server stops on shutdown")
            .unwrap();
    }
}
