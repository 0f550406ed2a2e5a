//! NATS decentralised auth the NATS way (issue 17): a nats-server in operator (JWT) mode trusts an
//! operator, which signed an account, which signed one user JWT per component with that
//! component's permissions (`protocol::nats_auth::grants`, as for the nkey identities). Each
//! process takes its `.creds` file with `--nats-creds` (`IA_NATS_CREDS`): an assistant connects,
//! announces itself and answers an analyze request; its JWT does not let it publish a decision; a
//! missing or malformed file is refused at start naming the flag and the file, never its content;
//! `--help` shows no value of `IA_NATS_CREDS`. The JWTs are made here with `nkeys` (JWT v2:
//! base64url header and claims, signed ed25519 by the issuer's key).

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use agent::bus::auth::{grants, Grant, NatsAuth};
use agent::bus::nats::NatsBus;
use agent::bus::Bus;
use futures::StreamExt;
use nkeys::KeyPair;
use protocol::messages::{MarketSnapshot, Message, RoundRequest};
use protocol::subjects::Subjects;
use protocol::Role;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::nats::{output_within, NatsServer};
use test_support::processes::Killed;

const NAMESPACE: &str = "creds";
const STRATEGY: &str = "btc-eth-paper";

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trading-agent"))
}

/// base64url without padding, as JWTs are encoded.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A NATS JWT (v2) about `subject`, named `name`, with `nats` as its NATS claims, signed by
/// `issuer`.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    expiring_jwt(issuer, subject, name, nats, None)
}

/// [`jwt`], valid until `expires` (seconds since the epoch) when one is given.
fn expiring_jwt(
    issuer: &KeyPair,
    subject: &str,
    name: &str,
    nats: Value,
    expires: Option<i64>,
) -> String {
    let header = base64url(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let mut claims = json!({
        "jti": format!("{name}-{subject}"),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    if let Some(expires) = expires {
        claims["exp"] = json!(expires);
    }
    let signed = format!("{header}.{}", base64url(claims.to_string().as_bytes()));
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", base64url(&signature))
}

/// An account's claims: no limits, JetStream included when `jetstream`.
fn account_claims(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[limit] = json!(-1);
        }
    }
    json!({ "type": "account", "version": 2, "limits": limits })
}

/// A user's claims: the grant's subjects, and its answers to requests (once) when it serves them.
fn user_claims(grant: &Grant) -> Value {
    let mut claims = json!({
        "type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1,
        "pub": { "allow": grant.publish },
        "sub": { "allow": grant.subscribe },
    });
    if grant.allow_responses {
        claims["resp"] = json!({ "max": 1, "ttl": 0 });
    }
    claims
}

/// The `.creds` file of a user: its JWT and its seed, in nsc's blocks.
fn creds(jwt: &str, user: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    )
}

/// A nats-server in operator mode trusting `operator`, with the `account` and the system account
/// preloaded in a memory resolver; writes each grant's `.creds` file to `dir/<identity>.creds`,
/// its JWT valid until `users_expire` (seconds since the epoch) when given.
fn operator_mode(dir: &Path, grants: &[Grant], users_expire: Option<i64>) -> Option<NatsServer> {
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let system = KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "ia-operator",
        json!({ "type": "operator", "version": 2, "system_account": system.public_key() }),
    );
    let account_jwt = jwt(&operator, &account.public_key(), "ia", account_claims(true));
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        account_claims(false),
    );
    for grant in grants {
        let key = KeyPair::new_user();
        let user_jwt = expiring_jwt(
            &account,
            &key.public_key(),
            &grant.identity,
            user_claims(grant),
            users_expire,
        );
        let path = dir.join(format!("{}.creds", grant.identity));
        std::fs::write(path, creds(&user_jwt, &key)).unwrap();
    }
    let config = format!(
        "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {acc}: {account_jwt}\n  {sys}: {system_jwt}\n}}\n\
         jetstream {{ store_dir: \"{js}\" }}\n",
        sys = system.public_key(),
        acc = account.public_key(),
        js = dir.join("js").display(),
    );
    NatsServer::start_with_config(&config)
}

fn request() -> Message {
    let now = chrono::Utc::now().timestamp_millis();
    Message::RoundRequest(Box::new(RoundRequest {
        cycle_id: "creds-1".into(),
        round: 1,
        strategy: STRATEGY.into(),
        snapshot: MarketSnapshot::flat("BTCUSDT", 0, 1.0),
        debate: vec![],
        deadline: now + 10_000,
        round_timeout_ms: 5_000,
    }))
}

/// `trading-agent assistant` of the technical analyst on `url` (no further arguments).
fn assistant(url: &str) -> Command {
    let mut command = agent();
    command
        .args(["assistant", "--nats", url, "--namespace", NAMESPACE])
        .args(["--strategy", STRATEGY, "--role", "technicalAnalyst"])
        .env_remove("IA_NATS_CREDS")
        .env_remove("IA_NATS_NKEY_FILE");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_component_connects_with_its_creds_file_and_only_its_jwt_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = Subjects::new(NAMESPACE, STRATEGY).unwrap();
    let grants = grants(&subjects, &[Role::TechnicalAnalyst]);
    let team: Vec<Grant> = grants
        .into_iter()
        .filter(|g| ["coordinator", "technicalAnalyst"].contains(&g.identity.as_str()))
        .collect();
    assert_eq!(team.len(), 2);
    let Some(server) = operator_mode(dir.path(), &team, None) else {
        return;
    };
    let url = server.url();
    let analyst_creds = dir.path().join("technicalAnalyst.creds");
    let seed_of = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .find(|l| l.starts_with("SU"))
            .unwrap()
            .to_string()
    };
    let analyst_seed = seed_of(&analyst_creds);

    // no credentials: refused by the server
    let answer = test_support::nats::anonymous_answer(server.port);
    assert!(answer.contains("Authorization Violation"), "{answer}");

    // --help names IA_NATS_CREDS and never shows its value
    let help = output_within(
        {
            let mut c = agent();
            c.args(["assistant", "--help"])
                .env("IA_NATS_CREDS", &analyst_creds);
            c
        },
        Duration::from_secs(10),
    );
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--nats-creds <FILE>") && help.contains("IA_NATS_CREDS"),
        "{help}"
    );
    assert!(!help.contains(&*analyst_creds.to_string_lossy()), "{help}");

    // a missing and a malformed file: refused at start, naming the flag and the file only
    let missing = dir.path().join("missing.creds");
    let malformed = dir.path().join("malformed.creds");
    std::fs::write(&malformed, format!("not a creds file\n{analyst_seed}\n")).unwrap();
    for (file, why) in [
        (&missing, "No such file"),
        (&malformed, "not a NATS credentials file"),
    ] {
        let mut command = assistant(&url);
        command.arg("--nats-creds").arg(file);
        let out = output_within(command, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("--nats-creds {}", file.display())) && stderr.contains(why),
            "{stderr}"
        );
        assert!(!stderr.contains(&analyst_seed), "the seed shows: {stderr}");
    }
    // nor with another identity's flag
    let mut both = assistant(&url);
    both.arg("--nats-creds")
        .arg(&analyst_creds)
        .args(["--nats-user", "u"])
        .env("IA_NATS_PASSWORD", "p");
    let out = output_within(both, Duration::from_secs(10));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the assistant connects with its creds file (from the environment), announces itself and
    // answers the coordinator, which connects with its own
    let mut command = assistant(&url);
    command
        .env("IA_NATS_CREDS", &analyst_creds)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let _assistant = Killed(vec![command.spawn().unwrap()]);
    let coordinator = NatsBus::connect_as(
        &url,
        &NatsAuth::creds_file(&dir.path().join("coordinator.creds")).unwrap(),
        Some("coordinator"),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let present = loop {
        let present = coordinator
            .present(subjects.presence_scope())
            .await
            .unwrap();
        if !present.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break present;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(present.len(), 1, "the assistant announced itself");
    assert_eq!(present[0].role, Role::TechnicalAnalyst);
    let reply = coordinator
        .request(
            &subjects.analyze(Role::TechnicalAnalyst),
            &request(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    match reply {
        Some(Message::Opinion(opinion)) => {
            assert_eq!(
                (opinion.role, opinion.cycle_id.as_str()),
                (Role::TechnicalAnalyst, "creds-1")
            );
        }
        other => panic!("no opinion: {other:?}"),
    }

    // the analyst's JWT does not allow ….decision: the server refuses its publish and says so;
    // the coordinator's own decision gets through
    let mut seen = coordinator
        .client()
        .subscribe(subjects.decision())
        .await
        .unwrap();
    coordinator.client().flush().await.unwrap();
    let (events, mut refused) = tokio::sync::mpsc::unbounded_channel();
    let intruder = async_nats::ConnectOptions::with_credentials_file(&analyst_creds)
        .await
        .unwrap()
        .custom_inbox_prefix("_INBOX.technicalAnalyst")
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                let _ = events.send(event.to_string());
            }
        })
        .connect(&url)
        .await
        .unwrap();
    intruder
        .publish(subjects.decision(), "forged".into())
        .await
        .unwrap();
    intruder.flush().await.unwrap();
    let said = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event = refused.recv().await.unwrap();
            if event.contains("Permissions Violation") {
                break event;
            }
        }
    })
    .await
    .expect("the server says why");
    assert!(said.contains(&subjects.decision()), "{said}");
    coordinator
        .client()
        .publish(subjects.decision(), "decided".into())
        .await
        .unwrap();
    coordinator.client().flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), seen.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &first.payload[..],
        b"decided",
        "the forged decision got through"
    );
}

#[test]
fn a_process_whose_credentials_expire_stops_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = Subjects::new(NAMESPACE, STRATEGY).unwrap();
    let analyst: Vec<Grant> = grants(&subjects, &[Role::TechnicalAnalyst])
        .into_iter()
        .filter(|g| g.identity == "technicalAnalyst")
        .collect();
    let expires = chrono::Utc::now().timestamp() + 4;
    let Some(server) = operator_mode(dir.path(), &analyst, Some(expires)) else {
        return;
    };
    // the assistant connects (and waits for the coordinator's streams) until the server ends its
    // session at the JWT's expiry; reconnecting with the same file could never succeed, so it
    // stops, exits with an error that says what to do, and shows no secret
    let creds = dir.path().join("technicalAnalyst.creds");
    let mut command = assistant(&server.url());
    command.arg("--nats-creds").arg(&creds);
    let out = output_within(command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it went on: {stderr}");
    assert!(
        stderr.contains("ended the session of technicalAnalyst")
            && stderr.contains("Authentication Expired")
            && stderr.contains("renew its credentials"),
        "{stderr}"
    );
    assert!(
        chrono::Utc::now().timestamp() >= expires,
        "it stopped before the expiry: {stderr}"
    );
    let seed = std::fs::read_to_string(&creds).unwrap();
    let seed = seed.lines().find(|l| l.starts_with("SU")).unwrap();
    assert!(!stderr.contains(seed), "the seed shows: {stderr}");
}
