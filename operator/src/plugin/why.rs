//! `why DECISION-ID`: the debate, from the coordinator's API (`GET /api/v1/decisions/{id}`) through
//! the Kubernetes API server's service proxy, so it needs nothing but kubectl's own access. The API
//! token comes from the Strategy's Secret and travels in `X-IA-Agents-Token` (the API server keeps
//! `Authorization` for itself).

use super::PluginError;
use kube::api::Api;
use kube::Client;
use serde_json::Value;
use std::fmt::Write;

/// The decision with its debate, as the coordinator's API returns it.
pub async fn debate(
    client: Client,
    namespace: &str,
    decision: &str,
    strategy: Option<&str>,
) -> Result<Value, PluginError> {
    // decision ids are `<strategy>_<SYMBOL>_<open time>_<trigger>`; a Strategy name has no `_`
    let strategy = strategy
        .or_else(|| decision.split_once('_').map(|(s, _)| s))
        .ok_or_else(|| {
            PluginError::NotFound(format!(
                "decision {decision}: not a decision id; name its Strategy with --strategy"
            ))
        })?;
    let what = format!("strategy {namespace}/{strategy}");
    let s = super::strategy(&client, namespace, strategy).await?;
    let secret_name = s
        .status
        .and_then(|st| st.api_token_secret)
        .unwrap_or_else(|| format!("{strategy}-api-token"));
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), namespace)
        .get(&secret_name)
        .await
        .map_err(PluginError::kube(format!(
            "secret {namespace}/{secret_name}"
        )))?;
    let token = secret
        .data
        .and_then(|d| {
            d.get("token")
                .map(|t| String::from_utf8_lossy(&t.0).trim().to_string())
        })
        .ok_or_else(|| {
            PluginError::NotFound(format!("secret {namespace}/{secret_name}: no key token"))
        })?;
    let path = format!(
        "/api/v1/namespaces/{namespace}/services/{strategy}-coordinator:http/proxy/api/v1/decisions/{}",
        encode(decision)
    );
    let request = http::Request::get(&path)
        .header("x-ia-agents-token", token)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| PluginError::Coordinator {
            what: format!("decision {decision}"),
            message: e.to_string(),
        })?;
    client
        .request::<Value>(request)
        .await
        .map_err(PluginError::kube(format!(
            "decision {decision} (from the coordinator of {what})"
        )))
}

/// Percent-encodes what is not unreserved in a URL path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each round with its opinions, and why the cycle ended.
pub fn text(d: &Value) -> String {
    let mut out = String::new();
    let by = d["resolvedBy"]
        .as_str()
        .map(|by| format!(" (answered by {by})"))
        .unwrap_or_default();
    let ended = if d["rejected"] == true {
        format!("rejected{by}: no order follows")
    } else if d["vetoed"] == true {
        "vetoed by a veto role".to_string()
    } else if d["escalated"] == true {
        format!("escalated to a human{by}")
    } else if d["consensusReached"] == true {
        "consensus".to_string()
    } else {
        "no consensus".to_string()
    };
    let _ = writeln!(
        out,
        "{} {} {} at {} (confidence {:.0}%): {ended}",
        d["id"].as_str().unwrap_or_default(),
        d["symbol"].as_str().unwrap_or_default(),
        d["action"].as_str().unwrap_or_default(),
        d["price"],
        100.0 * d["confidence"].as_f64().unwrap_or_default()
    );
    let transcript = d["transcript"].as_array().cloned().unwrap_or_default();
    for tally in d["rounds"].as_array().cloned().unwrap_or_default() {
        let round = tally["round"].as_u64().unwrap_or_default();
        let _ = writeln!(out, "\nround {round}: tally {}", tally["scores"]);
        for o in transcript
            .iter()
            .filter(|o| o["round"].as_u64() == Some(round))
        {
            let confidence = o["confidence"].as_f64().unwrap_or_default();
            let view = if confidence == 0.0 && o["veto"] != true {
                "abstains".to_string()
            } else {
                format!(
                    "{} {:.2}",
                    o["action"].as_str().unwrap_or_default(),
                    confidence
                )
            };
            let _ = writeln!(
                out,
                "  {:<22} {:<14}{}  {}",
                o["assistant"].as_str().unwrap_or_default(),
                view,
                if o["veto"] == true { " VETO" } else { "" },
                o["reasoning"].as_str().unwrap_or_default()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{encode, text};

    #[test]
    fn who_answered_an_escalation_is_said() {
        let answered = serde_json::json!({
            "id": "d1", "symbol": "BTCUSDT", "action": "BUY", "price": 100.0, "confidence": 0.6,
            "escalated": true, "resolvedBy": "http-api", "rounds": [], "transcript": [],
        });
        assert!(
            text(&answered).contains("escalated to a human (answered by http-api)"),
            "{}",
            text(&answered)
        );
        let timed_out = serde_json::json!({"id": "d2", "escalated": true, "rounds": []});
        assert!(text(&timed_out).contains(": escalated to a human\n"));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("s_BTCUSDT_1_schedule"), "s_BTCUSDT_1_schedule");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
