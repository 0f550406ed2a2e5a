//! `kubectl-ia_agents`: kubectl finds it on the PATH as `kubectl ia-agents`.

use clap::Parser;
use operator::plugin::{run, Cli};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = kube::Config::infer()
        .await
        .map_err(|e| anyhow::anyhow!("kubeconfig: {e}"))?;
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)?;
    let printed = run(client, &namespace, cli.output, cli.command).await?;
    print!("{printed}");
    Ok(())
}
