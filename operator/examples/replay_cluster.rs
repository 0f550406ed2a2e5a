//! The sample team at work on a stand-in cluster, for the README's screenshot of `kubectl ia-agents
//! status` (`scripts/screenshot-plugin.sh` runs it).
//!
//! There is no Kubernetes here, so the API server is the in-memory one of the tests
//! (`operator::fake_api`), served over HTTP on 127.0.0.1 behind a kubeconfig, and everything else is
//! real:
//!
//! - the sample ConsensusPolicy, Strategy and seven TradingAssistants of `config/samples/`, with
//!   `marketData.source: replay` as `scripts/e2e.sh` sets it (the bundled candles, no exchange);
//! - the operator's own reconcilers (policy, Strategy, assistant) converge them, once a second, as
//!   the controllers do on every change; they create the coordinator's and the assistants'
//!   Deployments, the ConfigMaps and the Secrets;
//! - every `trading-agent` Deployment they create runs as a local process, with the arguments,
//!   environment (Secrets resolved) and ConfigMap files of its pod template. What differs from a
//!   pod: the team's NATS is a local nats-server with JetStream (the managed StatefulSet's
//!   stand-in), the database a SQLite file (the managed Postgres's stand-in), each process listens
//!   on a port of its own on 127.0.0.1, and a Deployment counts as ready while its process runs
//!   (this program plays the kubelet and the Deployment controller);
//! - the operator's decision consumer reads the team's decision stream, escalations and audit
//!   anchor from that NATS and writes them into the Strategy's and the assistants' status;
//! - a replay decides in milliseconds what a live feed decides once an hour, so the coordinator is
//!   paused (SIGSTOP) as soon as it raises its first escalation: the screen then shows what a live
//!   team shows while a human is asked (the policy gives them 5 minutes, the next cycle is an hour
//!   away);
//! - once the operator has written everything published before that (the statuses stay the same
//!   for two seconds) and the Strategy is Ready with a last decision and the escalation pending,
//!   `kubectl ia-agents status btc-eth-paper` (the `kubectl-ia_agents` binary, found on the PATH)
//!   runs against the kubeconfig and what it prints is written to `--out`.
//!
//! `status` reads the Strategy and its TradingAssistants only. `why` (the coordinator's API through
//! the API server's service proxy) and `approve|reject` (relayed to the team's NATS at its in-cluster
//! address) would need routes this stand-in does not have.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use k8s_openapi::api::core::v1::Secret;
use operator::controllers::{assistant, policy, strategy, Context};
use operator::decisions::{DecisionWatchers, TeamNats};
use operator::fake_api::FakeApi;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "trading";
const CRD: &str = "trading.ia-agents.dev/v1alpha1";
const STRATEGY: &str = "btc-eth-paper";
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples");
const TARGET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug");

#[derive(Parser, Debug)]
#[command(about = "The sample team on a stand-in cluster; captures `kubectl ia-agents status`")]
struct Args {
    /// The `trading-agent` binary the pods run.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/trading-agent"))]
    agent: PathBuf,
    /// The directory holding `kubectl-ia_agents` (put first on kubectl's PATH).
    #[arg(long, default_value = TARGET)]
    plugin_dir: PathBuf,
    /// Where the pods' files, databases and logs go (default: a temporary directory).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Where to write what `kubectl ia-agents status btc-eth-paper` prints.
    #[arg(long)]
    out: PathBuf,
    /// Give up after this many seconds without a pending escalation.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let Some(nats) = test_support::NatsServer::start() else {
        bail!("nats-server is not installed (scripts/services.sh installs it)");
    };
    let (client, api) = FakeApi::start();
    for object in samples()? {
        api.insert(object);
    }
    let address = serve_http(client.clone()).await?;
    let kubeconfig = work.join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_for(address))?;
    eprintln!(
        "API server http://{address}; KUBECONFIG={}; pods under {}",
        kubeconfig.display(),
        work.display()
    );

    // the controllers (their decision consumer is started below, on the stand-in NATS)
    let ctx = Arc::new(Context::new(
        client.clone(),
        "replay-cluster",
        Arc::new(DecisionWatchers::disabled()),
    ));
    let consumer = DecisionWatchers::new(client.clone());
    // the stand-in NATS checks no identity (the pods' seeds are left out below)
    consumer.ensure(NS, STRATEGY, &TeamNats::anonymous(nats.url()));
    let coordinator = Arc::new(AtomicU32::new(0));
    let paused = pause_on_escalation(&nats.url(), coordinator.clone()).await?;
    let mut cluster = Cluster {
        api: api.clone(),
        ctx,
        agent: args.agent.clone(),
        work: work.clone(),
        nats: nats.url(),
        pods: Vec::new(),
        waiting: Default::default(),
        coordinator,
    };
    let started = Instant::now();
    tokio::select! {
        paused = cluster.until(&paused, Duration::from_secs(args.timeout)) => paused?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    eprintln!(
        "the coordinator escalated after {} s and is paused",
        started.elapsed().as_secs()
    );
    cluster.settle().await;
    let Some(shown) = worth_showing(&api) else {
        bail!(
            "nothing worth showing: the Strategy's status is {}",
            strategy_status(&api)
        );
    };
    eprintln!(
        "{} pending, last decision {}",
        shown["pendingEscalations"].as_array().map_or(0, Vec::len),
        shown["lastDecision"]["id"]
    );
    let printed = kubectl_status(&args.plugin_dir, &kubeconfig)?;
    std::fs::write(&args.out, &printed)?;
    print!("{printed}");
    drop(cluster); // the pods first, then NATS
    drop(nats);
    Ok(())
}

/// The sample manifests in [`NS`], the Strategy replaying the bundled candles.
fn samples() -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for file in ["consensuspolicy.yaml", "strategy.yaml", "team.yaml"] {
        let text = std::fs::read_to_string(format!("{SAMPLES}/{file}"))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let mut object: Value = serde::Deserialize::deserialize(document)?;
            object["metadata"]["namespace"] = json!(NS);
            if object["kind"] == "Strategy" {
                object["spec"]["marketData"] = json!({"source": "replay"});
            }
            objects.push(object);
        }
    }
    Ok(objects)
}

/// Serves the in-memory API server over HTTP on 127.0.0.1, each request passed to it as it came.
async fn serve_http(client: kube::Client) -> Result<SocketAddr> {
    use warp::Filter;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: http::HeaderMap,
                  body: warp::hyper::body::Bytes| {
                let client = client.clone();
                async move {
                    let uri = if query.is_empty() {
                        path.as_str().to_string()
                    } else {
                        format!("{}?{query}", path.as_str())
                    };
                    let mut request = http::Request::builder().method(method).uri(uri);
                    for (name, value) in &headers {
                        request = request.header(name, value);
                    }
                    let request = request
                        .body(kube::client::Body::from(body.to_vec()))
                        .expect("a request");
                    let (status, bytes) = match client.send(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let bytes = response.into_body().collect_bytes().await;
                            (status, bytes.map(|b| b.to_vec()).unwrap_or_default())
                        }
                        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string().into_bytes()),
                    };
                    http::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(bytes)
                        .expect("a response")
                }
            },
        );
    tokio::spawn(warp::serve(route).incoming(listener).run());
    Ok(address)
}

/// Pauses the coordinator (SIGSTOP to the process id in `coordinator`) on the first escalation it
/// raises on the team's NATS at `url`; the flag says it is done.
async fn pause_on_escalation(url: &str, coordinator: Arc<AtomicU32>) -> Result<Arc<AtomicBool>> {
    use futures::StreamExt;
    use protocol::messages::{decode, Message};
    let subjects = protocol::subjects::Subjects::new(NS, STRATEGY)?;
    let mut escalations = async_nats::connect(url)
        .await?
        .subscribe(subjects.all_escalations())
        .await?;
    let paused = Arc::new(AtomicBool::new(false));
    let done = paused.clone();
    tokio::spawn(async move {
        while let Some(message) = escalations.next().await {
            let pid = coordinator.load(Ordering::SeqCst);
            if pid == 0 || !matches!(decode(&message.payload), Ok(Message::Escalation(_))) {
                continue;
            }
            match Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
            {
                Ok(status) if status.success() => done.store(true, Ordering::SeqCst),
                other => eprintln!("kill -STOP {pid}: {other:?}"),
            }
            return;
        }
    });
    Ok(paused)
}

/// A kubeconfig whose current context is the stand-in API server, namespace [`NS`].
fn kubeconfig_for(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://{address}\n\
         contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: stand-in\n    namespace: {NS}\n\
         current-context: stand-in\nusers:\n- name: stand-in\n  user: {{}}\n"
    )
}

/// One pass of the three reconcilers over every object, as their controllers would on a change.
async fn converge(api: &FakeApi, ctx: &Arc<Context>) {
    fn parsed<K: serde::de::DeserializeOwned>(object: Value) -> Option<Arc<K>> {
        serde_json::from_value(object).ok().map(Arc::new)
    }
    for p in api.all("ConsensusPolicy") {
        if let Some(p) = parsed(p) {
            if let Err(e) = policy::reconcile(p, ctx.clone()).await {
                eprintln!("policy: {e}");
            }
        }
    }
    for s in api.all("Strategy") {
        if let Some(s) = parsed(s) {
            if let Err(e) = strategy::reconcile(s, ctx.clone()).await {
                eprintln!("strategy: {e}");
            }
        }
    }
    for ta in api.all("TradingAssistant") {
        if let Some(ta) = parsed(ta) {
            if let Err(e) = assistant::reconcile(ta, ctx.clone()).await {
                eprintln!("assistant: {e}");
            }
        }
    }
}

/// The Strategy's status once it is worth a screenshot: Ready, a last decision, an escalation
/// waiting, and the voters' opinions in their TradingAssistants.
fn worth_showing(api: &FakeApi) -> Option<Value> {
    let status = strategy_status(api);
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let pending = status["pendingEscalations"]
        .as_array()
        .is_some_and(|p| !p.is_empty());
    let opinions = api
        .all("TradingAssistant")
        .iter()
        .filter(|ta| !ta["status"]["lastOpinion"].is_null())
        .count();
    (ready && pending && !status["lastDecision"].is_null() && opinions >= 5).then_some(status)
}

fn strategy_status(api: &FakeApi) -> Value {
    api.get(CRD, "Strategy", NS, STRATEGY)
        .map(|s| s["status"].clone())
        .unwrap_or_default()
}

/// What `kubectl ia-agents status btc-eth-paper` prints against `kubeconfig` (the plugin binary
/// itself when kubectl is not installed: kubectl only finds it on the PATH and runs it).
fn kubectl_status(plugin_dir: &Path, kubeconfig: &Path) -> Result<String> {
    let path = format!(
        "{}:{}",
        plugin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output();
    let mut command = if kubectl.is_ok_and(|o| o.status.success()) {
        let mut c = Command::new("kubectl");
        c.arg("ia-agents");
        c
    } else {
        Command::new(plugin_dir.join("kubectl-ia_agents"))
    };
    let output = command
        .args(["status", STRATEGY])
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .output()
        .context("running kubectl ia-agents")?;
    if !output.status.success() {
        bail!(
            "kubectl ia-agents status failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// The local processes standing in for the pods, and what they need.
struct Cluster {
    api: FakeApi,
    /// What the reconcilers share.
    ctx: Arc<Context>,
    agent: PathBuf,
    work: PathBuf,
    nats: String,
    /// (Deployment name, its process).
    pods: Vec<(String, Child)>,
    /// Why a Deployment could not start yet, as already said.
    waiting: std::collections::HashSet<String>,
    /// The coordinator's process id, once started (0 before).
    coordinator: Arc<AtomicU32>,
}

impl Cluster {
    /// The controllers, the pods and the kubelet at work, once a second, until `done`.
    async fn until(&mut self, done: &AtomicBool, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while !done.load(Ordering::SeqCst) {
            if started.elapsed() > timeout {
                bail!(
                    "no escalation within {} s; the Strategy's status: {}",
                    timeout.as_secs(),
                    strategy_status(&self.api)
                );
            }
            self.tick().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }

    /// Keeps the cluster going until the statuses of the Strategy and its assistants have not
    /// changed for two seconds (at most half a minute).
    async fn settle(&mut self) {
        let statuses = |api: &FakeApi| {
            let mut all = vec![strategy_status(api)];
            all.extend(
                api.all("TradingAssistant")
                    .iter()
                    .map(|ta| ta["status"].clone()),
            );
            all
        };
        let mut last = statuses(&self.api);
        let mut quiet = 0;
        for _ in 0..30 {
            self.tick().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = statuses(&self.api);
            quiet = if now == last { quiet + 1 } else { 0 };
            if quiet >= 2 {
                return;
            }
            last = now;
        }
    }

    /// One pass of the controllers, the pods and the kubelet.
    async fn tick(&mut self) {
        converge(&self.api, &self.ctx).await;
        self.run_pods();
        self.play_kubelet();
    }

    /// Starts a process for every `trading-agent` Deployment that has none yet.
    fn run_pods(&mut self) {
        for deployment in self.api.all("Deployment") {
            let name = deployment["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let pod = &deployment["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            let runs_agent = container["image"]
                .as_str()
                .is_some_and(|i| i.contains("trading-agent"));
            let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
            if !runs_agent || replicas == 0 || self.pods.iter().any(|(n, _)| *n == name) {
                continue;
            }
            match self.start(&name, pod) {
                Ok(child) => {
                    eprintln!("started Deployment {name} (pid {})", child.id());
                    if name == format!("{STRATEGY}-coordinator") {
                        self.coordinator.store(child.id(), Ordering::SeqCst);
                    }
                    self.pods.push((name, child));
                }
                // as a pod waits in ContainerCreating for its ConfigMap or Secret
                Err(e) => {
                    let waiting = format!("Deployment {name} waits: {e:#}");
                    if self.waiting.insert(waiting.clone()) {
                        eprintln!("{waiting}");
                    }
                }
            }
        }
    }

    /// The pod template of Deployment `name` as a local process.
    fn start(&self, name: &str, pod: &Value) -> Result<Child> {
        let dir = self.work.join("pods").join(name);
        std::fs::create_dir_all(&dir)?;
        let mounts = self.mount(&dir, pod)?;
        let container = &pod["containers"][0];
        let mut command = Command::new(&self.agent);
        for arg in container["args"].as_array().into_iter().flatten() {
            command.arg(arg.as_str().unwrap_or_default());
        }
        command.env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        for var in container["env"].as_array().into_iter().flatten() {
            let key = var["name"].as_str().unwrap_or_default();
            if key == protocol::env::NATS_NKEY_FILE {
                continue; // the stand-in NATS checks no identity
            }
            let value = match var["value"].as_str() {
                Some(v) => v.to_string(),
                None => self.value_from(name, &var["valueFrom"])?,
            };
            command.env(key, self.local(key, value, &mounts)?);
        }
        let log = std::fs::File::create(dir.join("log"))?;
        command
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        Ok(command.spawn()?)
    }

    /// Writes the pod's ConfigMap and emptyDir volumes under `dir`; (mount path, local path) pairs.
    fn mount(&self, dir: &Path, pod: &Value) -> Result<Vec<(String, PathBuf)>> {
        let mut mounts = Vec::new();
        for mount in pod["containers"][0]["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let at = mount["mountPath"].as_str().unwrap_or_default().to_string();
            let local = dir.join(at.trim_start_matches('/'));
            std::fs::create_dir_all(&local)?;
            let volume = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == mount["name"])
                .cloned()
                .unwrap_or_default();
            if let Some(name) = volume["configMap"]["name"].as_str() {
                let config = self
                    .api
                    .get("v1", "ConfigMap", NS, name)
                    .with_context(|| format!("no ConfigMap {name}"))?;
                let data = config["data"].as_object().cloned().unwrap_or_default();
                let items: Vec<(String, String)> = match volume["configMap"]["items"].as_array() {
                    Some(items) => items
                        .iter()
                        .map(|i| (i["key"].as_str(), i["path"].as_str()))
                        .map(|(k, p)| (k.unwrap_or("").into(), p.unwrap_or("").into()))
                        .collect(),
                    None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
                };
                for (key, path) in items {
                    let text = data.get(&key).and_then(Value::as_str).unwrap_or_default();
                    std::fs::write(local.join(path), text)?;
                }
            }
            mounts.push((at, local));
        }
        Ok(mounts)
    }

    /// An env var's `valueFrom`: a Secret's key, or the pod's name.
    fn value_from(&self, deployment: &str, from: &Value) -> Result<String> {
        if from["fieldRef"]["fieldPath"] == "metadata.name" {
            return Ok(format!("{deployment}-0"));
        }
        let name = from["secretKeyRef"]["name"].as_str().unwrap_or_default();
        let key = from["secretKeyRef"]["key"].as_str().unwrap_or_default();
        let object = self
            .api
            .get("v1", "Secret", NS, name)
            .with_context(|| format!("no Secret {name}"))?;
        if let Some(v) = object["stringData"][key].as_str() {
            return Ok(v.to_string());
        }
        let secret: Secret = serde_json::from_value(object)?;
        secret
            .data
            .and_then(|d| {
                d.get(key)
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            })
            .with_context(|| format!("no key {key} in Secret {name}"))
    }

    /// An env var's value for a local process: the stand-ins' addresses, the mounts' local paths.
    fn local(&self, key: &str, value: String, mounts: &[(String, PathBuf)]) -> Result<String> {
        Ok(match key {
            "IA_NATS_URL" => self.nats.clone(),
            "IA_DB" => format!("sqlite://{}", self.work.join("postgres.sqlite").display()),
            "IA_LISTEN" => format!("127.0.0.1:{}", free_port()?),
            _ => mounts
                .iter()
                .find(|(at, _)| value.starts_with(&format!("{at}/")))
                .map_or(value.clone(), |(at, local)| {
                    format!("{}{}", local.display(), &value[at.len()..])
                }),
        })
    }

    /// The kubelet's and the workload controllers' part: a Deployment whose process runs is ready;
    /// the managed StatefulSets are, their stand-ins being up.
    fn play_kubelet(&mut self) {
        let running: Vec<String> = self
            .pods
            .iter_mut()
            .filter_map(|(name, child)| {
                child
                    .try_wait()
                    .ok()
                    .flatten()
                    .is_none()
                    .then(|| name.clone())
            })
            .collect();
        for (kind, objects) in [
            ("Deployment", self.api.all("Deployment")),
            ("StatefulSet", self.api.all("StatefulSet")),
        ] {
            for object in objects {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
                let up = kind == "StatefulSet" || running.iter().any(|r| r == name);
                let ready = if up { replicas } else { 0 };
                let status = json!({"observedGeneration": object["metadata"]["generation"],
                    "replicas": replicas, "readyReplicas": ready, "updatedReplicas": replicas,
                    "availableReplicas": ready});
                if object["status"] != status {
                    self.api.update("apps/v1", kind, NS, name, |o| {
                        o["status"] = status;
                    });
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.pods {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
