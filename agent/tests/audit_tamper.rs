//! The audit log under attack (issue 17): a backtest writes a keyed chain and its anchor
//! (`report.json`'s `audit.head`); each tampering is tried on a copy of the database and
//! `audit verify --expect-head` must fail naming it: tail truncation, an emptied log, an appended
//! forgery, an edit with the suffix re-hashed, edits to decisions and orders, a deleted decision,
//! the wrong key, a missing database.

use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::Command;

const KEY: &str = "test-audit-key-9f2c";

fn agent(args: &[&str], key: Option<&str>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
    c.args(args).env_remove("IA_AUDIT_KEY");
    if let Some(key) = key {
        c.env("IA_AUDIT_KEY", key);
    }
    c.output().unwrap()
}

/// A keyed backtest's database and its anchored head.
fn keyed_run(dir: &Path) -> (PathBuf, String) {
    let out = dir.join("run");
    let done = agent(
        &[
            "backtest",
            "--symbols",
            "BTCUSDT",
            "--from",
            "2020-04-01",
            "--to",
            "2020-05-31",
            "--out",
            out.to_str().unwrap(),
        ],
        Some(KEY),
    );
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("(HMAC-keyed)"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["audit"]["keyed"], true);
    let head = report["audit"]["head"].as_str().unwrap().to_string();
    assert!(stdout.contains(&head), "the head is printed");
    (out.join("ia-agents.db"), head)
}

/// `audit verify` of `db` with the anchor; (success, stdout + stderr).
fn verify(db: &Path, head: &str, key: Option<&str>) -> (bool, String) {
    let url = format!("sqlite://{}", db.display());
    let out = agent(
        &["audit", "verify", "--db", &url, "--expect-head", head],
        key,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A copy of `db` with `sql` applied.
async fn tampered(db: &Path, name: &str, sql: &[String]) -> PathBuf {
    let copy = db.with_file_name(format!("{name}.db"));
    std::fs::copy(db, &copy).unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    for statement in sql {
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    copy
}

/// The unkeyed hash a forger without the key can compute.
fn unkeyed(prev: &str, seq: i64, at: i64, kind: &str, subject: &str, payload: &str) -> String {
    agent::audit::entry_hash(
        &agent::audit::AuditKey::Unkeyed,
        prev,
        seq,
        at,
        kind,
        subject,
        payload,
    )
}

/// The statements that edit the first entry's payload and re-hash the whole chain after it, the
/// way a forger without the key can.
async fn rehashed_edit(db: &Path) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT seq, at, kind, subject, payload FROM audit_log ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut prev = agent::audit::GENESIS.to_string();
    let mut sql = Vec::new();
    for r in rows {
        let (seq, at, kind, subject, mut payload): (i64, i64, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if seq == 1 {
            payload = payload.replacen('{', "{\"edited\":true,", 1);
        }
        let hash = unkeyed(&prev, seq, at, &kind, &subject, &payload);
        sql.push(format!(
            "UPDATE audit_log SET payload = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {seq}",
            payload.replace('\'', "''")
        ));
        prev = hash;
    }
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_is_caught_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (db, head) = keyed_run(dir.path());
    let (ok, text) = verify(&db, &head, Some(KEY));
    assert!(ok, "{text}");
    assert!(
        text.contains("chain intact") && text.contains("anchored head"),
        "{text}"
    );

    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let last = sqlx::query("SELECT seq, at, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (last_seq, last_at, last_hash): (i64, i64, String) =
        (last.get(0), last.get(1), last.get(2));
    let decision: String = sqlx::query("SELECT id FROM decisions ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    let order: String = sqlx::query("SELECT decision_id FROM orders ORDER BY decision_id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    pool.close().await;

    let forged_hash = unkeyed(&last_hash, last_seq + 1, last_at, "order", "forged", "{}");
    // the first row's payload edited, and every hash from it on recomputed the unkeyed way
    let rehash = rehashed_edit(&db).await;
    let attacks: Vec<(&str, Vec<String>, String)> = vec![
        (
            "truncated",
            vec![format!("DELETE FROM audit_log WHERE seq = {last_seq}")],
            "was truncated or rewritten".into(),
        ),
        ("emptied", vec!["DELETE FROM audit_log".into()], "it was emptied".into()),
        (
            "appended",
            vec![format!(
                "INSERT INTO audit_log (strategy, seq, at, kind, subject, payload, prev_hash, hash) SELECT strategy, {}, {last_at}, 'order', 'forged', '{{}}', '{last_hash}', '{forged_hash}' FROM audit_log LIMIT 1",
                last_seq + 1
            )],
            format!("row seq={}: its content does not match", last_seq + 1),
        ),
        ("edited", rehash, "row seq=1: its content does not match".into()),
        (
            "decision-edited",
            vec![format!("UPDATE decisions SET action = CASE action WHEN 'BUY' THEN 'SELL' ELSE 'BUY' END WHERE id = '{decision}'")],
            format!("decisions row {decision} differs"),
        ),
        (
            "order-edited",
            vec![format!("UPDATE orders SET quantity = '999' WHERE decision_id = '{order}'")],
            format!("orders row {order} differs"),
        ),
        (
            "decision-deleted",
            vec![format!("DELETE FROM decisions WHERE id = '{decision}'")],
            format!("names decision {decision}, which is not in the store"),
        ),
        (
            "decision-inserted",
            vec![format!("INSERT INTO decisions (id, strategy, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, rounds, votes, price, decided_at, transcript) SELECT 'forged-decision', strategy, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, rounds, votes, price, decided_at, transcript FROM decisions WHERE id = '{decision}'")],
            "decisions row forged-decision is in no audit entry".into(),
        ),
    ];
    for (name, sql, expected) in attacks {
        let copy = tampered(&db, name, &sql).await;
        let (ok, text) = verify(&copy, &head, Some(KEY));
        assert!(!ok, "{name}: verify passed\n{text}");
        assert!(
            text.contains(&expected),
            "{name}: expected {expected:?}\n{text}"
        );
    }
    // without the key, or with another, the keyed chain does not verify
    let (ok, text) = verify(&db, &head, Some("another-key"));
    assert!(!ok && text.contains("row seq=1"), "{text}");
    let (ok, text) = verify(&db, &head, None);
    assert!(!ok && text.contains("IA_AUDIT_KEY is not set"), "{text}");
    // a database that is not there fails instead of being created
    let missing = dir.path().join("nowhere.db");
    let (ok, text) = verify(&missing, &head, Some(KEY));
    assert!(!ok && !missing.exists(), "{text}");
}
