//! `trading-operator`: the ia-agents Kubernetes operator.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The ia-agents operator: reconciles TradingAssistant, ConsensusPolicy and Strategy resources
/// (group trading.ia-agents.dev) into running, observable trading agents.
#[derive(Parser, Debug)]
#[command(name = "trading-operator", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controllers against the cluster (in-cluster config or KUBECONFIG): reconcile
    /// TradingAssistants, Strategies and ConsensusPolicies, consume each team's decisions from
    /// NATS into Strategy conditions, serve /healthz, /readyz and /metrics. Stops gracefully on
    /// SIGTERM.
    Run(operator::controllers::run::RunConfig),
    /// Print the CustomResourceDefinitions of the three kinds as YAML (apply them with
    /// `trading-operator crds | kubectl apply -f -`), or write one file per CRD with --out-dir.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing to stdout.
        #[arg(long, value_name = "DIR", env = "IA_CRDS_OUT_DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Print, as YAML, every object the operator would create for the given custom resources
    /// (Deployments, StatefulSets, Services, ConfigMaps, NetworkPolicies, Jobs): a dry run for
    /// GitOps reviews. A managed Postgres's password Secret is generated in the cluster, not here.
    Render {
        /// YAML files with Strategies, their ConsensusPolicies and TradingAssistants.
        #[arg(short = 'f', long = "filename", value_name = "FILE", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// The NetworkPolicies' peers, as `run` takes them.
        #[command(flatten)]
        network: operator::resources::network::NetworkPolicySettings,
    },
    /// Validate manifests offline against the CRDs of this build, as an API server would (schema,
    /// defaults, unknown fields, CEL rules). Objects of other API groups are skipped; one without
    /// apiVersion or kind, or of our kinds under an apiVersion this build does not serve, is invalid.
    /// Exits 1 when any object is invalid, naming the file, the object and each field at fault.
    Validate {
        /// YAML files to check (multi-document files are fine).
        #[arg(short = 'f', long = "filename", value_name = "FILE", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(config) => {
            init_logging();
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(operator::controllers::run::run(config))?;
        }
        Command::Crds { out_dir: None } => {
            print_out(&operator::crdgen::crds_stream().context("rendering CRDs")?)?;
        }
        Command::Crds { out_dir: Some(dir) } => {
            for path in operator::crdgen::write_crds(&dir)
                .with_context(|| format!("writing CRDs into {}", dir.display()))?
            {
                eprintln!("wrote {path}");
            }
        }
        Command::Render { files, network } => {
            let mut docs = Vec::new();
            for file in &files {
                docs.extend(operator::manifests::read_documents(file)?);
            }
            let mut text = String::new();
            for object in operator::render::render(&docs, &network)? {
                text.push_str("---\n");
                text.push_str(&serde_yaml::to_string(&object).context("printing YAML")?);
            }
            print_out(&text)?;
        }
        Command::Validate { files } => {
            if !validate(&files)? {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// Writes `text` to standard output. A reader that went away (`render | head -1`) ends the
/// process quietly with success, as for other Unix filters, instead of a panic.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        result => result.context("writing to standard output"),
    }
}

/// Logs to stderr: JSON when `IA_LOG_FORMAT=json` (as in the cluster), filtered by `RUST_LOG`.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var(protocol::env::LOG_FORMAT).as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Validates every ia-agents object in `files`; prints one line per object. Returns whether all were valid.
fn validate(files: &[PathBuf]) -> anyhow::Result<bool> {
    let validator = protocol::crd::validate::ManifestValidator::new();
    let mut all_valid = true;
    for file in files {
        for doc in operator::manifests::read_documents(file)? {
            if !operator::manifests::needs_validation(&doc.value, &validator) {
                println!(
                    "skipped {}: not a trading.ia-agents.dev object",
                    doc.describe()
                );
                continue;
            }
            match validator.validate(&doc.value, None) {
                Ok(()) => println!("valid   {}", doc.describe()),
                Err(err) => {
                    all_valid = false;
                    println!("INVALID {}", doc.describe());
                    for field_error in err.field_errors() {
                        println!("    {field_error}");
                    }
                    if err.field_errors().is_empty() {
                        println!("    {err}");
                    }
                }
            }
        }
    }
    Ok(all_valid)
}
