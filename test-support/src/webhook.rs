//! A JSON webhook on 127.0.0.1 that keeps every body it is posted: the notification target of
//! the agent's and the operator's notification tests.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use warp::Filter;

/// What a webhook was posted, in order.
pub type Received = Arc<Mutex<Vec<Value>>>;

/// Serves a webhook on a free port; its URL (`http://127.0.0.1:<port>/hook`) and what it receives.
pub async fn serve() -> (String, Received) {
    let received = Received::default();
    let log = received.clone();
    let route = warp::post()
        .and(warp::body::json())
        .map(move |body: Value| {
            log.lock().unwrap().push(body);
            warp::reply()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}/hook"), received)
}
