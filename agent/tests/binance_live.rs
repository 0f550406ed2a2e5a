//! Live orders against a local server that speaks Binance's signed spot API: the signature and key
//! are checked as Binance does, a replayed decision is not placed twice, and refusals, rate limits
//! and a bad signature come back as errors naming the order, never the signed query.

use agent::exchange::binance::{client_order_id, sign, BinanceSpot, Credentials, LiveError};
use protocol::messages::{Order, OrderKind, Side};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use warp::http::StatusCode;
use warp::Filter;

const KEY: &str = "test-key";
const SECRET: &str = "test-secret";

#[derive(Default)]
struct Exchange {
    orders: Mutex<HashMap<String, serde_json::Value>>,
    posts: AtomicU32,
    last_post: Mutex<HashMap<String, String>>,
}

fn reply(code: StatusCode, body: serde_json::Value) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(warp::reply::json(&body), code).into_response()
}

fn error(code: i64, msg: &str) -> warp::reply::Response {
    reply(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"code": code, "msg": msg}),
    )
}

async fn serve() -> (String, Arc<Exchange>) {
    let state = Arc::new(Exchange::default());
    let shared = state.clone();
    let route = warp::path!("api" / "v3" / "order")
        .and(warp::method())
        .and(warp::header::optional::<String>("x-mbx-apikey"))
        .and(warp::query::raw())
        .map(move |method: warp::http::Method, key: Option<String>, query: String| {
            let state = shared.clone();
            if key.as_deref() != Some(KEY) {
                return error(-2015, "Invalid API-key, IP, or permissions for action.");
            }
            let (payload, signature) = query.rsplit_once("&signature=").unwrap_or((&query, ""));
            if sign(SECRET, payload) != signature {
                return error(-1022, "Signature for this request is not valid.");
            }
            let params: HashMap<String, String> = payload
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert!(params.contains_key("timestamp") && params["recvWindow"] == "5000");
            if method == warp::http::Method::GET {
                return match state.orders.lock().unwrap().get(&params["origClientOrderId"]) {
                    Some(order) => reply(StatusCode::OK, order.clone()),
                    None => error(-2013, "Order does not exist."),
                };
            }
            state.posts.fetch_add(1, Ordering::SeqCst);
            *state.last_post.lock().unwrap() = params.clone();
            match params["symbol"].as_str() {
                "POORUSDT" => return error(-2010, "Account has insufficient balance for requested action."),
                "BUSYUSDT" => {
                    use warp::Reply;
                    return warp::reply::with_header(
                        reply(StatusCode::TOO_MANY_REQUESTS, serde_json::json!({"code": -1003, "msg": "Too many requests"})),
                        "Retry-After",
                        "7",
                    )
                    .into_response();
                }
                _ => {}
            }
            let order = serde_json::json!({
                "symbol": params["symbol"], "orderId": 1, "clientOrderId": params["newClientOrderId"],
                "transactTime": 1_700_000_000_123_i64, "executedQty": "1.00000000",
                "cummulativeQuoteQty": "101.00000000", "status": "FILLED",
                "fills": [
                    {"price": "100.50", "qty": "0.5", "commission": "0.0005", "commissionAsset": "USDT"},
                    {"price": "101.50", "qty": "0.5", "commission": "0.0005", "commissionAsset": "USDT"}
                ]
            });
            state.orders.lock().unwrap().insert(params["newClientOrderId"].clone(), order.clone());
            reply(StatusCode::OK, order)
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        warp::serve(route.or(exchange_info()))
            .incoming(listener)
            .run(),
    );
    (format!("http://{addr}"), state)
}

/// `GET /api/v3/exchangeInfo?symbol=S`: every symbol trades in steps of 0.001 with a notional of at
/// least 10 and a price tick of 0.01, except `UNLISTEDUSDT`, which the exchange does not know.
fn exchange_info() -> impl Filter<Extract = (warp::reply::Json,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "v3" / "exchangeInfo")
        .and(warp::query::<HashMap<String, String>>())
        .map(|q: HashMap<String, String>| {
            let symbol = q.get("symbol").cloned().unwrap_or_default();
            let symbols = if symbol == "UNLISTEDUSDT" {
                vec![]
            } else {
                vec![serde_json::json!({"symbol": symbol, "status": "TRADING", "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
                    {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000.0", "stepSize": "0.001"},
                    {"filterType": "NOTIONAL", "minNotional": "10.0", "applyMinToMarket": true}
                ]})]
            };
            warp::reply::json(&serde_json::json!({"timezone": "UTC", "symbols": symbols}))
        })
}

/// The price the tests' market orders are decided at.
fn close() -> rust_decimal::Decimal {
    "100".parse().unwrap()
}

fn order(id: &str, symbol: &str, kind: OrderKind) -> Order {
    Order {
        decision_id: id.into(),
        strategy: "btc-eth-live".into(),
        symbol: symbol.into(),
        side: Side::Buy,
        kind,
        quantity: "1.0".parse().unwrap(),
        limit_price: (kind == OrderKind::Limit).then(|| "101.25".parse().unwrap()),
        at: 5,
    }
}

#[tokio::test]
async fn a_signed_order_fills_once_per_decision() {
    let (url, exchange) = serve().await;
    let spot = BinanceSpot::new(&url, Credentials::new(KEY, SECRET));
    let o = order(
        "btc-eth-live_BTCUSDT_1_schedule",
        "BTCUSDT",
        OrderKind::Market,
    );
    let fill = spot.place(&o, close()).await.unwrap();
    assert_eq!(fill.price, "101".parse().unwrap());
    assert_eq!(fill.quantity, "1".parse().unwrap());
    assert_eq!(fill.fee, "0.001".parse().unwrap());
    assert_eq!(fill.at, 1_700_000_000_123);
    let sent = exchange.last_post.lock().unwrap().clone();
    assert_eq!(sent["type"], "MARKET");
    assert_eq!(sent["newClientOrderId"], client_order_id(&o.decision_id));
    // the same decision again (a restarted coordinator): found at the exchange, not placed twice
    let again = spot.place(&o, close()).await.unwrap();
    assert_eq!(again, fill);
    assert_eq!(exchange.posts.load(Ordering::SeqCst), 1);
    // a limit order is immediate-or-cancel at its price
    spot.place(&order("d-limit", "BTCUSDT", OrderKind::Limit), close())
        .await
        .unwrap();
    let sent = exchange.last_post.lock().unwrap().clone();
    assert_eq!(
        (
            sent["type"].as_str(),
            sent["timeInForce"].as_str(),
            sent["price"].as_str()
        ),
        ("LIMIT", "IOC", "101.25")
    );
}

#[tokio::test]
async fn refusals_rate_limits_and_bad_keys_name_the_order_not_the_query() {
    let (url, _) = serve().await;
    let spot = BinanceSpot::new(&url, Credentials::new(KEY, SECRET));
    let e = spot
        .place(&order("d-poor", "POORUSDT", OrderKind::Market), close())
        .await
        .unwrap_err();
    assert!(matches!(e, LiveError::Rejected { code: -2010, .. }), "{e}");
    assert!(
        e.to_string().contains("order d-poor") && e.to_string().contains("insufficient balance")
    );
    let e = spot
        .place(&order("d-busy", "BUSYUSDT", OrderKind::Market), close())
        .await
        .unwrap_err();
    assert!(
        matches!(e, LiveError::RateLimited { status: 429, retry_after: Some(d), .. } if d.as_secs() == 7),
        "{e}"
    );
    let wrong = BinanceSpot::new(&url, Credentials::new(KEY, "not-the-secret"));
    let e = wrong
        .place(&order("d-sig", "BTCUSDT", OrderKind::Market), close())
        .await
        .unwrap_err();
    assert!(matches!(e, LiveError::Rejected { code: -1022, .. }), "{e}");
    // an unreachable exchange: the error names the endpoint, never the signed query or the key
    let gone = BinanceSpot::new("http://127.0.0.1:1", Credentials::new(KEY, SECRET));
    let e = gone
        .place(&order("d-gone", "BTCUSDT", OrderKind::Market), close())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("http://127.0.0.1:1/api/v3/"), "{e}");
    assert!(
        !e.contains("signature") && !e.contains(SECRET) && !e.contains(KEY),
        "{e}"
    );
}

#[tokio::test]
async fn orders_are_held_to_the_symbol_s_trading_rules_before_they_are_sent() {
    let (url, exchange) = serve().await;
    let spot = BinanceSpot::new(&url, Credentials::new(KEY, SECRET));
    // the quantity goes out on the lot step, rounded down
    let mut o = order("d-step", "BTCUSDT", OrderKind::Market);
    o.quantity = "0.5129".parse().unwrap();
    spot.place(&o, close()).await.unwrap();
    assert_eq!(exchange.last_post.lock().unwrap()["quantity"], "0.512");
    // below the minimum notional (0.05 × 100 = 5 < 10): refused with the rule, never sent
    let posts = exchange.posts.load(Ordering::SeqCst);
    let mut small = order("d-small", "BTCUSDT", OrderKind::Market);
    small.quantity = "0.05".parse().unwrap();
    let e = spot.place(&small, close()).await.unwrap_err();
    assert!(matches!(e, LiveError::Filtered { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "order d-small: not sent, it breaks BTCUSDT's trading rules: \
         NOTIONAL: 0.05 × 100 = 5 is below minNotional 10"
    );
    assert_eq!(exchange.posts.load(Ordering::SeqCst), posts, "nothing sent");
    // a symbol the exchange does not list: refused, naming it
    let e = spot
        .place(
            &order("d-unlisted", "UNLISTEDUSDT", OrderKind::Market),
            close(),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("exchangeInfo has no symbol UNLISTEDUSDT"),
        "{e}"
    );
    assert_eq!(exchange.posts.load(Ordering::SeqCst), posts, "nothing sent");
}
