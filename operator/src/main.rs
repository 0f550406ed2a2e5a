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
    /// Print the CustomResourceDefinitions of the three kinds as YAML (apply them with
    /// `trading-operator crds | kubectl apply -f -`), or write one file per CRD with --out-dir.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing to stdout.
        #[arg(long, value_name = "DIR", env = "IA_CRDS_OUT_DIR")]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir: None } => {
            print!(
                "{}",
                operator::crdgen::crds_stream().context("rendering CRDs")?
            );
        }
        Command::Crds { out_dir: Some(dir) } => {
            for path in operator::crdgen::write_crds(&dir)
                .with_context(|| format!("writing CRDs into {}", dir.display()))?
            {
                eprintln!("wrote {path}");
            }
        }
    }
    Ok(())
}
