//! Live orders on Binance's spot API (the testnet by default): signed requests (HMAC-SHA256 of the
//! query with the API secret, `X-MBX-APIKEY` header, `timestamp` and `recvWindow`), market orders
//! and immediate-or-cancel limit orders, each idempotent by decision id: the order carries a client
//! order id derived from the decision id, and before placing one the client asks whether that id
//! already exists, so a replayed decision never trades twice. Every order is first held to the
//! symbol's trading rules from `exchangeInfo` ([`super::filters`]).
//!
//! Keys come from the environment (`IA_EXCHANGE_API_KEY`, `IA_EXCHANGE_API_SECRET`, which the
//! operator fills from the Strategy's `exchange.credentialsSecretRef`); they are never logged: the
//! `Debug` form of [`Credentials`] hides them.

use hmac::{Hmac, Mac};
use protocol::messages::{Fill, Order, OrderKind, Side};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;

use super::filters::SymbolFilters;

/// Binance's spot testnet, the default for `mode: live` without `exchange.baseUrl`.
pub const TESTNET: &str = "https://testnet.binance.vision";

/// Why a live order did not go through, naming the order and what the exchange said.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "exchange credentials: {0} is not set (from the Strategy's exchange.credentialsSecretRef)"
    )]
    /// The named environment variable is unset or blank.
    MissingCredential(&'static str),
    #[error("order {order}: Binance refused it ({code}): {message}")]
    /// Binance answered with an error code, or an order executed nothing.
    Rejected {
        /// The order's decision id.
        order: String,
        /// Binance's error code (negative; -2013 is "no such order"), or 0 when nothing executed.
        code: i64,
        /// Binance's `msg`, or the order's status when nothing executed.
        message: String,
    },
    #[error("order {order}: Binance rate limit (HTTP {status}); retry after {retry_after:?}")]
    /// Binance is rate-limiting this client (HTTP 429), or has banned it for a while (418).
    RateLimited {
        /// The order's decision id.
        order: String,
        /// 429 or 418.
        status: u16,
        /// The `Retry-After` header, when Binance sent one.
        retry_after: Option<Duration>,
    },
    #[error("order {order}: {url}: {reason}")]
    /// The request did not get through (or `exchangeInfo` answered with an error status).
    Http {
        /// The order's decision id.
        order: String,
        /// The URL called, without its query.
        url: String,
        /// The transport error or HTTP status.
        reason: String,
    },
    #[error("order {order}: unexpected reply from Binance: {reason}")]
    /// Binance's reply is not JSON, not a success, or lacks what a fill needs.
    Reply {
        /// The order's decision id.
        order: String,
        /// What was wrong with it.
        reason: String,
    },
    #[error("order {order}: not sent, it breaks {symbol}'s trading rules: {refusal}")]
    /// The order cannot be made to meet the symbol's trading rules, so it was not sent.
    Filtered {
        /// The order's decision id.
        order: String,
        /// The order's symbol.
        symbol: String,
        /// The rule it breaks.
        refusal: super::filters::FilterRefusal,
    },
    #[error("order {order}: {url}: {error}")]
    /// The symbol's trading rules could not be read from `exchangeInfo`.
    Rules {
        /// The order's decision id.
        order: String,
        /// The `exchangeInfo` URL.
        url: String,
        /// What is missing or wrong in the reply.
        error: super::filters::InfoError,
    },
}

/// The API key and secret.
#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    api_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { api_key: \"***\", api_secret: \"***\" }")
    }
}

impl Credentials {
    /// A key and secret as given (no check that they are set).
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
        }
    }

    /// From `IA_EXCHANGE_API_KEY` and `IA_EXCHANGE_API_SECRET`.
    pub fn from_env() -> Result<Self, LiveError> {
        let read = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(LiveError::MissingCredential(name))
        };
        Ok(Self::new(
            read(protocol::env::EXCHANGE_API_KEY)?,
            read(protocol::env::EXCHANGE_API_SECRET)?,
        ))
    }
}

/// Hex HMAC-SHA256 of `payload` with `secret`: Binance's request signature.
pub fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The client order id of a decision: short enough for Binance (`^[.A-Za-z0-9:/_-]{1,36}$`) and
/// the same every time for the same decision.
pub fn client_order_id(decision_id: &str) -> String {
    let digest = Sha256::digest(decision_id.as_bytes());
    format!("ia-{}", &hex::encode(digest)[..32])
}

/// A signed client of Binance's spot trading API.
#[derive(Debug, Clone)]
pub struct BinanceSpot {
    base_url: String,
    credentials: Credentials,
    http: reqwest::Client,
    recv_window_ms: u64,
    /// Each symbol's trading rules, read from `exchangeInfo` on its first order.
    rules: std::sync::Arc<tokio::sync::Mutex<HashMap<String, SymbolFilters>>>,
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

impl BinanceSpot {
    /// A client of `base_url` (e.g. [`TESTNET`]; a trailing `/` is ignored) with a 10 s request
    /// timeout and a 5 s `recvWindow`.
    pub fn new(base_url: &str, credentials: Credentials) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            recv_window_ms: 5_000,
            rules: Default::default(),
        }
    }

    /// `symbol`'s trading rules (`GET /api/v3/exchangeInfo`, public), fetched once and kept.
    pub async fn rules(&self, symbol: &str, order: &str) -> Result<SymbolFilters, LiveError> {
        let mut known = self.rules.lock().await;
        if let Some(rules) = known.get(symbol) {
            return Ok(rules.clone());
        }
        let path = "/api/v3/exchangeInfo";
        let url = format!("{}{path}", self.base_url);
        let http = |reason: String| LiveError::Http {
            order: order.to_string(),
            url: url.clone(),
            reason,
        };
        let reply = self
            .http
            .get(&url)
            .query(&[("symbol", symbol)])
            .send()
            .await
            .map_err(|e| http(e.without_url().to_string()))?;
        let status = reply.status();
        if !status.is_success() {
            return Err(http(format!("HTTP {status}")));
        }
        let info: serde_json::Value = reply
            .json()
            .await
            .map_err(|e| http(format!("not JSON: {}", e.without_url())))?;
        let rules =
            SymbolFilters::from_exchange_info(symbol, &info).map_err(|error| LiveError::Rules {
                order: order.to_string(),
                url: url.clone(),
                error,
            })?;
        known.insert(symbol.to_string(), rules.clone());
        Ok(rules)
    }

    fn signed_query(&self, params: &[(&str, String)]) -> String {
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        query.push(format!("recvWindow={}", self.recv_window_ms));
        query.push(format!(
            "timestamp={}",
            chrono::Utc::now().timestamp_millis()
        ));
        let query = query.join("&");
        let signature = sign(&self.credentials.api_secret, &query);
        format!("{query}&signature={signature}")
    }

    /// Sends a signed request; the JSON reply, or the exchange's error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        order: &str,
    ) -> Result<serde_json::Value, LiveError> {
        let url = format!("{}{path}?{}", self.base_url, self.signed_query(params));
        let shown = format!("{}{path}", self.base_url); // never the signed query
        let reply = self
            .http
            .request(method, &url)
            .header("X-MBX-APIKEY", &self.credentials.api_key)
            .send()
            .await
            .map_err(|e| LiveError::Http {
                order: order.to_string(),
                url: shown.clone(),
                reason: e.without_url().to_string(),
            })?;
        let status = reply.status().as_u16();
        if status == 429 || status == 418 {
            let retry_after = reply
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs);
            return Err(LiveError::RateLimited {
                order: order.to_string(),
                status,
                retry_after,
            });
        }
        let body: serde_json::Value = reply.json().await.map_err(|e| LiveError::Reply {
            order: order.to_string(),
            reason: format!("HTTP {status}: {e}"),
        })?;
        if let Some(code) = body.get("code").and_then(|c| c.as_i64()).filter(|c| *c < 0) {
            return Err(LiveError::Rejected {
                order: order.to_string(),
                code,
                message: body
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(LiveError::Reply {
                order: order.to_string(),
                reason: format!("HTTP {status}: {body}"),
            });
        }
        Ok(body)
    }

    /// What the account holds of `symbol`'s base asset, free and locked (`GET /api/v3/account`,
    /// signed), rounded down to the lot step: the position the book should show.
    pub async fn holding(&self, symbol: &str) -> Result<Decimal, LiveError> {
        let what = format!("account balance for {symbol}");
        let reply_error = |reason: String| LiveError::Reply {
            order: what.clone(),
            reason,
        };
        let rules = self.rules(symbol, &what).await?;
        let base = rules
            .base_asset
            .clone()
            .ok_or_else(|| reply_error(format!("exchangeInfo names no baseAsset for {symbol}")))?;
        let reply = self
            .call(reqwest::Method::GET, "/api/v3/account", &[], &what)
            .await?;
        let balances = parse_balances(&reply).map_err(reply_error)?;
        let held = balances.get(&base).copied().unwrap_or_default();
        rules
            .lot_floor(held)
            .ok_or_else(|| reply_error(format!("{base} balance {held} beyond exact decimals")))
    }

    /// Places `order` unless its decision already has an order at the exchange, and returns the
    /// fill (the volume-weighted price of its executions and the commission). Limit orders are
    /// immediate-or-cancel: they fill now, partly, or not at all (then `Rejected` with the status).
    /// The order is first conformed to the symbol's trading rules ([`SymbolFilters`]; a market
    /// order's notional priced at `reference_price`, the decision's close); one that cannot meet
    /// them is `Filtered` and never sent.
    pub async fn place(&self, order: &Order, reference_price: Decimal) -> Result<Fill, LiveError> {
        let rules = self.rules(&order.symbol, &order.decision_id).await?;
        let order =
            &rules
                .conform(order, reference_price)
                .map_err(|refusal| LiveError::Filtered {
                    order: order.decision_id.to_string(),
                    symbol: order.symbol.to_string(),
                    refusal,
                })?;
        let client_id = client_order_id(&order.decision_id);
        let existing = self
            .call(
                reqwest::Method::GET,
                "/api/v3/order",
                &[
                    ("symbol", order.symbol.to_string()),
                    ("origClientOrderId", client_id.clone()),
                ],
                &order.decision_id,
            )
            .await;
        let reply = match existing {
            // -2013: no such order: place it
            Err(LiveError::Rejected { code: -2013, .. }) => {
                let mut params = vec![
                    ("symbol", order.symbol.to_string()),
                    ("side", side(order.side).to_string()),
                    ("quantity", order.quantity.normalize().to_string()),
                    ("newClientOrderId", client_id),
                    ("newOrderRespType", "FULL".to_string()),
                ];
                match order.kind {
                    OrderKind::Market => params.push(("type", "MARKET".into())),
                    OrderKind::Limit => {
                        let price = order.limit_price.ok_or_else(|| LiveError::Reply {
                            order: order.decision_id.to_string(),
                            reason: "a limit order without a limit price".into(),
                        })?;
                        params.push(("type", "LIMIT".into()));
                        params.push(("timeInForce", "IOC".into()));
                        params.push(("price", price.normalize().to_string()));
                    }
                }
                self.call(
                    reqwest::Method::POST,
                    "/api/v3/order",
                    &params,
                    &order.decision_id,
                )
                .await?
            }
            Err(e) => return Err(e),
            Ok(known) => {
                tracing::info!(decision = %order.decision_id, "order already at the exchange; not placing it again");
                known
            }
        };
        self.fill_of(order, &reply)
    }

    fn fill_of(&self, order: &Order, reply: &serde_json::Value) -> Result<Fill, LiveError> {
        let bad = |reason: String| LiveError::Reply {
            order: order.decision_id.to_string(),
            reason,
        };
        let decimal = |field: &str| -> Result<Decimal, LiveError> {
            reply
                .get(field)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("field {field} is missing or not a number")))
        };
        let executed = decimal("executedQty")?;
        let status = reply
            .get("status")
            .and_then(|s| s.as_str())
            .unwrap_or_default();
        if executed.is_zero() {
            return Err(LiveError::Rejected {
                order: order.decision_id.to_string(),
                code: 0,
                message: format!("nothing executed (status {status})"),
            });
        }
        let quote = decimal("cummulativeQuoteQty")?;
        // checked: amounts at the edge of `Decimal` must not panic (`/` and `+` do on overflow)
        let price = quote
            .checked_div(executed)
            .map(|p| p.round_dp(8))
            .filter(|p| executed > Decimal::ZERO && *p > Decimal::ZERO)
            .ok_or_else(|| {
                bad(format!(
                    "cummulativeQuoteQty {quote} over executedQty {executed} is not a positive price"
                ))
            })?;
        let fee = reply
            .get("fills")
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("commission")?.as_str()?.parse::<Decimal>().ok())
            .try_fold(Decimal::ZERO, Decimal::checked_add)
            .ok_or_else(|| bad("the commissions overflow exact decimal arithmetic".into()))?;
        Ok(Fill {
            decision_id: order.decision_id.clone(),
            strategy: order.strategy.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            quantity: executed,
            price,
            fee,
            at: reply
                .get("transactTime")
                .or_else(|| reply.get("updateTime"))
                .and_then(|t| t.as_i64())
                .unwrap_or(order.at),
        })
    }
}

/// The balances of an account reply (`balances: [{asset, free, locked}]`), free + locked per
/// asset; an error names the entry that does not read.
pub fn parse_balances(reply: &serde_json::Value) -> Result<HashMap<String, Decimal>, String> {
    let entries = reply["balances"]
        .as_array()
        .ok_or("the account reply has no balances list")?;
    let mut balances = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let asset = entry["asset"]
            .as_str()
            .ok_or_else(|| format!("balances[{i}] has no asset"))?;
        let amount = |field: &str| -> Result<Decimal, String> {
            entry[field]
                .as_str()
                .and_then(|v| v.parse::<Decimal>().ok())
                .filter(|v| !v.is_sign_negative())
                .ok_or_else(|| format!("balances[{i}] ({asset}): {field} is not an amount"))
        };
        let total = amount("free")?
            .checked_add(amount("locked")?)
            .ok_or_else(|| format!("balances[{i}] ({asset}): beyond exact decimals"))?;
        balances.insert(asset.to_string(), total);
    }
    Ok(balances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::stream::arbitrary::{corrupt, decimal, json, mutate};
    use proptest::prelude::*;
    use protocol::messages::{decode, encode, Message};
    use serde_json::{json, Value};

    #[test]
    fn signatures_follow_binance_s_documented_example() {
        // the example of Binance's API documentation ("SIGNED endpoint examples for POST /api/v3/order")
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(
            sign(secret, query),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    #[test]
    fn client_ids_are_short_stable_and_keys_never_print() {
        let id = client_order_id("btc-eth-paper_BTCUSDT_1600000000000_schedule");
        assert_eq!(id.len(), 35);
        assert_eq!(
            id,
            client_order_id("btc-eth-paper_BTCUSDT_1600000000000_schedule")
        );
        assert_ne!(
            id,
            client_order_id("btc-eth-paper_BTCUSDT_1600000000000_alert")
        );
        let shown = format!("{:?}", Credentials::new("my-key", "my-secret"));
        assert!(
            !shown.contains("my-key") && !shown.contains("my-secret"),
            "{shown}"
        );
    }

    /// Found by the properties below: both amounts used to panic (`Decimal`'s `/` and `+`).
    #[test]
    fn replies_at_the_edge_of_decimal_are_errors_not_panics() {
        let order = market_order(Side::Buy, 7);
        let max = Decimal::MAX.to_string();
        let replies = [
            json!({"executedQty": "0.0000000000000000000000000001", "cummulativeQuoteQty": max}),
            json!({"executedQty": "1", "cummulativeQuoteQty": "1",
                   "fills": [{"commission": max}, {"commission": max}]}),
            json!({"executedQty": "-1", "cummulativeQuoteQty": "1"}),
        ];
        for reply in replies {
            let error = SPOT.with(|spot| spot.fill_of(&order, &reply)).unwrap_err();
            assert!(matches!(error, LiveError::Reply { .. }), "{error}");
        }
    }

    thread_local! {
        /// A client that never connects: only its reading of replies is exercised.
        static SPOT: BinanceSpot = BinanceSpot::new("http://127.0.0.1:9", Credentials::new("k", "s"));
    }

    fn market_order(side: Side, at: i64) -> Order {
        Order {
            decision_id: "d1".into(),
            strategy: "s".into(),
            symbol: "BTCUSDT".into(),
            side,
            kind: OrderKind::Market,
            quantity: Decimal::ONE,
            limit_price: None,
            at,
        }
    }

    /// An order reply (`newOrderRespType=FULL`) of a plausible execution, and the fill it makes.
    fn arb_reply() -> impl Strategy<Value = (Value, Fill)> {
        let commission = (1i64..1_000_000, 0u32..=8).prop_map(|(m, s)| Decimal::new(m, s));
        (
            (1i64..1_000_000_000, 0u32..=8).prop_map(|(m, s)| Decimal::new(m, s)),
            (1i64..1_000_000_000_000, 0u32..=8).prop_map(|(m, s)| Decimal::new(m, s)),
            prop::collection::vec(commission, 0..4),
            any::<i64>(),
            prop::sample::select(vec![Side::Buy, Side::Sell]),
        )
            .prop_map(|(executed, price, commissions, at, side)| {
                let quote = executed * price;
                let fills: Vec<Value> = commissions
                    .iter()
                    .map(|c| {
                        json!({"price": price.to_string(), "qty": executed.to_string(),
                        "commission": c.to_string(), "commissionAsset": "BNB"})
                    })
                    .collect();
                let reply = json!({"symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "ia-1",
                    "transactTime": at, "executedQty": executed.to_string(),
                    "cummulativeQuoteQty": quote.to_string(), "status": "FILLED", "fills": fills});
                let fill = Fill {
                    decision_id: "d1".into(),
                    strategy: "s".into(),
                    symbol: "BTCUSDT".into(),
                    side,
                    quantity: executed,
                    price,
                    fee: commissions.into_iter().sum(),
                    at,
                };
                (reply, fill)
            })
    }

    /// What reading a reply must guarantee: no panic, and a fill the bus would accept (positive
    /// quantity and price), or an error.
    fn check_total(reply: &Value, side: Side) -> Result<(), TestCaseError> {
        let order = market_order(side, 7);
        if let Ok(fill) = SPOT.with(|spot| spot.fill_of(&order, reply)) {
            let message = Message::Fill(fill);
            prop_assert_eq!(decode(&encode(&message)), Ok(message));
        }
        Ok(())
    }

    #[test]
    fn balances_read_free_plus_locked_and_bad_entries_are_named() {
        let reply = json!({"balances": [
            {"asset": "BTC", "free": "0.5", "locked": "0.25"},
            {"asset": "USDT", "free": "10", "locked": "0"}]});
        let balances = parse_balances(&reply).unwrap();
        assert_eq!(balances["BTC"], Decimal::new(75, 2));
        assert_eq!(balances["USDT"], Decimal::from(10));
        let bad = json!({"balances": [{"asset": "ETH", "free": "-1", "locked": "0"}]});
        assert_eq!(
            parse_balances(&bad).unwrap_err(),
            "balances[0] (ETH): free is not an amount"
        );
        assert!(parse_balances(&json!({})).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any JSON, or an account reply mutated anywhere, reads as balances or an error.
        #[test]
        fn account_replies_never_panic(any in json(), node in any::<usize>(), by in prop::option::of(json())) {
            let _ = parse_balances(&any);
            let mut reply = json!({"balances": [
                {"asset": "BTC", "free": "0.5", "locked": "0.25"},
                {"asset": "USDT", "free": "79228162514264337593543950335", "locked": "1"}]});
            mutate(&mut reply, node, by);
            let _ = parse_balances(&reply);
        }

        /// A plausible execution reads as its fill: the quantity, the average price, the fees.
        #[test]
        fn order_replies_read_as_their_fill((reply, fill) in arb_reply()) {
            let order = market_order(fill.side, 7);
            prop_assert_eq!(SPOT.with(|spot| spot.fill_of(&order, &reply)).unwrap(), fill);
        }

        /// Quantities, quote amounts and commissions of any size or sign: a valid fill or an error.
        #[test]
        fn extreme_amounts_never_panic(executed in decimal(), quote in decimal(), commissions in prop::collection::vec(decimal(), 0..4)) {
            let fills: Vec<Value> = commissions.iter().map(|c| json!({"commission": c.to_string()})).collect();
            let reply = json!({"executedQty": executed.to_string(), "cummulativeQuoteQty": quote.to_string(),
                "status": "FILLED", "fills": fills});
            check_total(&reply, Side::Buy)?;
        }

        /// A reply with any field replaced by any JSON value, or removed, or corrupted text read
        /// as JSON: never a panic.
        #[test]
        fn mutated_order_replies_never_panic((mut reply, fill) in arb_reply(), node in any::<usize>(), by in prop::option::of(json()), flip in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            if let Ok(corrupted) = serde_json::from_str::<Value>(&corrupt(&reply.to_string(), flip, byte, cut)) {
                check_total(&corrupted, fill.side)?;
            }
            mutate(&mut reply, node, by);
            check_total(&reply, fill.side)?;
        }
    }
}
