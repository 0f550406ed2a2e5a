//! `report STRATEGY --out DIR`: a debug bundle to attach to an issue, like `kubectl cnpg report`.
//! It holds the Strategy, its ConsensusPolicy and TradingAssistants, the events about them and their
//! children, the children's status and the pods' recent logs. Secrets are never read into it.

use super::PluginError;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use kube::Client;
use protocol::crd::ConsensusPolicy;
use serde_json::{json, Value};
use std::path::Path;

/// Lines of each container's log in the bundle.
const LOG_LINES: i64 = 200;

/// Writes the bundle under `out`; what was written.
pub async fn report(
    client: Client,
    namespace: &str,
    strategy: &str,
    out: &Path,
) -> Result<String, PluginError> {
    let what = format!("strategy {namespace}/{strategy}");
    let s = super::strategy(&client, namespace, strategy).await?;
    let policy_name = s.spec.consensus_policy_ref.name.clone();
    let policy = Api::<ConsensusPolicy>::namespaced(client.clone(), namespace)
        .get_opt(&policy_name)
        .await
        .map_err(PluginError::kube(format!(
            "consensuspolicy {namespace}/{policy_name}"
        )))?;
    let assistants = super::assistants_of(&client, namespace, strategy).await?;
    let children =
        ListParams::default().labels(&format!("trading.ia-agents.dev/strategy={strategy}"));
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&children)
        .await
        .map_err(PluginError::kube(format!("deployments of {what}")))?
        .items;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&children)
        .await
        .map_err(PluginError::kube(format!("pods of {what}")))?
        .items;
    let mut names: Vec<String> = vec![strategy.to_string(), policy_name.clone()];
    names.extend(assistants.iter().filter_map(|a| a.metadata.name.clone()));
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(PluginError::kube(format!("events in {namespace}")))?
        .items
        .into_iter()
        .filter(|e| {
            let name = e.involved_object.name.clone().unwrap_or_default();
            names.contains(&name) || name.starts_with(&format!("{strategy}-"))
        })
        .collect();

    let logs_dir = out.join("logs");
    std::fs::create_dir_all(&logs_dir).map_err(io(&logs_dir))?;
    let mut written = vec![
        write_yaml(out, "strategy.yaml", &s)?,
        write_yaml(out, "consensuspolicy.yaml", &policy)?,
        write_yaml(out, "tradingassistants.yaml", &assistants)?,
        write_yaml(out, "events.yaml", &events)?,
        write_yaml(out, "children.yaml", &children_status(&deployments, &pods))?,
    ];
    let mut unavailable = Vec::new();
    let pod_api = Api::<Pod>::namespaced(client, namespace);
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let params = LogParams {
            tail_lines: Some(LOG_LINES),
            ..LogParams::default()
        };
        match pod_api.logs(&name, &params).await {
            Ok(log) => {
                let file = logs_dir.join(format!("{name}.log"));
                std::fs::write(&file, log).map_err(io(&file))?;
                written.push(file.display().to_string());
            }
            Err(error) => unavailable.push(format!("{name}: {error}")),
        }
    }
    if !unavailable.is_empty() {
        let file = logs_dir.join("UNAVAILABLE.txt");
        std::fs::write(&file, unavailable.join("\n") + "\n").map_err(io(&file))?;
        written.push(file.display().to_string());
    }
    Ok(format!(
        "wrote the report of {what} ({} events, {} deployments, {} pods; no Secret is read) to {}:\n  {}\n",
        events.len(),
        deployments.len(),
        pods.len(),
        out.display(),
        written.join("\n  ")
    ))
}

/// Each Deployment's and Pod's status, without their specs.
fn children_status(deployments: &[Deployment], pods: &[Pod]) -> Value {
    let status = |name: &Option<String>, status: Value| json!({"name": name, "status": status});
    json!({
        "deployments": deployments.iter().map(|d| status(&d.metadata.name, serde_json::to_value(&d.status).unwrap_or_default())).collect::<Vec<_>>(),
        "pods": pods.iter().map(|p| status(&p.metadata.name, serde_json::to_value(&p.status).unwrap_or_default())).collect::<Vec<_>>(),
    })
}

fn write_yaml<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<String, PluginError> {
    let file = dir.join(name);
    let text = serde_yaml::to_string(value).unwrap_or_default();
    std::fs::write(&file, text).map_err(io(&file))?;
    Ok(file.display().to_string())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PluginError + '_ {
    move |error| PluginError::Io {
        what: path.display().to_string(),
        error,
    }
}
