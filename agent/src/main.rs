//! `trading-agent`: runs one assistant role, the coordinator, or the whole team locally.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The ia-agents agent. In a cluster the operator runs it once per pod with one role; outside a
/// cluster it reads the same Strategy and ConsensusPolicy manifests from files.
#[derive(Parser, Debug)]
#[command(name = "trading-agent", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a Strategy and ConsensusPolicy manifest pair exactly as the cluster would (schema, CEL
    /// rules, the policy reference) and print the effective configuration, defaults filled in, as JSON.
    CheckConfig {
        /// YAML file holding one Strategy.
        #[arg(long, value_name = "FILE", env = "IA_STRATEGY_FILE")]
        strategy_file: PathBuf,
        /// YAML file holding the ConsensusPolicy the Strategy references.
        #[arg(long, value_name = "FILE", env = "IA_POLICY_FILE")]
        policy_file: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::CheckConfig {
            strategy_file,
            policy_file,
        } => {
            let team = agent::config::TeamConfig::load(&strategy_file, &policy_file)?;
            let effective = serde_json::json!({
                "strategy": team.strategy,
                "consensusPolicy": team.policy,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&effective).context("printing the configuration")?
            );
        }
    }
    Ok(())
}
