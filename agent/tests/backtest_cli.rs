//! `trading-agent backtest` end to end, on the bundled real candles: the report's shape, determinism,
//! and clear failures on bad input.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trading-agent"))
        .args(args)
        .output()
        .expect("trading-agent runs")
}

fn run_report(out: &Path, extra: &[&str]) -> Value {
    let out_arg = out.to_str().unwrap();
    let mut args = vec![
        "backtest",
        "--from",
        "2020-03-01",
        "--to",
        "2020-04-30",
        "--out",
        out_arg,
    ];
    args.extend_from_slice(extra);
    let output = agent(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ia-agents team") && stdout.contains("buy_and_hold"),
        "{stdout}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // the charts, and the decisions as data for the console's decision view (tests/test_console.py
    // opens it in a browser)
    assert!(html.contains("<svg") && html.contains("<h2>Decisions</h2>"));
    assert!(html.contains(r#"<script type="application/json" class="ia-decisions">"#));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn the_report_has_every_figure_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_report(&dir.path().join("a"), &[]);
    for section in [
        &first["strategy"],
        &first["baselines"]["buy_and_hold"],
        &first["baselines"]["sma_crossover"],
        &first["baselines"]["macd"],
    ] {
        for figure in [
            "total_return",
            "annualized_return",
            "sharpe",
            "sortino",
            "max_drawdown",
            "win_rate",
            "trades",
        ] {
            assert!(section[figure].is_number(), "{figure} missing in {section}");
        }
    }
    let d = &first["decisions"];
    for field in ["total", "consensus", "escalated", "vetoed", "hold"] {
        assert!(d[field].is_u64(), "decisions.{field}");
    }
    // two symbols, 61 days of hourly candles
    assert_eq!(first["candles"], 2 * 61 * 24);
    assert_eq!(first["first_open_time"], 1_583_020_800_000i64); // 2020-03-01 00:00 UTC
    assert_eq!(first["last_open_time"], 1_588_287_600_000i64); // 2020-04-30 23:00 UTC
    let total = d["total"].as_u64().unwrap();
    assert_eq!(
        total,
        d["buy"].as_u64().unwrap() + d["sell"].as_u64().unwrap() + d["hold"].as_u64().unwrap()
    );
    assert!(
        d["consensus"].as_u64().unwrap()
            + d["vetoed"].as_u64().unwrap()
            + d["escalated"].as_u64().unwrap()
            <= total
    );
    // March 2020 fell ~25% then recovered: buy-and-hold must show a deep drawdown
    assert!(
        first["baselines"]["buy_and_hold"]["max_drawdown"]
            .as_f64()
            .unwrap()
            > 0.3
    );

    // learned weights (the sample policy says `weighting: learned`) keep the declared total
    let weights = first["weights"].as_object().unwrap();
    assert_eq!(weights.len(), 5);
    let total_weight: f64 = weights.values().map(|w| w.as_f64().unwrap()).sum();
    assert!((total_weight - 5.7).abs() < 1e-9, "{weights:?}");
    assert!(first["learning_updates"].as_u64().unwrap() >= 60);

    let mut second = run_report(&dir.path().join("b"), &[]);
    let mut first = first;
    for r in [&mut first, &mut second] {
        r["run"]["wall_seconds"] = Value::Null;
    }
    assert_eq!(first, second, "same inputs, same report");
}

#[test]
fn policy_options_change_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let easy = run_report(
        &dir.path().join("easy"),
        &["--threshold", "0.34", "--symbols", "BTCUSDT"],
    );
    let strict = run_report(
        &dir.path().join("strict"),
        &[
            "--threshold",
            "1",
            "--max-rounds",
            "1",
            "--symbols",
            "BTCUSDT",
        ],
    );
    assert_eq!(easy["candles"], 61 * 24);
    let consensus = |r: &Value| r["decisions"]["consensus"].as_u64().unwrap();
    assert!(
        consensus(&easy) > consensus(&strict),
        "{} vs {}",
        consensus(&easy),
        consensus(&strict)
    );
    assert_eq!(strict["run"]["policy"]["threshold"], 1.0);
}

#[test]
fn a_reject_policy_drops_split_cycles_where_hold_decides_hold() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/consensuspolicy.yaml"
    ))
    .unwrap();
    let strategy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/strategy.yaml"
    );
    let report = |action: &str| {
        let policy = dir.path().join(format!("{action}.yaml"));
        std::fs::write(
            &policy,
            sample.replace("action: Escalate", &format!("action: {action}")),
        )
        .unwrap();
        let out = dir.path().join(action);
        run_report(
            &out,
            &[
                "--strategy-file",
                strategy,
                "--policy-file",
                policy.to_str().unwrap(),
                "--symbols",
                "BTCUSDT",
            ],
        )
    };
    let (hold, reject) = (report("Hold"), report("Reject"));
    let count = |r: &Value, what: &str| r["decisions"][what].as_u64().unwrap();
    assert_eq!(count(&hold, "rejected"), 0);
    assert!(count(&reject, "rejected") > 0, "{}", reject["decisions"]);
    // the same split cycles: HOLD under one policy, rejected under the other
    assert_eq!(count(&hold, "total"), count(&reject, "total"));
    let html = std::fs::read_to_string(dir.path().join("Reject/report.html")).unwrap();
    // the decision view's data carries the outcome (the view shows it as "rejected")
    assert!(
        html.contains(r#""rejected":true"#),
        "the report's decisions carry the outcome"
    );
}

#[test]
fn bad_inputs_fail_fast_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "kind: Strategy\nspec: [unclosed").unwrap();
    let policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/consensuspolicy.yaml"
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--symbols", "DOGEUSDT"],
            "no bundled data for DOGEUSDT 1h",
        ),
        (vec!["--symbols", "btcusdt"], "spec.symbols"),
        (
            vec!["--from", "2030-01-01"],
            "no BTCUSDT candles between 2030-01-01",
        ),
        (
            vec!["--from", "2020-02-01", "--to", "2020-01-01"],
            "the date range is empty",
        ),
        (vec!["--threshold", "2.0"], "spec.threshold"),
        (
            vec![
                "--strategy-file",
                bad_yaml.to_str().unwrap(),
                "--policy-file",
                policy,
            ],
            "bad.yaml is not valid YAML",
        ),
        (
            vec!["--data", "/nonexistent/candles.csv"],
            "say which symbol it holds",
        ),
        (
            vec!["--symbols", "BTCUSDT", "--data", "/nonexistent/candles.csv"],
            "/nonexistent/candles.csv",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["backtest", "--out", out];
        args.extend(extra.iter().copied());
        let output = agent(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr:?} should mention {expected:?}"
        );
    }
}

#[test]
fn replays_a_candle_file_and_checks_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/BTCUSDT-1m.csv.gz");
    let out = dir.path().join("m");
    let output = agent(&[
        "backtest",
        "--symbols",
        "BTCUSDT",
        "--data",
        data,
        "--from",
        "2023-03-10",
        "--to",
        "2023-03-12",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["candles"], 3 * 1440);
    assert_eq!(report["run"]["interval"], "1m");
    // hourly schedule on minute candles: a scheduled cycle every 60 candles, plus the monitor's alerts
    assert!(report["cycles"].as_u64().unwrap() >= 72);
    let wrong = agent(&[
        "backtest",
        "--symbols",
        "BTCUSDT",
        "--data",
        data,
        "--interval",
        "1h",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("holds 1m candles"));
}

#[tokio::test]
async fn the_database_holds_the_run_and_the_audit_log_detects_tampering() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let report = run_report(dir.path(), &["--symbols", "BTCUSDT"]);
    let db = dir.path().join("ia-agents.db");
    // written under a temporary name, renamed once complete
    assert!(db.exists() && !dir.path().join("ia-agents.db.partial").exists());
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>(0)
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM decisions").await as u64,
        report["decisions"]["total"].as_u64().unwrap()
    );
    assert!(
        count("SELECT COUNT(*) FROM opinions").await
            >= 5 * count("SELECT COUNT(*) FROM decisions").await
    );
    let audit = count("SELECT COUNT(*) FROM audit_log").await;
    assert_eq!(
        audit,
        count("SELECT COUNT(*) FROM decisions").await + count("SELECT COUNT(*) FROM orders").await
    );

    let ok = agent(&["audit", "verify", "--db", &url]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("{audit} entries, chain intact")));

    sqlx::query("DELETE FROM audit_log WHERE seq = 10")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let broken = agent(&["audit", "verify", "--db", &url]);
    assert!(!broken.status.success());
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(out.contains("row seq=11: expected seq=10"), "{out}");
}

#[tokio::test]
async fn a_trained_ensemble_informs_the_strategist() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    // 1,500 real hourly candles of early 2020 as a small training file
    let all = agent::market::read_candles(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/BTCUSDT-1h.csv.gz"
    )))
    .unwrap();
    let start = all
        .iter()
        .position(|c| c.open_time >= 1_577_836_800_000)
        .unwrap();
    let mut csv = String::from("open_time,open,high,low,close,volume\n");
    for c in &all[start..start + 1500] {
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            c.open_time, c.open, c.high, c.low, c.close, c.volume
        ));
    }
    let data = dir.path().join("train.csv");
    std::fs::write(&data, csv).unwrap();
    let model = dir.path().join("model.json");
    let trained = agent(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--folds",
        "2",
        "--trees",
        "5",
        "--max-depth",
        "4",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let table = String::from_utf8_lossy(&trained.stdout);
    assert!(
        table.contains("accuracy") && table.lines().count() >= 4,
        "{table}"
    );

    let out = dir.path().join("bt");
    let report = run_report(
        &out,
        &[
            "--symbols",
            "BTCUSDT",
            "--forecaster",
            model.to_str().unwrap(),
        ],
    );
    assert!(report["decisions"]["total"].as_u64().unwrap() > 0);
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", out.join("ia-agents.db").display()))
            .await
            .unwrap();
    let with_forecast = sqlx::query("SELECT COUNT(*) FROM opinions WHERE role = 'strategist' AND evidence LIKE '%probability_up%'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<i64, _>(0);
    assert!(with_forecast > 0);
    let bad = agent(&[
        "backtest",
        "--forecaster",
        "/nonexistent/model.json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/model.json"));
}

#[tokio::test]
async fn limit_orders_rest_fill_or_expire_and_are_stored_once() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples/");
    let mut strategy: Value =
        serde_yaml::from_str(&std::fs::read_to_string(format!("{samples}strategy.yaml")).unwrap())
            .unwrap();
    strategy["spec"]["exchange"]["orderType"] = "limit".into();
    strategy["spec"]["exchange"]["limitOffsetBps"] = 30.into();
    strategy["spec"]["exchange"]["limitTtlCandles"] = 2.into();
    let strategy_file = dir.path().join("strategy.yaml");
    std::fs::write(&strategy_file, serde_yaml::to_string(&strategy).unwrap()).unwrap();
    let policy_file = format!("{samples}consensuspolicy.yaml");
    run_report(
        dir.path(),
        &[
            "--symbols",
            "BTCUSDT",
            "--strategy-file",
            strategy_file.to_str().unwrap(),
            "--policy-file",
            &policy_file,
        ],
    );
    let url = format!("sqlite://{}", dir.path().join("ia-agents.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT kind, status, COUNT(*) FROM orders GROUP BY kind, status")
        .fetch_all(&pool)
        .await
        .unwrap();
    let count = |kind: &str, status: &str| {
        rows.iter()
            .find(|r| r.get::<String, _>(0) == kind && r.get::<String, _>(1) == status)
            .map_or(0, |r| r.get::<i64, _>(2))
    };
    assert!(count("LIMIT", "FILLED") > 0, "some limits are reached");
    assert!(
        count("LIMIT", "EXPIRED") > 0,
        "some are not, within 2 candles"
    );
    // an expired order says why and has no fill
    let odd = sqlx::query(
        "SELECT COUNT(*) FROM orders WHERE status = 'EXPIRED' AND (price IS NOT NULL OR reason NOT LIKE '%limitTtlCandles%')",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get::<i64, _>(0);
    assert_eq!(odd, 0);
}

#[test]
fn live_mode_needs_its_keys_and_live_candles_and_never_falls_back_to_paper() {
    let dir = tempfile::tempdir().unwrap();
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples/");
    let mut strategy: Value =
        serde_yaml::from_str(&std::fs::read_to_string(format!("{samples}strategy.yaml")).unwrap())
            .unwrap();
    strategy["spec"]["mode"] = "live".into();
    strategy["spec"]["exchange"]["credentialsSecretRef"] = serde_json::json!({"name": "keys"});
    let file = dir.path().join("live.yaml");
    std::fs::write(&file, serde_yaml::to_string(&strategy).unwrap()).unwrap();
    let policy = format!("{samples}consensuspolicy.yaml");
    let coordinator = |with_keys: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trading-agent"));
        c.args([
            "coordinator",
            "--nats",
            "nats://127.0.0.1:1",
            "--strategy-file",
        ])
        .arg(&file)
        .args([
            "--policy-file",
            &policy,
            "--symbols",
            "BTCUSDT",
            "--data",
            "BTCUSDT=../data/BTCUSDT-1h.csv.gz",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("IA_EXCHANGE_API_KEY")
        .env_remove("IA_EXCHANGE_API_SECRET");
        if with_keys {
            c.env("IA_EXCHANGE_API_KEY", "k")
                .env("IA_EXCHANGE_API_SECRET", "s");
        }
        c.output().unwrap()
    };
    let out = coordinator(false);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.mode is live") && err.contains("IA_EXCHANGE_API_KEY"),
        "{err}"
    );
    let out = coordinator(true);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trades on live candles only"), "{err}");
    // the one-process team refuses too
    let out = agent(&[
        "run",
        "--local",
        "--strategy-file",
        file.to_str().unwrap(),
        "--policy-file",
        &policy,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("paper-trades only"));
}

#[tokio::test]
async fn retraining_on_the_learning_schedule_stores_each_model_with_its_evaluation() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let out = agent(&[
        "backtest",
        "--symbols",
        "BTCUSDT",
        "--from",
        "2020-03-01",
        "--to",
        "2020-03-25",
        "--retrain",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("sqlite://{}", dir.path().join("ia-agents.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT version, trained_at, metrics, length(model) FROM models ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // the sample's learning schedule is daily; the first days are too short a history to train on
    assert!(rows.len() >= 10, "{} models", rows.len());
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=rows.len() as i64).collect::<Vec<_>>());
    let times: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 86_400_000),
        "one a day: {times:?}"
    );
    let last: Value = serde_json::from_str(&rows.last().unwrap().get::<String, _>(2)).unwrap();
    assert!((0.0..=1.0).contains(&last["accuracy"].as_f64().unwrap()));
    assert!(
        last["previousAccuracy"].as_f64().is_some(),
        "compared with the model before: {last}"
    );
    assert!(
        rows.iter().all(|r| r.get::<i64, _>(3) > 1000),
        "the model itself is stored"
    );
}

#[test]
fn help_never_shows_secret_values_from_the_environment() {
    let secret = "postgres://trader:hunter2@db/trading";
    for command in [
        &["backtest", "--help"][..],
        &["audit", "verify", "--help"],
        &["coordinator", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_trading-agent"))
            .args(command)
            .env("IA_DB", secret)
            .env("IA_NATS_URL", "nats://bot:hunter2@nats:4222")
            .env("IA_OLLAMA_URL", "http://u:hunter2@ollama:11434")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command:?}");
        assert!(
            help.contains("IA_DB") || help.contains("IA_NATS_URL"),
            "{command:?}: {help}"
        );
        assert!(
            !help.contains("hunter2"),
            "{command:?} shows a secret: {help}"
        );
    }
}

#[test]
fn audit_verify_of_a_missing_file_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let output = agent(&[
        "audit",
        "verify",
        "--db",
        &format!("sqlite://{}", path.display()),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("no such database file"), "{stderr}");
    assert!(!path.exists(), "audit verify created {}", path.display());
}
