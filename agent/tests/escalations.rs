//! An open escalation holds only its own symbol (issue 16): BTCUSDT's team is split and asks a
//! human, who answers only after ETHUSDT has gone on deciding; BTCUSDT's cycles wait meanwhile, and
//! the approved decision is taken up at its next candle under the escalated cycle's id.

use agent::config::TeamConfig;
use agent::consensus::{EscalationResolver, Resolution, Voter};
use agent::engine::{ReplayTeam, Series, Session};
use agent::market::Candle;
use agent::roles::{Analyst, Judgement};
use agent::team::{LocalAssistant, LocalTeam};
use protocol::messages::{Decision, Escalation, RoundRequest};
use protocol::{Action, Role};
use std::sync::Mutex;

const HOUR: i64 = 3_600_000;
/// 2020-06-01T00:00Z.
const START: i64 = 1_590_969_600_000;

/// Splits on BTCUSDT (three BUY, two SELL: short of the 80 % threshold), agrees on BUY for ETHUSDT.
struct SplitOnBitcoin(Role);

impl Analyst for SplitOnBitcoin {
    fn role(&self) -> Role {
        self.0
    }
    fn analyze(&self, r: &RoundRequest) -> Judgement {
        let action = match (r.snapshot.symbol.as_str(), self.0) {
            ("ETHUSDT", _) => Action::Buy,
            (_, Role::RiskManager | Role::Strategist) => Action::Sell,
            _ => Action::Buy,
        };
        Judgement::new(action, 0.9, "fixed")
    }
    fn debate(&self, r: &RoundRequest, _: &str) -> Judgement {
        self.analyze(r)
    }
}

/// A human who answers every escalation with an approval, once the gate opens.
struct Gate {
    open: tokio::sync::watch::Receiver<bool>,
    asked: Mutex<Vec<Escalation>>,
}

impl EscalationResolver for Gate {
    async fn resolve(&self, escalation: &Escalation) -> Resolution {
        self.asked.lock().unwrap().push(escalation.clone());
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        Resolution::Approved {
            by: "the gate".into(),
        }
    }
}

fn series(symbol: &str) -> Series {
    Series {
        symbol: symbol.into(),
        candles: (0..48)
            .map(|i| {
                let p = 100.0 + i as f64;
                Candle {
                    open_time: START + i as i64 * HOUR,
                    open: p,
                    high: p + 1.0,
                    low: p - 1.0,
                    close: p + 0.5,
                    volume: 10.0,
                }
            })
            .collect(),
    }
}

#[tokio::test]
async fn an_escalation_holds_its_own_symbol_and_no_other() {
    let team = LocalTeam::new(
        Role::DEFAULT_VOTERS
            .iter()
            .map(|&role| LocalAssistant {
                voter: Voter {
                    assistant: role.as_str().into(),
                    role,
                    weight: 1.0,
                },
                analyst: Box::new(SplitOnBitcoin(role)),
                llm: None,
            })
            .collect(),
    );
    let mut config = TeamConfig::builtin().unwrap();
    config.strategy.spec.symbols = vec!["BTCUSDT".into(), "ETHUSDT".into()];
    config.policy.spec.escalation.action = protocol::crd::EscalationAction::Escalate;
    let backtest = Session::new(config, vec![series("BTCUSDT"), series("ETHUSDT")], HOUR);
    let (gate, open) = tokio::sync::watch::channel(false);
    let human = Gate {
        open,
        asked: Mutex::default(),
    };
    let voters = team.voters();
    let mut decisions: Vec<Decision> = Vec::new();
    backtest
        .replay(
            None,
            ReplayTeam {
                transport: &team,
                escalations: &human,
                voters,
            },
            None,
            |d| {
                decisions.push(d.clone());
                // the human answers once Ether has decided ten times
                if decisions.iter().filter(|d| d.symbol == "ETHUSDT").count() == 10 {
                    gate.send_replace(true);
                }
            },
            |_, _| {},
        )
        .await
        .unwrap();
    let asked = human.asked.lock().unwrap().clone();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|e| e.symbol == "BTCUSDT"), "{asked:?}");
    let first_btc = decisions
        .iter()
        .position(|d| d.symbol == "BTCUSDT")
        .expect("a BTCUSDT decision once answered");
    let eth_before = decisions[..first_btc]
        .iter()
        .filter(|d| d.symbol == "ETHUSDT")
        .count();
    assert!(eth_before >= 10, "Ether went on deciding: {eth_before}");
    let btc = &decisions[first_btc];
    assert_eq!(
        btc.id, asked[0].id,
        "decided under the escalated cycle's id"
    );
    assert_eq!((btc.action, btc.escalated), (Action::Buy, true));
    assert_eq!(
        btc.resolved_by.as_deref(),
        Some("the gate"),
        "who answered is recorded"
    );
    assert_eq!(
        decisions.iter().filter(|d| d.symbol == "ETHUSDT").count(),
        48,
        "no Ether cycle was held"
    );
    let btc_count = decisions.iter().filter(|d| d.symbol == "BTCUSDT").count();
    assert!(
        btc_count < 48,
        "Bitcoin's cycles waited for the answer: {btc_count}"
    );
}
