//! `trading-agent audit verify`: checks every strategy's audit chain in a database, page by page,
//! naming the first row at fault in each broken chain; then checks every decision and order row
//! against the digest its audit entry committed to (an edit, insert or delete in those tables
//! shows), and, given the anchor (`--expect-head`, or the last one the coordinator published on
//! NATS with `--nats`), that the chain still reaches it (truncation or an emptied log shows). The
//! chain's key comes from `IA_AUDIT_KEY`.

use super::team::NatsCredentials;
use agent::audit::{AuditKey, ChainBreak, ChainVerifier};
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use agent::store::{Audited, Store};
use anyhow::{bail, Context};
use clap::Args;
use protocol::messages::Message;
use protocol::subjects::{Subjects, STREAM_AUDIT};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long `--nats` may take to connect.
const NATS_CONNECT: Duration = Duration::from_secs(10);

/// Where the anchor is read from instead of `--expect-head`.
#[derive(Args, Debug)]
pub struct AnchorArgs {
    /// Read the anchor from this NATS server: the last one the Strategy's coordinator published
    /// on ia.<namespace>.<strategy>.audit (stream IA_AUDIT) once the entries were stored; needs
    /// --strategy. Connects as the auditor's identity (--nats-nkey-file auditor.nk from
    /// `trading-agent nats-config`, or the auditor's --nats-creds file on a server in JWT mode).
    #[arg(
        long,
        value_name = "URL",
        requires = "strategy",
        conflicts_with = "expect_head"
    )]
    pub nats: Option<String>,
    /// Namespace of the team (the Kubernetes namespace in a cluster); first token of its subjects.
    #[arg(long, default_value = "default", env = protocol::env::NAMESPACE)]
    pub namespace: String,
    /// The Strategy whose chain must reach the anchor (with --expect-head: any strategy's may).
    #[arg(long)]
    pub strategy: Option<String>,
    #[command(flatten)]
    pub credentials: NatsCredentials,
}

/// The head a chain must still reach.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    /// The hash of the anchored entry.
    pub head: String,
    /// The chain's length when anchored (known from NATS, not from `--expect-head`).
    pub entries: Option<i64>,
    /// The strategy whose chain it is; `None`: any strategy's.
    pub strategy: Option<String>,
}

/// `audit verify`: the anchor from `--expect-head` or from NATS, then [`verify_db`].
pub async fn verify(db: &str, expect_head: Option<String>, from: AnchorArgs) -> anyhow::Result<()> {
    let anchor = match (&from.nats, expect_head) {
        (Some(url), _) => Some(anchor_from_nats(url, &from).await?),
        (None, Some(head)) => Some(Anchor {
            head,
            entries: None,
            strategy: from.strategy.clone(),
        }),
        (None, None) => None,
    };
    verify_db(db, anchor.as_ref()).await
}

/// The last anchor on the team's `….audit` subject.
async fn anchor_from_nats(url: &str, from: &AnchorArgs) -> anyhow::Result<Anchor> {
    let strategy = from.strategy.clone().context("--nats needs --strategy")?;
    let subjects = Subjects::new(&from.namespace, &strategy)?;
    let subject = subjects.audit();
    let server = agent::store::redact(url);
    let auth = from.credentials.auth()?;
    let bus = tokio::time::timeout(
        NATS_CONNECT,
        NatsBus::connect_as(url, &auth, Some("auditor")),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "--nats {server}: no connection within {} s",
            NATS_CONNECT.as_secs()
        )
    })?
    .with_context(|| format!("--nats {server}"))?;
    let anchor = match bus.last_durable(&subject).await? {
        Some(Message::AuditHead(anchor)) => anchor,
        Some(other) => bail!(
            "{subject} on {server} holds a {} message, not an audit anchor",
            other.type_name()
        ),
        None => bail!(
            "no audit anchor on {subject} (stream {STREAM_AUDIT}) at {server}: the coordinator of \
             Strategy {strategy} in namespace {} has not anchored its chain yet (it does once it \
             stores audit rows), or --namespace and --strategy name another team",
            from.namespace
        ),
    };
    if anchor.strategy != strategy {
        bail!(
            "{subject} on {server} holds the anchor of Strategy {:?}, not {strategy:?}",
            anchor.strategy
        );
    }
    println!(
        "anchor {subject}: {} entries, head {} ({}), stored at {}",
        anchor.entries,
        anchor.head,
        if anchor.keyed {
            "HMAC-keyed"
        } else {
            "UNKEYED"
        },
        chrono::DateTime::from_timestamp_millis(anchor.at)
            .map_or_else(|| anchor.at.to_string(), |t| t.to_rfc3339())
    );
    Ok(Anchor {
        head: anchor.head,
        entries: Some(i64::try_from(anchor.entries).unwrap_or(i64::MAX)),
        strategy: Some(strategy),
    })
}

/// Rows read per query.
const PAGE: u32 = 10_000;

/// One strategy's chain as far as it was read.
#[derive(Default)]
struct Chain {
    verifier: ChainVerifier,
    broken: Option<ChainBreak>,
    /// The seq of the entry with the expected head's hash, once seen.
    anchor: Option<i64>,
    last_seq: i64,
}

/// What the audit entries committed to, by (strategy, kind, subject): (seq, digest, matched).
type Commitments = HashMap<(String, &'static str, String), Vec<(i64, String, bool)>>;

/// Verifies every chain and row of the database at `url`, and that the chain reaches `anchor`.
pub async fn verify_db(url: &str, anchor: Option<&Anchor>) -> anyhow::Result<()> {
    let expect_head = anchor.map(|a| a.head.as_str());
    let key = AuditKey::from_env();
    if !key.is_keyed() {
        eprintln!(
            "warning: {} is not set: checking an unkeyed chain, which anyone who can write the database can re-hash",
            agent::audit::KEY_ENV
        );
    }
    let store = Store::connect_existing(url).await?;
    let (chains, mut commitments) = verify_chains(&store, &key, expect_head).await?;
    if chains.is_empty() {
        if expect_head.is_some() {
            bail!(
                "{}: the audit log is empty, but --expect-head says it had entries: it was emptied",
                store.name()
            );
        }
        println!("{}: the audit log is empty", store.name());
        return Ok(());
    }
    let mut faults = 0;
    for (strategy, chain) in &chains {
        match &chain.broken {
            None => println!(
                "OK     strategy {strategy}: {} entries, chain intact",
                chain.verifier.verified()
            ),
            Some(at) => {
                faults += 1;
                println!("BROKEN strategy {strategy}: {at}");
            }
        }
    }
    for problem in check_rows(&store, &mut commitments).await? {
        faults += 1;
        println!("BROKEN {problem}");
    }
    if let Some(anchor) = anchor {
        faults += check_anchor(&chains, anchor);
    }
    if faults > 0 {
        bail!("{}: {faults} audit problem(s) found", store.name());
    }
    Ok(())
}

/// Whether the chain (the anchor's strategy's, or any) reaches the anchor; the number of faults
/// (0 or 1).
fn check_anchor(chains: &BTreeMap<String, Chain>, anchor: &Anchor) -> usize {
    let head = &anchor.head;
    let whose = |strategy: &str| anchor.strategy.as_deref().is_none_or(|s| s == strategy);
    let found = chains
        .iter()
        .find(|(strategy, c)| whose(strategy) && c.anchor.is_some());
    let Some((strategy, chain)) = found else {
        let of = match &anchor.strategy {
            Some(strategy) => format!("of strategy {strategy} "),
            None => String::new(),
        };
        println!("BROKEN no intact entry {of}has the anchored head {head}: the chain was truncated or rewritten");
        return 1;
    };
    let seq = chain.anchor.unwrap_or_default();
    if let Some(entries) = anchor.entries.filter(|&e| e != seq) {
        println!(
            "BROKEN strategy {strategy}: the anchored head {head} is entry seq={seq}, but the anchor was taken at {entries} entries"
        );
        return 1;
    }
    let after = chain.last_seq - seq;
    println!(
        "OK     strategy {strategy}: the anchored head {head} is entry seq={seq}{}",
        if after > 0 {
            format!(" ({after} later entries are not anchored yet)")
        } else {
            String::new()
        }
    );
    0
}

async fn verify_chains(
    store: &Store,
    key: &AuditKey,
    expect_head: Option<&str>,
) -> anyhow::Result<(BTreeMap<String, Chain>, Commitments)> {
    let mut chains: BTreeMap<String, Chain> = BTreeMap::new();
    let mut commitments = Commitments::new();
    let mut pages = store.audit_pages(None, PAGE);
    let mut read = 0u64;
    while let Some(page) = pages.next().await? {
        read += page.len() as u64;
        for (strategy, entry) in page {
            let chain = chains.entry(strategy.clone()).or_insert_with(|| Chain {
                verifier: ChainVerifier::new(key.clone()),
                ..Chain::default()
            });
            chain.last_seq = entry.seq;
            if chain.broken.is_some() {
                continue;
            }
            chain.broken = chain.verifier.check(&entry).err();
            if chain.broken.is_some() {
                continue;
            }
            if expect_head == Some(entry.hash.as_str()) {
                chain.anchor = Some(entry.seq);
            }
            let kind = match entry.kind.as_str() {
                "decision" => "decision",
                "order" => "order",
                _ => continue,
            };
            // entries written before rows had digests commit to no row content
            let digest = serde_json::from_str::<serde_json::Value>(&entry.payload)
                .ok()
                .and_then(|p| p["digest"].as_str().map(str::to_string));
            if let Some(digest) = digest {
                commitments
                    .entry((strategy, kind, entry.subject.clone()))
                    .or_default()
                    .push((entry.seq, digest, false));
            }
        }
        if read.is_multiple_of(10 * u64::from(PAGE)) {
            tracing::info!(rows = read, "verifying the audit log");
        }
    }
    Ok((chains, commitments))
}

/// Every decision and order row against its entry's digest, then the entries no row answered.
async fn check_rows(store: &Store, commitments: &mut Commitments) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for (table, kind, name) in [
        (Audited::Decisions, "decision", "decisions"),
        (Audited::Orders, "order", "orders"),
    ] {
        let mut after: Option<(String, String)> = None;
        loop {
            let page = store
                .row_digests(
                    table,
                    after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())),
                    PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.0.clone(), last.1.clone()));
            for (strategy, id, digest) in page {
                let key = (strategy.clone(), kind, id.clone());
                match commitments.get_mut(&key) {
                    None => problems.push(format!(
                        "strategy {strategy}: {name} row {id} is in no audit entry (inserted behind the team's back, or its entry predates digests)"
                    )),
                    Some(entries) => match entries.iter_mut().find(|e| e.1 == digest) {
                        Some(entry) => entry.2 = true,
                        None => problems.push(format!(
                            "strategy {strategy}: {name} row {id} differs from what audit entry seq={} committed (edited)",
                            entries[0].0
                        )),
                    },
                }
            }
        }
    }
    let mut missing: Vec<_> = commitments
        .iter()
        .filter(|(_, entries)| entries.iter().all(|e| !e.2))
        .map(|((strategy, kind, id), entries)| (strategy, kind, id, entries[0].0))
        .collect();
    missing.sort();
    for (strategy, kind, id, seq) in missing {
        // an edited row was reported above; a row that is gone is reported here
        if !problems.iter().any(|p| p.contains(&format!(" row {id} "))) {
            problems.push(format!(
                "strategy {strategy}: audit entry seq={seq} names {kind} {id}, which is not in the store (deleted)"
            ));
        }
    }
    Ok(problems)
}
