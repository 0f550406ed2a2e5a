//! `trading-agent audit verify`: checks every strategy's hash-chained audit log in a database, page
//! by page (memory stays constant on a log of millions of rows), naming the first row at fault in each
//! broken chain.

use agent::audit::{ChainBreak, ChainVerifier};
use agent::store::Store;
use anyhow::bail;
use std::collections::BTreeMap;

/// Rows read per query.
const PAGE: u32 = 10_000;

/// One strategy's chain as far as it was read.
#[derive(Default)]
struct Chain {
    verifier: ChainVerifier,
    broken: Option<ChainBreak>,
}

pub async fn verify_db(url: &str) -> anyhow::Result<()> {
    let store = Store::connect_existing(url).await?;
    let chains = verify_store(&store).await?;
    if chains.is_empty() {
        println!("{}: the audit log is empty", store.name());
        return Ok(());
    }
    let mut broken = 0;
    for (strategy, chain) in &chains {
        match &chain.broken {
            None => println!(
                "OK     strategy {strategy}: {} entries, chain intact",
                chain.verifier.verified()
            ),
            Some(at) => {
                broken += 1;
                println!("BROKEN strategy {strategy}: {at}");
            }
        }
    }
    if broken > 0 {
        bail!(
            "{}: {broken} of {} audit chains are broken",
            store.name(),
            chains.len()
        );
    }
    Ok(())
}

async fn verify_store(store: &Store) -> anyhow::Result<BTreeMap<String, Chain>> {
    let mut chains: BTreeMap<String, Chain> = BTreeMap::new();
    let mut pages = store.audit_pages(None, PAGE);
    let mut read = 0u64;
    while let Some(page) = pages.next().await? {
        read += page.len() as u64;
        for (strategy, entry) in page {
            let chain = chains.entry(strategy).or_default();
            if chain.broken.is_none() {
                chain.broken = chain.verifier.check(&entry).err();
            }
        }
        if read.is_multiple_of(10 * u64::from(PAGE)) {
            tracing::info!(rows = read, "verifying the audit log");
        }
    }
    Ok(chains)
}
