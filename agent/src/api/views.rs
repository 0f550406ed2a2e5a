//! The console's views of the record: the team (weights, health, last opinion), one decision with
//! its debate, the equity curve's query.

use super::guard::{self, Access};
use super::schema::{AssistantItem, DecisionView, Items, LastOpinion};
use super::{error, internal, ApiState, BadInput};
use crate::store::{PageQuery, MAX_CURVE_POINTS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use warp::http::StatusCode;
use warp::Reply;

use crate::team_health::HEALTHY_WITHIN_MS;

/// A route that takes no query parameters: refuses any.
pub(super) fn no_query(raw: &HashMap<String, String>) -> Result<PageQuery, BadInput> {
    match raw.keys().next() {
        Some(key) => Err(BadInput::new(
            key,
            format!("unknown query parameter {key:?}"),
        )),
        None => Ok(PageQuery::default()),
    }
}

/// `GET /api/v1/equity?limit=N`: how many of the latest snapshots (1 to [`MAX_CURVE_POINTS`]).
pub(super) fn curve_query(raw: &HashMap<String, String>) -> Result<PageQuery, BadInput> {
    let mut q = PageQuery::default();
    for (key, value) in raw {
        if key != "limit" {
            return Err(BadInput::new(
                key,
                format!("unknown query parameter {key:?}"),
            ));
        }
        let limit = value
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_CURVE_POINTS).contains(l))
            .ok_or_else(|| {
                BadInput::new(
                    "limit",
                    format!("limit: must be an integer between 1 and {MAX_CURVE_POINTS}"),
                )
            })?;
        q.limit = Some(limit);
    }
    Ok(q)
}

/// The team as the console shows it: every assistant with a stored weight or a heartbeat, its
/// role, weight, last heartbeat, health, and its opinion in the latest decision's final round.
pub(super) async fn assistants(
    s: &ApiState,
) -> Result<Items<AssistantItem>, crate::store::StoreError> {
    let mut team: BTreeMap<String, AssistantItem> = BTreeMap::new();
    for w in s.store.weights(&s.strategy).await? {
        team.insert(w.assistant.clone(), w.into());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let presence = s.presence.read().unwrap_or_else(|e| e.into_inner()).clone();
    for beat in presence.iter().filter(|b| b.strategy == s.strategy) {
        let entry = team
            .entry(beat.assistant.clone())
            .or_insert_with(|| AssistantItem {
                assistant: beat.assistant.clone(),
                ..AssistantItem::default()
            });
        entry.role = Some(json!(beat.role));
        entry.instance = Some(beat.instance.clone());
        entry.last_seen = Some(beat.at);
    }
    for entry in team.values_mut() {
        entry.healthy = entry
            .last_seen
            .is_some_and(|at| now - at <= HEALTHY_WITHIN_MS);
    }
    for (name, opinion) in last_opinions(s).await? {
        if let Some(entry) = team.get_mut(&name) {
            entry.role.get_or_insert_with(|| opinion.role.clone());
            entry.last_opinion = Some(opinion);
        }
    }
    Ok(Items {
        items: team.into_values().collect(),
    })
}

/// Each assistant's opinion in the final round of the latest stored decision.
async fn last_opinions(
    s: &ApiState,
) -> Result<Vec<(String, LastOpinion)>, crate::store::StoreError> {
    let latest = PageQuery {
        limit: Some(1),
        ..PageQuery::default()
    };
    let Some(id) = s
        .store
        .decisions_page(&s.strategy, &latest)
        .await?
        .into_iter()
        .next()
        .map(|d| d.id)
    else {
        return Ok(Vec::new());
    };
    let Some(decision) = s.store.decision(&s.strategy, &id).await? else {
        return Ok(Vec::new());
    };
    let transcript: Vec<Value> = serde_json::from_str(&decision.transcript).unwrap_or_default();
    let last_round = transcript
        .iter()
        .filter_map(|o| o["round"].as_u64())
        .max()
        .unwrap_or(0);
    Ok(transcript
        .into_iter()
        .filter(|o| o["round"].as_u64() == Some(last_round))
        .map(|o| {
            let name = o["assistant"].as_str().unwrap_or_default().to_string();
            let view = LastOpinion {
                decision_id: id.clone(),
                role: o["role"].clone(),
                action: o["action"].clone(),
                confidence: o["confidence"].clone(),
                reasoning: o["reasoning"].clone(),
            };
            (name, view)
        })
        .collect())
}

/// What a decision request presents.
pub(super) struct DecisionRequest {
    pub id: String,
    pub client: Option<SocketAddr>,
    pub authorization: Option<String>,
}

/// `GET /api/v1/decisions/{id}`: the decision with every round's tally and its debate.
pub(super) async fn decision(request: DecisionRequest, s: ApiState) -> warp::reply::Response {
    let token = guard::bearer(request.authorization.as_deref());
    if let Err(refused) = s.admit(request.client, Access::Read, token, s.read_auth) {
        return refused.response();
    }
    let id = request.id;
    if id.is_empty()
        || id.len() > 200
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return error(
            StatusCode::BAD_REQUEST,
            Some("id"),
            format!("id: {id:?} is not a decision id"),
        );
    }
    match s.store.decision(&s.strategy, &id).await {
        Ok(Some(found)) => warp::reply::json(&DecisionView::from(found)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            Some("id"),
            format!(
                "id: no decision {id:?} of Strategy {} is stored (yet)",
                s.strategy
            ),
        ),
        Err(e) => internal("reading the decision", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::arb_query;
    use proptest::prelude::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_curve_takes_only_a_bounded_limit() {
        assert_eq!(
            curve_query(&query(&[("limit", "10")])).unwrap().limit,
            Some(10)
        );
        assert_eq!(curve_query(&query(&[])).unwrap().limit, None);
        let bad = curve_query(&query(&[("limit", "0")])).unwrap_err();
        assert_eq!(bad.field, "limit");
        let unknown = curve_query(&query(&[("symbol", "BTCUSDT")])).unwrap_err();
        assert_eq!(unknown.field, "symbol");
        assert_eq!(no_query(&query(&[("x", "1")])).unwrap_err().field, "x");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Any query: the curve's bounded limit, or a 400 naming a parameter the query holds; a
        /// route without parameters takes only the empty query.
        #[test]
        fn any_query_of_the_curve_and_plain_routes_is_bounded_or_names_its_fault(raw in arb_query()) {
            match curve_query(&raw) {
                Ok(q) => {
                    prop_assert!(raw.keys().all(|k| k == "limit"));
                    prop_assert!(q.limit.is_none_or(|l| (1..=MAX_CURVE_POINTS).contains(&l)));
                    prop_assert_eq!(q.limit, raw.get("limit").map(|v| v.parse::<i64>().unwrap()));
                }
                Err(bad) => prop_assert!(raw.contains_key(&bad.field) && !bad.message.is_empty()),
            }
            match no_query(&raw) {
                Ok(q) => prop_assert!(raw.is_empty() && q == PageQuery::default()),
                Err(bad) => prop_assert!(raw.contains_key(&bad.field)),
            }
        }
    }
}
