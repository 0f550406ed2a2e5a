//! The reconcilers against kube-rs's mocked API (tower-test) serving an in-memory API server:
//! create, replica change, deletion, missing strategy and policy, dependencies not ready,
//! pause, error backoff, and condition transition times.

// a scenario test reads top to bottom; the 100-line limit is for the code under test
#![allow(clippy::too_many_lines)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use operator::controllers::{assistant, error_policy, policy, strategy, Context, Error};
use operator::decisions::DecisionWatchers;
use operator::fake_api::FakeApi;
use protocol::crd::{ConsensusPolicy, Strategy, TradingAssistant};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{sample, CRD, NS};

fn at(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
}

fn context(client: kube::Client) -> Context {
    let mut ctx = Context::new(client, "test", Arc::new(DecisionWatchers::disabled()));
    ctx.generate_password = || "generated-password".to_string();
    ctx.now = || at(1_000);
    ctx
}

fn read<K: serde::de::DeserializeOwned>(api: &FakeApi, kind: &str, name: &str) -> Arc<K> {
    let v = api
        .get(CRD, kind, NS, name)
        .unwrap_or_else(|| panic!("{kind} {name}"));
    Arc::new(serde_json::from_value(v).unwrap())
}

fn condition(object: &Value, type_: &str) -> Value {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} in {}", object["status"]))
}

fn events(api: &FakeApi) -> Vec<String> {
    api.all("Event")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["reason"].as_str().unwrap(),
                e["note"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// A Strategy with its policy, reconciled until its finalizer is on and its children applied.
async fn reconcile_strategy(
    api: &FakeApi,
    ctx: &Arc<Context>,
    name: &str,
) -> Result<Action, Error> {
    let mut last = None;
    for _ in 0..2 {
        last = Some(strategy::reconcile(read(api, "Strategy", name), ctx.clone()).await);
    }
    last.unwrap()
}

fn set_ready(api: &FakeApi, api_version: &str, kind: &str, name: &str, ready: i32) {
    api.update(api_version, kind, NS, name, |o| {
        let generation = o["metadata"]["generation"].clone();
        let replicas = o["spec"]["replicas"].as_i64().unwrap_or(1);
        o["status"] = json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": ready, "updatedReplicas": replicas, "availableReplicas": ready});
    });
}

#[tokio::test]
async fn an_assistant_gets_a_deployment_and_its_status_follows_the_pods() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("strategy.yaml", 0));
    api.insert(sample("team.yaml", 0));

    let action = assistant::reconcile(
        read(&api, "TradingAssistant", "market-monitor"),
        ctx.clone(),
    )
    .await
    .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let d = api
        .get("apps/v1", "Deployment", NS, "market-monitor-assistant")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["metadata"]["ownerReferences"][0]["kind"],
        "TradingAssistant"
    );
    assert_eq!(d["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(api
        .get("v1", "ConfigMap", NS, "market-monitor-params")
        .is_some());
    // its pods' NetworkPolicy, owned like the Deployment and applied before it
    let policy = api
        .get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            NS,
            "market-monitor-assistant",
        )
        .unwrap();
    assert_eq!(
        policy["metadata"]["ownerReferences"][0]["kind"],
        "TradingAssistant"
    );
    assert_eq!(
        policy["spec"]["podSelector"], d["spec"]["selector"],
        "it guards the Deployment's pods"
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let order: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("/networkpolicies/") || r.contains("/deployments/"))
        .collect();
    assert!(order[0].contains("/networkpolicies/"), "{order:?}");
    // applied with server-side apply under the operator's field manager
    let patch = api
        .requests()
        .into_iter()
        .find(|r| r.contains("/deployments/"))
        .unwrap();
    assert!(patch.starts_with("PATCH"), "{patch}");

    let ta = api
        .get(CRD, "TradingAssistant", NS, "market-monitor")
        .unwrap();
    let ready = condition(&ta, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PodsNotReady"))
    );
    assert_eq!(
        ta["status"]["selector"]
            .as_str()
            .unwrap()
            .split(',')
            .count(),
        4
    );
    assert!(
        events(&api).iter().any(|e| e.starts_with("Applied")),
        "{:?}",
        events(&api)
    );

    // `kubectl scale ta/market-monitor --replicas=3` writes spec.replicas through the scale subresource
    api.update(CRD, "TradingAssistant", NS, "market-monitor", |o| {
        o["spec"]["replicas"] = json!(3);
        o["metadata"]["generation"] = json!(2);
    });
    assistant::reconcile(
        read(&api, "TradingAssistant", "market-monitor"),
        ctx.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("apps/v1", "Deployment", NS, "market-monitor-assistant")
            .unwrap()["spec"]["replicas"],
        3
    );
    // the Deployment controller brings the pods up
    set_ready(&api, "apps/v1", "Deployment", "market-monitor-assistant", 3);
    assistant::reconcile(
        read(&api, "TradingAssistant", "market-monitor"),
        ctx.clone(),
    )
    .await
    .unwrap();
    let ta = api
        .get(CRD, "TradingAssistant", NS, "market-monitor")
        .unwrap();
    assert_eq!(
        (
            ta["status"]["replicas"].as_i64(),
            ta["status"]["readyReplicas"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(condition(&ta, "Ready")["status"], "True");
    assert_eq!(
        condition(&ta, "Ready")["lastTransitionTime"],
        "1970-01-01T00:16:40Z"
    );
    assert_eq!(condition(&ta, "Progressing")["reason"], "RolloutComplete");
    assert_eq!(ta["status"]["observedGeneration"], 2);
    assert!(
        events(&api).iter().any(|e| e.starts_with("PodsReady")),
        "{:?}",
        events(&api)
    );

    // nothing changed: a further reconcile writes no status and keeps the transition time
    let mut later = context(ctx.client.clone());
    later.now = || at(5_000);
    let later = Arc::new(later);
    api.clear_requests();
    assistant::reconcile(read(&api, "TradingAssistant", "market-monitor"), later)
        .await
        .unwrap();
    assert!(
        !api.requests().iter().any(|r| r.ends_with("/status")),
        "{:?}",
        api.requests()
    );
    let ta = api
        .get(CRD, "TradingAssistant", NS, "market-monitor")
        .unwrap();
    assert_eq!(
        condition(&ta, "Ready")["lastTransitionTime"],
        "1970-01-01T00:16:40Z"
    );
}

#[tokio::test]
async fn an_assistant_without_its_strategy_waits_and_says_why() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("team.yaml", 1));
    let action = assistant::reconcile(
        read(&api, "TradingAssistant", "technical-analyst"),
        ctx.clone(),
    )
    .await
    .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
    let ta = api
        .get(CRD, "TradingAssistant", NS, "technical-analyst")
        .unwrap();
    let ready = condition(&ta, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("StrategyNotFound"))
    );
    assert!(ready["message"].as_str().unwrap().contains("btc-eth-paper"));
    assert!(api.all("Deployment").is_empty());
    assert!(events(&api)
        .iter()
        .any(|e| e.starts_with("StrategyNotFound")));

    // the Strategy appears: the next reconcile converges
    api.insert(sample("strategy.yaml", 0));
    assistant::reconcile(read(&api, "TradingAssistant", "technical-analyst"), ctx)
        .await
        .unwrap();
    assert_eq!(api.all("Deployment").len(), 1);
    let ta = api
        .get(CRD, "TradingAssistant", NS, "technical-analyst")
        .unwrap();
    assert_eq!(condition(&ta, "Ready")["reason"], "PodsNotReady");
}

/// The names of the environment variables of a Deployment's first container.
fn env_names(api: &FakeApi, deployment: &str) -> Vec<String> {
    let d = api.get("apps/v1", "Deployment", NS, deployment).unwrap();
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let env = env.as_array().cloned().unwrap_or_default();
    env.iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// The sample team's executor (document 5) and auditor (6) of `team.yaml`.
const EXECUTOR: usize = 5;
const AUDITOR: usize = 6;

#[tokio::test]
async fn the_executor_and_auditor_become_services_once_both_are_in_the_team() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("strategy.yaml", 0));
    api.insert(sample("team.yaml", EXECUTOR));
    assert_eq!(sample("team.yaml", EXECUTOR)["spec"]["role"], "executor");
    assistant::reconcile(read(&api, "TradingAssistant", "executor"), ctx.clone())
        .await
        .unwrap();
    let alone = env_names(&api, "executor-assistant");
    assert!(!alone.iter().any(|n| n == "IA_DB"), "{alone:?}");

    // the auditor joins: both run as services of their own, with the database
    api.insert(sample("team.yaml", AUDITOR));
    for name in ["executor", "auditor"] {
        assistant::reconcile(read(&api, "TradingAssistant", name), ctx.clone())
            .await
            .unwrap();
    }
    let executor = env_names(&api, "executor-assistant");
    assert!(executor.iter().any(|n| n == "IA_DB") && executor.iter().any(|n| n == "PGPASSWORD"));
    assert!(
        !executor.iter().any(|n| n == "IA_AUDIT_KEY"),
        "{executor:?}"
    );
    let auditor = env_names(&api, "auditor-assistant");
    for name in ["IA_DB", "PGPASSWORD", "IA_AUDIT_KEY"] {
        assert!(auditor.iter().any(|n| n == name), "{name}: {auditor:?}");
    }

    // the services list their team to know; a role that is never a service does not ask
    let listed = |api: &FakeApi| {
        let lists = |r: &String| r.starts_with("GET") && r.ends_with("/tradingassistants");
        api.requests().iter().any(lists)
    };
    assert!(listed(&api), "{:?}", api.requests());
    api.insert(sample("team.yaml", 0));
    api.clear_requests();
    assistant::reconcile(read(&api, "TradingAssistant", "market-monitor"), ctx)
        .await
        .unwrap();
    assert!(!listed(&api), "{:?}", api.requests());
}

#[test]
fn an_executor_or_auditor_that_comes_or_goes_concerns_the_other_only() {
    let team: Vec<Arc<TradingAssistant>> = (0..7)
        .map(|i| Arc::new(serde_json::from_value(sample("team.yaml", i)).unwrap()))
        .collect();
    let names = |changed: usize| -> Vec<String> {
        assistant::service_partners(&team, &team[changed])
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    assert_eq!(names(AUDITOR), ["executor"]);
    assert_eq!(names(EXECUTOR), ["auditor"]);
    assert!(names(4).is_empty(), "the strategist concerns no service");
    let mut elsewhere = (*team[AUDITOR]).clone();
    elsewhere.spec.strategy_ref.name = "other".into();
    assert!(assistant::service_partners(&team, &elsewhere).is_empty());
}

#[tokio::test]
async fn a_deleted_assistant_is_left_to_the_garbage_collector() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    let mut ta = sample("team.yaml", 0);
    ta["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    api.insert(ta);
    let action = assistant::reconcile(read(&api, "TradingAssistant", "market-monitor"), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[tokio::test]
async fn a_strategy_provisions_its_dependencies_and_is_ready_when_they_and_its_team_are() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("consensuspolicy.yaml", 0));
    api.insert(sample("strategy.yaml", 0));
    api.insert(sample("team.yaml", 0));

    let action = reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert_eq!(s["metadata"]["finalizers"], json!([strategy::FINALIZER]));
    for sts in ["btc-eth-paper-nats", "btc-eth-paper-postgres"] {
        assert!(
            api.get("apps/v1", "StatefulSet", NS, sts).is_some(),
            "{sts}"
        );
    }
    assert!(api
        .get("apps/v1", "Deployment", NS, "btc-eth-paper-coordinator")
        .is_some());
    // the coordinator's, and one for each managed dependency
    let mut policies: Vec<String> = api
        .all("NetworkPolicy")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    policies.sort();
    assert_eq!(
        policies,
        [
            "btc-eth-paper-coordinator",
            "btc-eth-paper-nats",
            "btc-eth-paper-postgres"
        ]
    );
    let secret = api
        .get("v1", "Secret", NS, "btc-eth-paper-postgres")
        .unwrap();
    assert_eq!(secret["stringData"]["password"], "generated-password");
    // the API's token: generated into a Secret of its own, wired into the coordinator, named in
    // the status
    let token = api
        .get("v1", "Secret", NS, "btc-eth-paper-api-token")
        .unwrap();
    assert_eq!(token["stringData"]["token"], "generated-password");
    assert_eq!(s["status"]["apiTokenSecret"], "btc-eth-paper-api-token");
    let coordinator = api
        .get("apps/v1", "Deployment", NS, "btc-eth-paper-coordinator")
        .unwrap();
    let env = &coordinator["spec"]["template"]["spec"]["containers"][0]["env"];
    let var = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {env}"))
    };
    assert_eq!(
        var("IA_API_TOKEN")["valueFrom"]["secretKeyRef"],
        json!({"name": "btc-eth-paper-api-token", "key": "token"})
    );
    assert_eq!(var("IA_API_READ_AUTH")["value"], "true");
    assert_eq!(
        var("IA_AUDIT_KEY")["valueFrom"]["secretKeyRef"],
        json!({"name": "btc-eth-paper-audit-key", "key": "key"})
    );
    assert!(api
        .get("v1", "Secret", NS, "btc-eth-paper-audit-key")
        .is_some());
    let deps = condition(&s, "DependenciesReady");
    assert_eq!(deps["status"], "False");
    assert!(
        deps["message"]
            .as_str()
            .unwrap()
            .contains("StatefulSet btc-eth-paper-nats: 0/1 ready"),
        "{deps}"
    );
    assert_eq!(condition(&s, "Ready")["reason"], "DependenciesNotReady");
    assert_eq!(s["status"]["assistants"], json!({"total": 1, "ready": 0}));

    // the dependencies and the coordinator come up; the team is not ready yet
    set_ready(&api, "apps/v1", "StatefulSet", "btc-eth-paper-nats", 1);
    set_ready(&api, "apps/v1", "StatefulSet", "btc-eth-paper-postgres", 1);
    set_ready(
        &api,
        "apps/v1",
        "Deployment",
        "btc-eth-paper-coordinator",
        1,
    );
    strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap();
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert_eq!(condition(&s, "DependenciesReady")["status"], "True");
    assert_eq!(condition(&s, "AssistantsReady")["reason"], "NotReady");
    assert!(condition(&s, "AssistantsReady")["message"]
        .as_str()
        .unwrap()
        .contains("market-monitor"));
    assert_eq!(condition(&s, "Ready")["reason"], "AssistantsNotReady");

    // its assistant becomes ready: the Strategy is Ready
    assistant::reconcile(
        read(&api, "TradingAssistant", "market-monitor"),
        ctx.clone(),
    )
    .await
    .unwrap();
    set_ready(&api, "apps/v1", "Deployment", "market-monitor-assistant", 1);
    assistant::reconcile(
        read(&api, "TradingAssistant", "market-monitor"),
        ctx.clone(),
    )
    .await
    .unwrap();
    let action = strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert_eq!(condition(&s, "Ready")["status"], "True", "{}", s["status"]);
    assert_eq!(s["status"]["assistants"], json!({"total": 1, "ready": 1}));
    assert!(
        events(&api).iter().any(|e| e.starts_with("Ready")),
        "{:?}",
        events(&api)
    );

    // the generated password is never regenerated
    let mut other = context(ctx.client.clone());
    other.generate_password = || "another-password".into();
    strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), Arc::new(other))
        .await
        .unwrap();
    let secret = api
        .get("v1", "Secret", NS, "btc-eth-paper-postgres")
        .unwrap();
    assert_eq!(secret["stringData"]["password"], "generated-password");
    let token = api
        .get("v1", "Secret", NS, "btc-eth-paper-api-token")
        .unwrap();
    assert_eq!(token["stringData"]["token"], "generated-password");
}

#[tokio::test]
async fn a_paused_strategy_scales_its_team_to_zero_and_says_so() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("consensuspolicy.yaml", 0));
    let mut s = sample("strategy.yaml", 0);
    s["spec"]["paused"] = json!(true);
    api.insert(s);
    api.insert(sample("team.yaml", 0));
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    assistant::reconcile(
        read(&api, "TradingAssistant", "market-monitor"),
        ctx.clone(),
    )
    .await
    .unwrap();
    let coordinator = api
        .get("apps/v1", "Deployment", NS, "btc-eth-paper-coordinator")
        .unwrap();
    assert_eq!(coordinator["spec"]["replicas"], 0);
    let assistant = api
        .get("apps/v1", "Deployment", NS, "market-monitor-assistant")
        .unwrap();
    assert_eq!(assistant["spec"]["replicas"], 0);
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert_eq!(condition(&s, "Paused")["status"], "True");
    assert_eq!(condition(&s, "Ready")["reason"], "Paused");
}

async fn told(received: &std::sync::Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    for _ in 0..250 {
        if received.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.lock().unwrap().clone()
}

#[tokio::test]
async fn the_kill_switch_is_told_to_the_notification_targets_and_their_secrets_stay_referenced() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    let (url, received) = test_support::webhook::serve().await;
    api.insert(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hooks", "namespace": NS},
        "data": {"ops": k8s_openapi::ByteString(url.clone().into_bytes())}}));
    api.insert(sample("consensuspolicy.yaml", 0));
    let mut s = sample("strategy.yaml", 0);
    s["spec"]["notifications"] = json!({"targets": [
        {"name": "ops", "kind": "webhook", "secretRef": {"name": "hooks", "key": "ops"}},
        {"name": "fills-only", "kind": "slack", "secretRef": {"name": "hooks", "key": "ops"}, "events": ["fill"]}
    ]});
    api.insert(s);
    api.insert(sample("team.yaml", 0));
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    // running: nothing to tell, and the coordinator reads each target from its Secret
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "a running team is not news"
    );
    let coordinator = api
        .get("apps/v1", "Deployment", NS, "btc-eth-paper-coordinator")
        .unwrap();
    let env = coordinator["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let ops = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "IA_NOTIFY_OPS")
        .unwrap();
    assert_eq!(
        ops["valueFrom"]["secretKeyRef"],
        json!({"name": "hooks", "key": "ops"})
    );
    assert!(
        !coordinator.to_string().contains(&url),
        "the address stays in its Secret"
    );

    api.update(CRD, "Strategy", NS, "btc-eth-paper", |o| {
        o["spec"]["paused"] = json!(true)
    });
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    let got = told(&received, 1).await;
    assert_eq!(
        got.len(),
        1,
        "told once, to the target that wants risk events: {got:?}"
    );
    assert_eq!(
        got[0]["details"],
        json!({"kind": "killSwitch", "engaged": true})
    );
    assert_eq!(got[0]["strategy"], format!("{NS}/btc-eth-paper"));

    api.update(CRD, "Strategy", NS, "btc-eth-paper", |o| {
        o["spec"]["paused"] = json!(false)
    });
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    let got = told(&received, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["details"]["engaged"], false);
}

#[tokio::test]
async fn a_strategy_with_a_missing_or_invalid_policy_is_not_ready_and_names_it() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("strategy.yaml", 0));
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    let ready = condition(&s, "Ready");
    assert_eq!(ready["reason"], "PolicyNotFound");
    assert!(ready["message"]
        .as_str()
        .unwrap()
        .contains("ConsensusPolicy balanced"));
    assert!(
        api.all("StatefulSet").is_empty(),
        "nothing runs without a policy"
    );

    // a policy stored before a stricter CRD, letting the executor vote
    let mut p = sample("consensuspolicy.yaml", 0);
    p["spec"]["voters"] = json!(["executor", "riskManager"]);
    api.insert(p);
    policy::reconcile(read(&api, "ConsensusPolicy", "balanced"), ctx.clone())
        .await
        .unwrap();
    let p = api.get(CRD, "ConsensusPolicy", NS, "balanced").unwrap();
    let valid = condition(&p, "Valid");
    assert_eq!(
        (valid["status"].as_str(), valid["reason"].as_str()),
        (Some("False"), Some("Invalid"))
    );
    assert!(
        valid["message"]
            .as_str()
            .unwrap()
            .contains("spec.voters: executor"),
        "{valid}"
    );
    strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap();
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert_eq!(condition(&s, "Ready")["reason"], "PolicyInvalid");

    // fixed: Valid, and the Strategy goes ahead
    api.update(CRD, "ConsensusPolicy", NS, "balanced", |p| {
        p["spec"]["voters"] = json!(["technicalAnalyst", "riskManager"]);
    });
    policy::reconcile(read(&api, "ConsensusPolicy", "balanced"), ctx.clone())
        .await
        .unwrap();
    let p = api.get(CRD, "ConsensusPolicy", NS, "balanced").unwrap();
    assert_eq!(condition(&p, "Valid")["status"], "True");
    strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(api.all("StatefulSet").len(), 2);
}

#[tokio::test]
async fn a_deleted_strategy_releases_its_finalizer() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("consensuspolicy.yaml", 0));
    api.insert(sample("strategy.yaml", 0));
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    api.update(CRD, "Strategy", NS, "btc-eth-paper", |s| {
        s["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    });
    let action = strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let s = api.get(CRD, "Strategy", NS, "btc-eth-paper").unwrap();
    assert_eq!(s["metadata"]["finalizers"], json!([]), "{}", s["metadata"]);
    assert!(events(&api).iter().any(|e| e.starts_with("Deleted")));
}

#[tokio::test]
async fn api_errors_are_retried_with_growing_backoff_and_name_the_object() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("strategy.yaml", 0));
    api.insert(sample("team.yaml", 0));
    let mut delays = Vec::new();
    for _ in 0..3 {
        api.fail_once("/deployments/market-monitor-assistant", 500);
        let ta: Arc<TradingAssistant> = read(&api, "TradingAssistant", "market-monitor");
        let error = assistant::reconcile(ta.clone(), ctx.clone())
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("Deployment trading/market-monitor-assistant"),
            "{error}"
        );
        delays.push(error_policy(ta, &error, ctx.clone()));
    }
    assert_eq!(
        delays,
        [1, 2, 4].map(|s| Action::requeue(Duration::from_secs(s)))
    );
    assert!(ctx.metrics.render().contains(
        "ia_operator_reconcile_errors_total{controller=\"TradingAssistant\",error=\"kube\"} 3"
    ));
    // success resets the backoff
    let ta: Arc<TradingAssistant> = read(&api, "TradingAssistant", "market-monitor");
    assistant::reconcile(ta.clone(), ctx.clone()).await.unwrap();
    api.fail_once("/deployments/market-monitor-assistant", 500);
    let error = assistant::reconcile(ta.clone(), ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(
        error_policy(ta, &error, ctx.clone()),
        Action::requeue(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn a_policy_is_valid_and_an_unreachable_nats_keeps_the_approve_annotation() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("consensuspolicy.yaml", 0));
    policy::reconcile(
        read::<ConsensusPolicy>(&api, "ConsensusPolicy", "balanced"),
        ctx.clone(),
    )
    .await
    .unwrap();
    let p = api.get(CRD, "ConsensusPolicy", NS, "balanced").unwrap();
    assert_eq!(
        condition(&p, "Valid")["message"],
        "5 voters, threshold 0.8, quorum 0.6, up to 3 rounds"
    );

    let mut s = sample("strategy.yaml", 0);
    s["spec"]["dependencies"]["nats"] = json!({"url": "nats://127.0.0.1:1"});
    s["metadata"]["annotations"] = json!({strategy::APPROVE_ANNOTATION: "cycle_1"});
    api.insert(s);
    let error = reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Strategy trading/btc-eth-paper"),
        "{error}"
    );
    let s: Arc<Strategy> = read(&api, "Strategy", "btc-eth-paper");
    assert_eq!(
        s.metadata.annotations.as_ref().unwrap()[strategy::APPROVE_ANNOTATION],
        "cycle_1"
    );
}

/// The values of a Secret as the fake API keeps it (`data`, base64), by key.
fn secret_data(api: &FakeApi, name: &str) -> std::collections::BTreeMap<String, String> {
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(api.get("v1", "Secret", NS, name).unwrap()).unwrap();
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// A managed NATS (issue 17): one nkey per identity generated once into
/// `<strategy>-nats-credentials`, kept across reconciles; the server's configuration lists their
/// public keys and nothing secret; no seed reaches a ConfigMap, a workload or the status.
#[tokio::test]
async fn a_managed_nats_gets_its_identities_generated_once_and_kept() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("consensuspolicy.yaml", 0));
    api.insert(sample("strategy.yaml", 0));
    api.insert(sample("team.yaml", 0));
    reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap();
    let seeds = secret_data(&api, "btc-eth-paper-nats-credentials");
    let mut identities: Vec<&str> = seeds.keys().map(String::as_str).collect();
    identities.sort_unstable();
    assert_eq!(
        identities,
        [
            "auditor",
            "coordinator",
            "executor",
            "fundamentalAnalyst",
            "marketMonitor",
            "operator",
            "riskManager",
            "strategist",
            "technicalAnalyst"
        ]
    );
    assert!(seeds.values().all(|s| s.starts_with("SU")), "user seeds");
    let config = api
        .get("v1", "ConfigMap", NS, "btc-eth-paper-nats")
        .unwrap();
    let conf = config["data"]["nats.conf"].as_str().unwrap().to_string();
    for (identity, seed) in &seeds {
        let public = nkeys::KeyPair::from_seed(seed).unwrap().public_key();
        assert_eq!(conf.matches(&public).count(), 1, "{identity}: {conf}");
    }
    let sts = api
        .get("apps/v1", "StatefulSet", NS, "btc-eth-paper-nats")
        .unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["-c", "/etc/nats/nats.conf"])
    );
    assert!(events(&api)
        .iter()
        .any(|e| e == "SecretCreated generated the NATS identities' nkeys in Secret btc-eth-paper-nats-credentials"));

    // reconciled again, by another replica: the same seeds, the same configuration, created once
    let other = Arc::new(context(ctx.client.clone()));
    for _ in 0..2 {
        strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), other.clone())
            .await
            .unwrap();
    }
    assert_eq!(secret_data(&api, "btc-eth-paper-nats-credentials"), seeds);
    let again = api
        .get("v1", "ConfigMap", NS, "btc-eth-paper-nats")
        .unwrap();
    assert_eq!(again["data"]["nats.conf"], conf.as_str());
    let creates = api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST") && r.ends_with("/secrets"))
        .count();
    assert_eq!(
        creates, 4,
        "Postgres, API token, audit key, NATS: once each"
    );

    // nothing but the Secret holds a seed
    let mut elsewhere = Vec::new();
    for kind in [
        "ConfigMap",
        "Deployment",
        "StatefulSet",
        "Strategy",
        "Event",
    ] {
        elsewhere.extend(api.all(kind));
    }
    let text = serde_json::to_string(&elsewhere).unwrap();
    for seed in seeds.values() {
        assert!(!text.contains(seed.as_str()), "a seed outside its Secret");
    }
}

/// An external NATS takes its identities from the Secret `credentialsSecretRef` names; a missing
/// Secret or key is named, never guessed.
#[tokio::test]
async fn an_external_nats_takes_its_identities_from_the_referenced_secret() {
    let (client, api) = FakeApi::start();
    let ctx = Arc::new(context(client));
    api.insert(sample("consensuspolicy.yaml", 0));
    let mut s = sample("strategy.yaml", 0);
    s["spec"]["dependencies"]["nats"] =
        json!({"url": "nats://127.0.0.1:1", "credentialsSecretRef": {"name": "team-ids"}});
    api.insert(s);
    let error = reconcile_strategy(&api, &ctx, "btc-eth-paper")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Strategy trading/btc-eth-paper: spec.dependencies.nats.credentialsSecretRef: Secret trading/team-ids not found"
    );
    assert_eq!(error.metric_label(), "credentials");
    let coordinator = nkeys::KeyPair::new_user().seed().unwrap();
    api.insert(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "team-ids", "namespace": NS},
        "stringData": {"coordinator": coordinator}}));
    let error = strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap_err();
    assert!(
        error.to_string().ends_with(
            "Secret trading/team-ids has no key operator (the operator's NATS identity)"
        ),
        "{error}"
    );
    assert!(!error.to_string().contains(&coordinator));
    let operator = nkeys::KeyPair::new_user().seed().unwrap();
    api.update("v1", "Secret", NS, "team-ids", |o| {
        o["stringData"]["operator"] = json!(operator);
    });
    strategy::reconcile(read(&api, "Strategy", "btc-eth-paper"), ctx.clone())
        .await
        .unwrap();
    assert!(api
        .get("v1", "Secret", NS, "btc-eth-paper-nats-credentials")
        .is_none());
    assert!(api
        .get("v1", "ConfigMap", NS, "btc-eth-paper-nats")
        .is_none());
    let d = api
        .get("apps/v1", "Deployment", NS, "btc-eth-paper-coordinator")
        .unwrap();
    let volumes = &d["spec"]["template"]["spec"]["volumes"];
    let seed = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| !v["secret"].is_null())
        .unwrap();
    assert_eq!(seed["secret"]["secretName"], "team-ids", "{volumes}");
    assert_eq!(
        seed["secret"]["items"],
        json!([{"key": "coordinator", "path": "coordinator.nk"}])
    );
}
