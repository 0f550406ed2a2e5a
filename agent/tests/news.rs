//! News feeds from a local HTTP server: headlines reach the fundamental analyst's book, a failing
//! feed is named and does not stop the others.

use agent::news::NewsPoller;
use agent::roles::fundamental::{FundamentalAnalyst, NewsBook};
use agent::roles::Analyst;
use protocol::messages::{MarketSnapshot, RoundRequest};
use protocol::Action;
use warp::Filter;

const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>crypto</title>
<item><title>Bitcoin crashes as exchange is hacked</title></item>
<item><title>Ethereum upgrade ships on schedule</title></item>
</channel></rss>"#;

#[tokio::test]
async fn polled_headlines_move_the_fundamental_analyst() {
    let rss = warp::path!("rss")
        .map(|| warp::reply::with_header(RSS, "content-type", "application/rss+xml"));
    let broken = warp::path!("broken")
        .map(|| warp::reply::with_status("oops", warp::http::StatusCode::INTERNAL_SERVER_ERROR));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(rss.or(broken)).incoming(listener).run());

    let book = NewsBook::default();
    let poller = NewsPoller::new(
        vec![
            format!("http://{addr}/broken"),
            format!("http://{addr}/rss"),
        ],
        vec!["BTCUSDT".into(), "ETHUSDT".into()],
        book.clone(),
    );
    let (read, failed) = poller.poll_once().await;
    assert_eq!(read, 2);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].to_string().contains("/broken: HTTP 500"),
        "{}",
        failed[0]
    );
    assert_eq!(
        book.headlines("BTCUSDT"),
        vec!["Bitcoin crashes as exchange is hacked"]
    );

    let analyst = FundamentalAnalyst {
        news: book,
        dated: None,
    };
    let request = RoundRequest {
        cycle_id: "c".into(),
        round: 1,
        strategy: "s".into(),
        snapshot: MarketSnapshot::flat("BTCUSDT", 0, 1.0),
        debate: vec![],
        deadline: 0,
        round_timeout_ms: 0,
    };
    assert_eq!(analyst.analyze(&request).action, Action::Sell);
}
