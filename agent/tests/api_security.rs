//! The API under attack (issue 17's list, each shown to fail): a WebSocket without the token or
//! from a foreign origin, more sockets than the cap, an oversized frame, 2,000 wrong-token
//! requests, a read flood, a chunked oversized body, protected reads, and 5xx bodies that would
//! name the database.

use agent::api::{serve, stream, ApiState};
use agent::store::Store;
use futures::{SinkExt, StreamExt};
use std::io::{Read, Write};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "s3cret-token";

struct Api {
    base: String,
    addr: std::net::SocketAddr,
    state: ApiState,
    answers: tokio::sync::mpsc::Receiver<protocol::messages::EscalationResolution>,
    _dir: tempfile::TempDir,
}

/// An API over an empty SQLite store whose path carries a marker no response may show.
async fn api(read_auth: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db-path-marker-7f3a.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let (tx, answers) = tokio::sync::mpsc::channel(16);
    let state = ApiState::new(store, "attacked", Some(TOKEN.into()), tx)
        .with_read_auth(read_auth)
        .with_allowed_origins(vec!["https://console.example".into()]);
    let addr = serve(
        state.clone(),
        "127.0.0.1:0".parse().unwrap(),
        std::future::pending(),
    )
    .await
    .unwrap();
    Api {
        base: format!("http://{addr}"),
        addr,
        state,
        answers,
        _dir: dir,
    }
}

/// Opens the stream with the given headers; the HTTP status of the handshake.
async fn open_stream(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut request = format!("ws://{addr}/api/v1/stream")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected handshake failure: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_takes_the_token_checks_the_origin_and_caps_sockets_and_frames() {
    let api = api(false).await;
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        open_stream(api.addr, &[]).await.err(),
        Some(401),
        "no token"
    );
    assert_eq!(
        open_stream(api.addr, &[("authorization", "Bearer guess")])
            .await
            .err(),
        Some(403),
        "a wrong token"
    );
    assert_eq!(
        open_stream(
            api.addr,
            &[
                ("authorization", &bearer),
                ("origin", "https://evil.example")
            ]
        )
        .await
        .err(),
        Some(403),
        "a foreign origin, even with the token"
    );
    // a browser: the token as a subprotocol, from a listed origin; the server picks the protocol
    let offered = format!("{}, {TOKEN}", agent::api::guard::WS_BEARER_PROTOCOL);
    let mut browser = open_stream(
        api.addr,
        &[
            ("sec-websocket-protocol", &offered),
            ("origin", "https://console.example"),
        ],
    )
    .await
    .expect("a browser with the token opens the stream");
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.state
        .events
        .send(serde_json::json!({"type": "decision", "id": "d1"}))
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(2), browser.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(frame.to_text().unwrap().contains("\"d1\""));

    // the cap: one socket is open, MAX_SOCKETS - 1 more fit, the next is refused
    let mut held = Vec::new();
    for _ in 1..stream::MAX_SOCKETS {
        held.push(
            open_stream(api.addr, &[("authorization", &bearer)])
                .await
                .expect("under the cap"),
        );
    }
    assert_eq!(
        open_stream(api.addr, &[("authorization", &bearer)])
            .await
            .err(),
        Some(503),
        "over the cap"
    );
    // a frame over the limit closes that socket, and its slot comes back
    let mut big = held.pop().unwrap();
    let _ = big
        .send(Message::text("x".repeat(stream::MAX_FRAME * 4)))
        .await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match big.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(m)) if m.is_close() => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an oversized frame closes the socket");
    let reopened = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if open_stream(api.addr, &[("authorization", &bearer)])
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "the closed socket's slot is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_and_flooding_reads_hit_the_rate_limit_before_the_token_check() {
    let api = api(false).await;
    let client = reqwest::Client::new();
    let (mut forbidden, mut limited) = (0, 0);
    for _ in 0..2000 {
        let status = client
            .post(format!("{}/api/v1/escalations/e1/approve", api.base))
            .header("authorization", "Bearer guess")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        match status {
            403 => forbidden += 1,
            429 => limited += 1,
            other => panic!("a wrong token got {other}"),
        }
    }
    eprintln!("2,000 wrong-token requests: {forbidden} checked (403), {limited} limited (429)");
    assert!(
        forbidden < 60 && limited > 1900,
        "{forbidden} wrong tokens were checked, {limited} limited"
    );
    let mut reads_limited = 0;
    for _ in 0..1000 {
        let status = client
            .get(format!("{}/api/v1/decisions", api.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        reads_limited += u32::from(status == 429);
    }
    eprintln!("1,000 reads from one client: {reads_limited} limited (429)");
    assert!(
        reads_limited > 500,
        "only {reads_limited} of 1,000 reads limited"
    );
}

/// Sends a chunked POST of `total` bytes in chunks of up to 64 KiB, as far as the server reads; its
/// status line.
fn chunked_post(addr: std::net::SocketAddr, total: usize) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "POST /api/v1/escalations/e1/approve HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'x'; total.min(64 * 1024)];
    let mut sent = 0;
    while sent < total {
        let ok = write!(tcp, "{:x}\r\n", chunk.len()).is_ok()
            && tcp.write_all(&chunk).is_ok()
            && tcp.write_all(b"\r\n").is_ok();
        if !ok {
            break; // the server answered and closed
        }
        sent += chunk.len();
    }
    let _ = tcp.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_refused_and_relays_nothing() {
    let mut api = api(false).await;
    let addr = api.addr;
    let status = tokio::task::spawn_blocking(move || chunked_post(addr, 20 * 1024 * 1024))
        .await
        .unwrap();
    assert!(status.contains(" 413 "), "{status}");
    assert!(
        api.answers.try_recv().is_err(),
        "nothing reached the coordinator"
    );
    // a small chunked body is fine
    let status = tokio::task::spawn_blocking(move || chunked_post(addr, 1))
        .await
        .unwrap();
    assert!(status.contains(" 202 "), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_reads_need_the_token_and_5xx_bodies_name_no_database() {
    let api = api(true).await;
    let client = reqwest::Client::new();
    let get = |auth: Option<&'static str>, path: &str| {
        let mut r = client.get(format!("{}{path}", api.base));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    assert_eq!(get(None, "/api/v1/decisions").await.unwrap().status(), 401);
    assert_eq!(
        get(Some("Bearer guess"), "/api/v1/positions")
            .await
            .unwrap()
            .status(),
        403
    );
    let bearer: &'static str = Box::leak(format!("Bearer {TOKEN}").into_boxed_str());
    assert_eq!(
        get(Some(bearer), "/api/v1/decisions")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(get(None, "/readyz").await.unwrap().status(), 200);
    // the database goes away: 5xx and not ready, and no body says which database or why
    api.state.store.close().await;
    for path in ["/api/v1/decisions", "/api/v1/portfolio", "/readyz"] {
        let r = get(Some(bearer), path).await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 503, "{path}: {body}");
        for leak in ["db-path-marker", "sqlite", "closed"] {
            assert!(!body.contains(leak), "{path} shows {leak:?}: {body}");
        }
    }
}
