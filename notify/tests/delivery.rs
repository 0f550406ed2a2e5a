//! Delivery against a local HTTP server that answers as told: retries on 503, gives up on 400,
//! and never blocks the caller.

use notify::{Event, Notifier, Retry, Target};
use protocol::crd::{NotificationEvent, NotificationKind, NotificationTarget, SecretKeyRef};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server received: (path, body) per request.
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A server that answers each request with the next status of `statuses` (the last one repeats).
async fn server(statuses: Vec<u16>) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let status = statuses[n.min(statuses.len() - 1)];
            n += 1;
            let log = log.clone();
            tokio::spawn(async move {
                let request = read_request(&mut socket).await;
                let (head, body) = request.split_once("\r\n\r\n").unwrap_or((&request, ""));
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                log.lock()
                    .unwrap()
                    .push((path, serde_json::from_str(body).unwrap_or_default()));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, received)
}

/// Reads one request, its body by Content-Length.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        if n == 0 {
            return text;
        }
    }
}

fn spec(kind: NotificationKind, events: Vec<NotificationEvent>) -> NotificationTarget {
    NotificationTarget {
        name: "ops".into(),
        kind,
        secret_ref: SecretKeyRef {
            name: "hooks".into(),
            key: "ops".into(),
        },
        chat_id: (kind == NotificationKind::Telegram).then(|| "-100123".into()),
        events,
    }
}

fn quick() -> Retry {
    Retry {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        retries: 4,
        timeout: Duration::from_secs(2),
    }
}

async fn wait_for(received: &Received, n: usize) -> Vec<(String, serde_json::Value)> {
    for _ in 0..200 {
        if received.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.lock().unwrap().clone()
}

#[tokio::test]
async fn a_busy_webhook_is_retried_until_it_takes_the_message() {
    let (url, received) = server(vec![503, 429, 200]).await;
    let target = Target::new(
        &spec(NotificationKind::Webhook, NotificationEvent::all()),
        &format!("{url}/hook"),
    )
    .unwrap();
    let client = reqwest::Client::new();
    notify::deliver_once(&client, &target, &Event::kill_switch("btc", true), quick())
        .await
        .unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "two refusals, then the delivery");
    assert!(got
        .iter()
        .all(|(path, body)| path == "/hook" && body["details"]["kind"] == "killSwitch"));
}

#[tokio::test]
async fn a_refused_message_is_not_retried_and_the_error_shows_no_address() {
    let (url, received) = server(vec![400]).await;
    let target = Target::new(
        &spec(NotificationKind::Slack, NotificationEvent::all()),
        &format!("{url}/services/SECRET"),
    )
    .unwrap();
    let error = notify::deliver_once(
        &reqwest::Client::new(),
        &target,
        &Event::kill_switch("btc", true),
        quick(),
    )
    .await
    .unwrap_err();
    assert_eq!(error, "HTTP 400 Bad Request");
    assert_eq!(received.lock().unwrap().len(), 1);
    // a server that is not there: the transport error names no URL either
    let gone = Target::new(
        &spec(NotificationKind::Slack, NotificationEvent::all()),
        "http://127.0.0.1:9/services/SECRET",
    )
    .unwrap();
    let error = notify::deliver_once(
        &reqwest::Client::new(),
        &gone,
        &Event::kill_switch("btc", true),
        Retry {
            retries: 1,
            ..quick()
        },
    )
    .await
    .unwrap_err();
    assert!(!error.contains("SECRET"), "{error}");
}

#[tokio::test]
async fn targets_get_only_their_events_in_order_over_telegram() {
    let (url, received) = server(vec![200]).await;
    let target = Target::with_telegram_api(
        &spec(NotificationKind::Telegram, vec![NotificationEvent::Risk]),
        "123:abc",
        &url,
    )
    .unwrap();
    let notifier = Notifier::spawn(vec![target], quick());
    notifier.notify(Event::team_health("btc", &["strategist".into()]));
    notifier.notify(Event::kill_switch("btc", true));
    notifier.notify(Event::risk_limit(
        "btc",
        "BTCUSDT",
        "d1",
        "maxDrawdown 0.2 reached",
    ));
    let got = wait_for(&received, 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        received.lock().unwrap().len(),
        2,
        "the degraded event is not for this target"
    );
    assert_eq!(got[0].0, "/bot123:abc/sendMessage");
    assert_eq!(got[0].1["chat_id"], "-100123");
    assert!(got[0].1["text"].as_str().unwrap().contains("kill switch"));
    assert!(got[1].1["text"].as_str().unwrap().contains("maxDrawdown"));
}

#[tokio::test]
async fn a_channel_that_never_answers_never_blocks_the_caller() {
    // a listener that accepts nothing: every attempt waits for its timeout
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let target = Target::new(
        &spec(NotificationKind::Webhook, NotificationEvent::all()),
        &url,
    )
    .unwrap();
    let notifier = Notifier::spawn(
        vec![target],
        Retry {
            timeout: Duration::from_secs(30),
            ..quick()
        },
    );
    let started = std::time::Instant::now();
    for i in 0..(notify_queue() * 2) {
        notifier.notify(Event::risk_limit(
            "btc",
            "BTCUSDT",
            &i.to_string(),
            "stop-loss",
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "notify waited for the channel"
    );
    let dropped = prometheus::gather()
        .into_iter()
        .find(|m| m.name() == "ia_notifications_total")
        .map(|m| {
            m.get_metric()
                .iter()
                .filter(|s| s.get_label().iter().any(|l| l.value() == "dropped"))
                .map(|s| s.get_counter().value())
                .sum::<f64>()
        })
        .unwrap_or_default();
    assert!(dropped >= notify_queue() as f64 - 1.0, "dropped {dropped}");
    drop(silent);
}

fn notify_queue() -> usize {
    notify::QUEUE
}
