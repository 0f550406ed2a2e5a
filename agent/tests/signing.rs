//! Signed decisions on a real nats-server (`bus::signing`): a service given the coordinator's
//! public key acts only on what the coordinator's seed signed for that subject; an unsigned
//! message, one signed by another key, and the coordinator's own message pushed onto another
//! team's subject are delivered (and acknowledged) but never taken.

use agent::bus::auth::NatsAuth;
use agent::bus::nats::NatsBus;
use agent::bus::signing::Verifier;
use agent::bus::Bus;
use protocol::messages::{Decision, Message, RoundTally};
use protocol::subjects::Subjects;
use protocol::Action;
use std::time::Duration;
use test_support as support;

fn decision(id: &str) -> Message {
    Message::Decision(Decision {
        id: id.into(),
        strategy: "btc".into(),
        symbol: "BTCUSDT".into(),
        action: Action::Buy,
        confidence: 0.9,
        consensus_reached: true,
        escalated: false,
        vetoed: false,
        rejected: false,
        resolved_by: None,
        rounds: vec![RoundTally {
            round: 1,
            votes: vec![],
            scores: Default::default(),
            answered_weight: 1.0,
            total_weight: 1.0,
        }],
        transcript: vec![],
        price: 100.0,
        decided_at: 1,
    })
}

async fn as_seed(url: &str, seed: String, identity: &str) -> NatsBus {
    NatsBus::connect_as(url, &NatsAuth::Nkey { seed }, Some(identity))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_takes_only_what_the_coordinator_signed() {
    let Some(server) = support::NatsServer::start() else {
        return;
    };
    let url = server.url();
    let subjects = Subjects::new("trading", "btc").unwrap();
    let key = nkeys::KeyPair::new_user();
    let coordinator = as_seed(&url, key.seed().unwrap(), "coordinator").await;
    let stranger = as_seed(&url, nkeys::KeyPair::new_user().seed().unwrap(), "x").await;
    let anonymous = NatsBus::connect(&url).await.unwrap();

    let ours = subjects.decision();
    coordinator
        .publish_durable(&ours, "d1", &decision("d1"))
        .await
        .unwrap();
    anonymous
        .publish_durable(&ours, "d2", &decision("d2"))
        .await
        .unwrap();
    stranger
        .publish_durable(&ours, "d3", &decision("d3"))
        .await
        .unwrap();
    // the coordinator's signature over another team's subject does not hold on this one: sign for
    // `theirs`, then put the same bytes and headers on `ours`
    let theirs = Subjects::new("trading", "eth").unwrap().decision();
    let signer = agent::bus::signing::Signer::of(&NatsAuth::Nkey {
        seed: key.seed().unwrap(),
    })
    .unwrap()
    .unwrap();
    let payload = protocol::messages::encode(&decision("d4"));
    let mut headers = async_nats::HeaderMap::new();
    let moved_id = format!("{theirs}/d4");
    headers.insert("Nats-Msg-Id", moved_id.as_str());
    headers.insert(
        agent::bus::signing::SIGNATURE_HEADER,
        signer.sign(&theirs, &moved_id, &payload).as_str(),
    );
    anonymous
        .client()
        .publish_with_headers(ours.clone(), headers, payload.into())
        .await
        .unwrap();
    anonymous.client().flush().await.unwrap();
    coordinator
        .publish_durable(&ours, "d5", &decision("d5"))
        .await
        .unwrap();

    let check = Verifier::new(&key.public_key(), "coordinator", "--coordinator-key").unwrap();
    let mut consumer = coordinator
        .service_consumer("ia_trading_btc_executor", &ours, 100, false, Some(check))
        .await
        .unwrap();
    let mut taken = Vec::new();
    for _ in 0..5 {
        let delivered = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .expect("every message is delivered")
            .expect("the consumer goes on");
        if let Some(Message::Decision(d)) = &delivered.message {
            taken.push(d.id.to_string());
        }
        delivered.ack().await.unwrap();
    }
    assert_eq!(
        taken,
        ["d1", "d5"],
        "only the coordinator's, on its own subject"
    );
}
