#!/usr/bin/env bash
# The team as processes, as a cluster runs it: five voters (`trading-agent assistant`) and a
# coordinator over a real nats-server, recording into a real PostgreSQL (scripts/services.sh starts
# both on 127.0.0.1). The coordinator replays BTCUSDT's 2020 hours (8,784 candles, a cycle on each)
# under the sample policy with a split team holding at once (no human to wait for), so the figure is
# the whole path: a round over NATS, the decision on the JetStream stream, the record in PostgreSQL.
# Prints decisions per second (decided, published and stored, each checked equal) for RUNS runs and
# their median. Release build.
#
# SERVICES=1: the executor and auditor as services of their own (`coordinator --services`): the
# decisions reach PostgreSQL through the stream (the auditor writes them), the rate counts until the
# last one is stored, and each run also prints the decision -> fill latency over the stream
# (agent/examples/stream_latency.rs: p50, p99, the stream's own timestamps).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=target/bench-distributed
mkdir -p "$OUT"
eval "$(scripts/services.sh)"
SERVICES=${SERVICES:-0}
cargo build --release -q -p ia-agent --bin trading-agent --example stream_latency
BIN=$PWD/target/release/trading-agent
LATENCY=$PWD/target/release/examples/stream_latency
sed -e 's/action: Escalate/action: Hold/' config/samples/consensuspolicy.yaml > "$OUT/policy.yaml"
pg_host_port=${IA_TEST_POSTGRES_URL#postgres://ia@}
pg_host_port=${pg_host_port%/ia}

rates=()
for run in $(seq "$RUNS"); do
  ns="bench$run$$"
  db="bench_${run}_$$"
  psql -q "postgres://ia@$pg_host_port/ia" -c "CREATE DATABASE $db" >/dev/null
  url="postgres://ia@$pg_host_port/$db"
  pids=()
  for role in marketMonitor technicalAnalyst fundamentalAnalyst riskManager strategist; do
    "$BIN" assistant --nats "$IA_TEST_NATS_URL" --namespace "$ns" --strategy btc-eth-paper \
      --role "$role" > /dev/null 2>&1 &
    pids+=($!)
  done
  services=()
  if [ "$SERVICES" = 1 ]; then
    services=(--services)
    for role in executor auditor; do
      "$BIN" assistant --nats "$IA_TEST_NATS_URL" --namespace "$ns" --strategy btc-eth-paper \
        --role "$role" --db "$url" --strategy-file config/samples/strategy.yaml \
        > "$OUT/$role-$run.log" 2>&1 &
      pids+=($!)
    done
  fi
  start=$(date +%s.%N)
  "$BIN" coordinator "${services[@]}" --nats "$IA_TEST_NATS_URL" --namespace "$ns" --json --db "$url" \
    --strategy-file config/samples/strategy.yaml --policy-file "$OUT/policy.yaml" \
    --symbols BTCUSDT --data data/BTCUSDT-1h.csv.gz --from 2020-01-01 --to 2020-12-31 \
    > "$OUT/decisions-$run.jsonl" 2> "$OUT/coordinator-$run.log"
  published=$(wc -l < "$OUT/decisions-$run.jsonl")
  # with the services, the record is done when the auditor has stored the last decision
  for _ in $(seq 600); do
    stored=$(psql -qtA "$url" -c "SELECT COUNT(*) FROM decisions")
    [ "$stored" -ge "$published" ] && break
    sleep 0.1
  done
  end=$(date +%s.%N)
  if [ "$SERVICES" = 1 ]; then
    "$LATENCY" "$IA_TEST_NATS_URL" "$ns" btc-eth-paper
  fi
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  made=$(grep -o '[0-9]* cycles over' "$OUT/coordinator-$run.log" | awk '{print $1}')
  if [ "$made" != "$published" ] || [ "$published" != "$stored" ]; then
    echo "run $run: made $made, published $published, stored $stored: not equal" >&2
    exit 1
  fi
  rate=$(python3 -c "print(f'{$stored / ($end - $start):.0f}')")
  printf 'run %s: %s decisions made = published = stored in %.1f s: %s decisions/s\n' \
    "$run" "$stored" "$(python3 -c "print($end - $start)")" "$rate"
  rates+=("$rate")
  psql -q "postgres://ia@$pg_host_port/ia" -c "DROP DATABASE $db" >/dev/null
done
printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print "median:", a[int((NR+1)/2)], "decisions/s"}'
