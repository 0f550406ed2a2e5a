//! `trading-agent audit verify`: checks every strategy's audit chain in a database, page by page,
//! naming the first row at fault in each broken chain; then checks every decision and order row
//! against the digest its audit entry committed to (an edit, insert or delete in those tables
//! shows), and, given the anchor (`--expect-head`), that the chain still reaches it (truncation or an
//! emptied log shows). The chain's key comes from `IA_AUDIT_KEY`.

use agent::audit::{AuditKey, ChainBreak, ChainVerifier};
use agent::store::{Audited, Store};
use anyhow::bail;
use std::collections::{BTreeMap, HashMap};

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

pub async fn verify_db(url: &str, expect_head: Option<&str>) -> anyhow::Result<()> {
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
    if let Some(head) = expect_head {
        faults += check_anchor(&chains, head);
    }
    if faults > 0 {
        bail!("{}: {faults} audit problem(s) found", store.name());
    }
    Ok(())
}

/// Whether the chain reaches the anchor; the number of faults (0 or 1).
fn check_anchor(chains: &BTreeMap<String, Chain>, head: &str) -> usize {
    match chains.iter().find(|(_, c)| c.anchor.is_some()) {
        Some((strategy, chain)) => {
            let seq = chain.anchor.unwrap_or_default();
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
        None => {
            println!("BROKEN no intact entry has the anchored head {head}: the chain was truncated or rewritten");
            1
        }
    }
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
