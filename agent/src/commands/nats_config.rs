//! `trading-agent nats-config`: a nats-server configuration for one team on a bare machine, and
//! one nkey seed file per component (`agent::bus::auth`): the same identities and permissions for
//! coordinator, executor, auditor, operator and each voting role.

use agent::bus::auth::{grants, server_config};
use agent::config::TeamConfig;
use anyhow::Context;
use clap::Args;
use protocol::subjects::Subjects;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct NatsConfigArgs {
    /// Namespace of the team (first token of its subjects).
    #[arg(long, default_value = "default", env = protocol::env::NAMESPACE)]
    namespace: String,
    /// The Strategy manifest (its name scopes the subjects).
    #[arg(long, value_name = "FILE", env = protocol::env::STRATEGY_FILE)]
    strategy_file: PathBuf,
    /// The ConsensusPolicy manifest (its voters get identities).
    #[arg(long, value_name = "FILE", env = protocol::env::POLICY_FILE)]
    policy_file: PathBuf,
    /// Where to write nats.conf and the <identity>.nk seed files (created; existing files are
    /// replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: NatsConfigArgs) -> anyhow::Result<()> {
    let team = TeamConfig::load(&args.strategy_file, &args.policy_file)?;
    let strategy = team.strategy.metadata.name.clone().unwrap_or_default();
    let subjects = Subjects::new(&args.namespace, &strategy)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let mut keyed = Vec::new();
    for grant in grants(&subjects, &team.policy.spec.voters) {
        let key = nkeys::KeyPair::new_user();
        let seed = key.seed().context("encoding an nkey seed")?;
        let path = args.out.join(format!("{}.nk", grant.identity));
        write_secret(&path, &seed)?;
        keyed.push((grant, key.public_key()));
    }
    let conf = args.out.join("nats.conf");
    std::fs::write(&conf, server_config(&keyed))
        .with_context(|| format!("writing {}", conf.display()))?;
    println!(
        "wrote {} and {} seed files in {} (start the server with: nats-server -js -c {}; each process takes its file with --nats-nkey-file)",
        conf.display(),
        keyed.len(),
        args.out.display(),
        conf.display()
    );
    Ok(())
}

/// Writes a seed readable by its owner only.
fn write_secret(path: &std::path::Path, seed: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{seed}").with_context(|| format!("writing {}", path.display()))
}
