//! Binance, locally: its REST klines and WebSocket kline stream formats on 127.0.0.1, for the tests
//! of everything that reads live candles (never the network), and its signed order endpoint, which
//! checks each request's HMAC-SHA256 signature itself (not with the client's code).

use futures::SinkExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use warp::Filter;

/// One minute, ms: the interval of the served candles.
pub const MINUTE: i64 = 60_000;

/// The open time of the minute now forming (UTC). Near the end of a minute it first waits for the
/// next one, so that the code under test, reading the clock a little later, sees the same minute.
pub async fn current_minute() -> i64 {
    let into_minute = chrono::Utc::now().timestamp_millis().rem_euclid(MINUTE);
    if into_minute > MINUTE - 10_000 {
        tokio::time::sleep(Duration::from_millis((MINUTE - into_minute) as u64 + 100)).await;
    }
    let now = chrono::Utc::now().timestamp_millis();
    now - now.rem_euclid(MINUTE)
}

/// A one-minute kline event of the combined stream, as Binance sends it.
pub fn kline_frame(open_time: i64, closed: bool) -> String {
    serde_json::json!({"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": open_time, "s": "BTCUSDT", "k": {
        "t": open_time, "T": open_time + MINUTE - 1, "s": "BTCUSDT", "i": "1m",
        "o": "100.0", "c": "101.0", "h": "102.0", "l": "99.0", "v": "5.0", "x": closed}}})
    .to_string()
}

/// A `GET /api/v3/klines` row for one minute; the price wanders with the minute so that the
/// indicators warmed up on the history have something to measure.
pub fn rest_row(open_time: i64) -> serde_json::Value {
    let p = 100.0 + ((open_time / MINUTE) % 17) as f64 * 0.1;
    serde_json::json!([
        open_time,
        format!("{p}"),
        format!("{}", p + 0.5),
        format!("{}", p - 0.5),
        format!("{}", p + 0.1),
        "5.0",
        open_time + MINUTE - 1,
        "500",
        10,
        "2",
        "200",
        "0"
    ])
}

/// `GET /api/v3/klines`: the closed minutes in the request's range, before `current` (at most 1,000,
/// as Binance pages them).
pub fn klines_before(
    current: i64,
) -> impl Filter<Extract = (warp::reply::Json,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "v3" / "klines")
        .and(warp::query::<HashMap<String, String>>())
        .map(move |q: HashMap<String, String>| {
            let start: i64 = q["startTime"].parse().unwrap();
            let end: i64 = q.get("endTime").map_or(i64::MAX, |e| e.parse().unwrap());
            let rows: Vec<_> = (0..1000)
                .map(|i| start + i * MINUTE)
                .take_while(|t| *t <= end && *t < current)
                .map(rest_row)
                .collect();
            warp::reply::json(&rows)
        })
}

/// Serves `routes` on a free port of 127.0.0.1; returns the address.
pub async fn serve<F>(routes: F) -> SocketAddr
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    addr
}

/// `/stream`: on each WebSocket connection, `live` closed one-minute candles from `current` on,
/// then a quiet stream.
fn live_klines(
    current: i64,
    live: i64,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path("stream")
        .and(warp::ws())
        .map(move |ws: warp::ws::Ws| {
            ws.on_upgrade(move |mut socket| async move {
                for k in 0..live {
                    let frame = kline_frame(current + k * MINUTE, true);
                    let _ = socket.send(warp::ws::Message::text(frame)).await;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            })
        })
}

/// A Binance with history up to the current minute (returned with the address) and, on each
/// WebSocket connection, `live` closed candles from the current minute on, then a quiet stream. A
/// process started now sees the same current minute, so the same number of warm-up candles.
pub async fn with_live_candles(live: i64) -> (SocketAddr, i64) {
    let current = current_minute().await;
    let ws = live_klines(current, live);
    (serve(ws.or(klines_before(current))).await, current)
}

/// The orders a [`signed_orders`] fake received, as their query parameters.
pub type Posted = std::sync::Arc<std::sync::Mutex<Vec<HashMap<String, String>>>>;

/// Binance's signed `/api/v3/order` (POST places and fills a market order at once, GET finds one by
/// client id) checked against `key` and `secret`, and the public `exchangeInfo` (lots of 0.001, a
/// notional of at least 10, ticks of 0.01). Returns the routes and what was posted.
pub fn signed_orders(
    key: &'static str,
    secret: &'static str,
) -> (
    impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone,
    Posted,
) {
    use warp::Reply;
    let posted = Posted::default();
    let seen = posted.clone();
    let orders = warp::path!("api" / "v3" / "order")
        .and(warp::method())
        .and(warp::header::optional::<String>("x-mbx-apikey"))
        .and(warp::query::raw())
        .map(move |method: warp::http::Method, api_key: Option<String>, query: String| {
            let refuse = |code: i64, msg: &str| {
                warp::reply::with_status(
                    warp::reply::json(&serde_json::json!({"code": code, "msg": msg})),
                    warp::http::StatusCode::BAD_REQUEST,
                )
                .into_response()
            };
            let (payload, signature) = query.rsplit_once("&signature=").unwrap_or((&query, ""));
            if api_key.as_deref() != Some(key)
                || sign(secret, payload) != signature
            {
                return refuse(-1022, "Signature for this request is not valid.");
            }
            let params: HashMap<String, String> = payload
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut all = seen.lock().unwrap();
            let id = params
                .get("origClientOrderId")
                .or_else(|| params.get("newClientOrderId"))
                .cloned()
                .unwrap_or_default();
            let known = all.iter().find(|o| o["newClientOrderId"] == id).cloned();
            let order = match (method == warp::http::Method::GET, known) {
                (true, None) => return refuse(-2013, "Order does not exist."),
                (true, Some(o)) => o,
                (false, _) => {
                    all.push(params.clone());
                    params
                }
            };
            let quantity: f64 = order["quantity"].parse().unwrap();
            warp::reply::json(&serde_json::json!({
                "symbol": order["symbol"], "orderId": all.len(), "clientOrderId": id,
                "transactTime": chrono::Utc::now().timestamp_millis(), "status": "FILLED",
                "executedQty": order["quantity"], "cummulativeQuoteQty": format!("{}", quantity * 101.0),
                "fills": [{"price": "101.0", "qty": order["quantity"], "commission": "0", "commissionAsset": "USDT"}]
            }))
            .into_response()
        });
    let info = warp::path!("api" / "v3" / "exchangeInfo")
        .and(warp::query::<HashMap<String, String>>())
        .map(|q: HashMap<String, String>| {
            warp::reply::json(&serde_json::json!({"symbols": [{
                "symbol": q.get("symbol").cloned().unwrap_or_default(), "status": "TRADING",
                "baseAsset": q.get("symbol").map(|s| s.trim_end_matches("USDT")).unwrap_or_default(),
                "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
                {"filterType": "NOTIONAL", "minNotional": "10", "applyMinToMarket": true}
            ]}]}))
            .into_response()
        });
    (orders.or(info).unify(), posted)
}

/// Binance's signed `GET /api/v3/account`, checked against `key` and `secret`, answering
/// `balances` (asset → free amount, as Binance writes it) as they are when asked.
pub fn signed_account(
    key: &'static str,
    secret: &'static str,
    balances: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    use warp::Reply;
    warp::path!("api" / "v3" / "account")
        .and(warp::get())
        .and(warp::header::optional::<String>("x-mbx-apikey"))
        .and(warp::query::raw())
        .map(move |api_key: Option<String>, query: String| {
            let (payload, signature) = query.rsplit_once("&signature=").unwrap_or((&query, ""));
            if api_key.as_deref() != Some(key) || sign(secret, payload) != signature {
                let body = serde_json::json!({"code": -1022, "msg": "Signature for this request is not valid."});
                return warp::reply::with_status(
                    warp::reply::json(&body),
                    warp::http::StatusCode::BAD_REQUEST,
                )
                .into_response();
            }
            let balances: Vec<serde_json::Value> = balances
                .lock()
                .unwrap()
                .iter()
                .map(|(asset, free)| serde_json::json!({"asset": asset, "free": free, "locked": "0.00000000"}))
                .collect();
            warp::reply::json(&serde_json::json!({"canTrade": true, "balances": balances}))
                .into_response()
        })
}

/// A Binance with history before the current minute, `live` closed candles on each WebSocket
/// connection, and [`signed_orders`]: returns the address, the current minute and what was posted.
pub async fn live_exchange(
    live: i64,
    key: &'static str,
    secret: &'static str,
) -> (SocketAddr, i64, Posted) {
    let current = current_minute().await;
    let ws = live_klines(current, live);
    let (orders, posted) = signed_orders(key, secret);
    let addr = serve(ws.or(klines_before(current)).or(orders)).await;
    (addr, current, posted)
}

/// Binance's request signature: HMAC-SHA256 of the query string under the API secret, in hex.
fn sign(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
