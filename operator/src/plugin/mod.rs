//! `kubectl ia-agents`: the team from kubectl (the `kubectl-ia_agents` binary, found by kubectl on
//! the PATH). Every command is a function of a kube [`Client`] returning what it prints, so the tests
//! run them against the in-memory API (`fake_api`).
//!
//! - `status STRATEGY`: readiness, the last decision, pending escalations, equity, the assistants;
//! - `why DECISION-ID`: the debate, read from the coordinator's API through the API server's service
//!   proxy with the token from the Strategy's Secret;
//! - `approve|reject ID`: the annotation the operator relays to the coordinator;
//! - `pause|resume STRATEGY`: `spec.paused`, the kill switch;
//! - `report STRATEGY --out DIR`: a debug bundle (the CRs, their events, the children's status,
//!   recent logs).

mod actions;
mod report;
mod status;
mod why;

use clap::{Parser, Subcommand, ValueEnum};
use kube::api::{Api, ListParams};
use kube::Client;
use protocol::crd::{Strategy, TradingAssistant};

pub use report::report;
pub use status::{status, StatusView};

/// Why a command failed, naming the object at fault.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A call to the API server failed (other than a 404).
    #[error("{what}: {error}")]
    Kube {
        /// What was asked for (`strategy default/btc`).
        what: String,
        /// The client's error.
        error: kube::Error,
    },
    /// Something the command needs is missing (an object, a pending escalation, the API token):
    /// the whole message.
    #[error("{0}")]
    NotFound(String),
    /// Writing the report bundle failed.
    #[error("{what}: {error}")]
    Io {
        /// The file or directory being written.
        what: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The coordinator's API, reached through the service proxy, refused or could not answer.
    #[error("{what}: {message}")]
    Coordinator {
        /// What was asked of it (`decision <id>`).
        what: String,
        /// Its answer or the reason there was none.
        message: String,
    },
}

impl PluginError {
    fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |error| match &error {
            kube::Error::Api(status) if status.code == 404 => {
                PluginError::NotFound(format!("{what}: not found"))
            }
            _ => PluginError::Kube { what, error },
        }
    }
}

/// The Strategy `name` in `namespace`, or an error naming it.
async fn strategy(client: &Client, namespace: &str, name: &str) -> Result<Strategy, PluginError> {
    Api::<Strategy>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(PluginError::kube(format!("strategy {namespace}/{name}")))
}

/// The TradingAssistants of `namespace` bound to Strategy `strategy`.
async fn assistants_of(
    client: &Client,
    namespace: &str,
    strategy: &str,
) -> Result<Vec<TradingAssistant>, PluginError> {
    Ok(
        Api::<TradingAssistant>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(PluginError::kube(format!(
                "tradingassistants in {namespace}"
            )))?
            .items
            .into_iter()
            .filter(|a| a.spec.strategy_ref.name == strategy)
            .collect(),
    )
}

/// How a command prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One screen for people.
    #[default]
    Text,
    /// The same data as JSON, for scripts.
    Json,
    /// The same data as YAML.
    Yaml,
}

/// The command line of `kubectl ia-agents`: global flags and one command.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl ia-agents",
    version,
    about = "The ia-agents team from kubectl"
)]
pub struct Cli {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `kubectl ia-agents`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Team readiness, the last decision, pending escalations, equity and the assistants.
    Status {
        /// Name of the Strategy.
        strategy: String,
    },
    /// A decision's debate: every round, every opinion with its reasoning.
    Why {
        /// The decision id, as `status.lastDecision.id` or an escalation shows it.
        decision: String,
        /// The Strategy (default: the one whose decision ids start with its name).
        #[arg(long)]
        strategy: Option<String>,
    },
    /// Approve a pending escalation.
    Approve {
        /// The escalation (decision) id, as `status.pendingEscalations` lists it.
        id: String,
    },
    /// Reject a pending escalation.
    Reject {
        /// The escalation (decision) id, as `status.pendingEscalations` lists it.
        id: String,
    },
    /// Pause the Strategy: the whole team scales to zero (the kill switch).
    Pause {
        /// Name of the Strategy.
        strategy: String,
    },
    /// Resume a paused Strategy.
    Resume {
        /// Name of the Strategy.
        strategy: String,
    },
    /// Write a debug bundle: the CRs, their events, the children's status, recent logs.
    Report {
        /// Name of the Strategy.
        strategy: String,
        /// Where the bundle goes.
        #[arg(long, default_value = "ia-agents-report")]
        out: std::path::PathBuf,
    },
}

/// Runs one command in `namespace`; what it prints.
pub async fn run(
    client: Client,
    namespace: &str,
    output: Output,
    command: Command,
) -> Result<String, PluginError> {
    match command {
        Command::Status { strategy } => {
            let view = status(client, namespace, &strategy).await?;
            Ok(render(&view, output, status::text))
        }
        Command::Why { decision, strategy } => {
            let debate = why::debate(client, namespace, &decision, strategy.as_deref()).await?;
            Ok(render(&debate, output, why::text))
        }
        Command::Approve { id } => actions::answer(client, namespace, &id, true).await,
        Command::Reject { id } => actions::answer(client, namespace, &id, false).await,
        Command::Pause { strategy } => actions::pause(client, namespace, &strategy, true).await,
        Command::Resume { strategy } => actions::pause(client, namespace, &strategy, false).await,
        Command::Report { strategy, out } => report(client, namespace, &strategy, &out).await,
    }
}

/// JSON, YAML or the command's own text.
fn render<T: serde::Serialize>(value: &T, output: Output, text: fn(&T) -> String) -> String {
    match output {
        Output::Text => text(value),
        Output::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        Output::Yaml => serde_yaml::to_string(value).unwrap_or_default(),
    }
}
