//! `trading-agent audit verify`: checks every strategy's hash-chained audit log in a database.

use agent::audit::verify;
use agent::store::Store;
use anyhow::bail;
use std::collections::BTreeMap;

pub async fn verify_db(url: &str) -> anyhow::Result<()> {
    let store = Store::connect(url).await?;
    let mut chains: BTreeMap<String, Vec<agent::audit::AuditEntry>> = BTreeMap::new();
    for (strategy, entry) in store.audit_entries().await? {
        chains.entry(strategy).or_default().push(entry);
    }
    if chains.is_empty() {
        println!("{}: the audit log is empty", store.name());
        return Ok(());
    }
    let mut broken = 0;
    for (strategy, entries) in &chains {
        match verify(entries) {
            Ok(n) => println!("OK     strategy {strategy}: {n} entries, chain intact"),
            Err(at) => {
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
