#!/usr/bin/env bash
# The embedded default's throughput: one year of 1-hour candles (bundled, BTCUSDT 2020) and one year of
# 1-minute candles (525,600; the bundled minute sample repeated) through the whole team, with a
# consensus cycle on every candle (analysis schedule "* * * * *" for the minutes), wall time, candles
# per second, peak memory, and instructions per candle (callgrind) for the hourly year.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench-backtest
mkdir -p "$OUT"
cargo build --release -q -p ia-agent
BIN=target/release/trading-agent
[ -f "$OUT/BTCUSDT-1m-year.csv.gz" ] || python3 scripts/year_of_minutes.py "$OUT/BTCUSDT-1m-year.csv.gz"
sed -e 's/interval: 1h/interval: 1m/' -e 's/analysis: "0 \* \* \* \*"/analysis: "* * * * *"/' \
  config/samples/strategy.yaml > "$OUT/strategy-1m.yaml"
run() { # name, args...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$BIN" backtest --json "$@" > "$OUT/$name.json"
  read -r wall rss < "$OUT/$name.time"
  python3 - "$OUT/$name.json" "$wall" "$rss" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); wall = float(sys.argv[2]); rss = int(sys.argv[3])
print(f"{sys.argv[4]:<22} {r['candles']:>8} candles {r['cycles']:>8} cycles  {wall:6.2f} s  {r['candles']/wall:>10.0f} candles/s  peak {rss/1024:6.1f} MiB")
PY
}
echo "release build; wall time and peak RSS from /usr/bin/time"
run year-1h --symbols BTCUSDT --from 2020-01-01 --to 2020-12-31 --out "$OUT/1h"
run year-1h-no-db --symbols BTCUSDT --from 2020-01-01 --to 2020-12-31 --out "$OUT/1h" --db sqlite::memory:
run year-1m --strategy-file "$OUT/strategy-1m.yaml" --policy-file config/samples/consensuspolicy.yaml \
  --symbols BTCUSDT --data "$OUT/BTCUSDT-1m-year.csv.gz" --out "$OUT/1m"
run year-1m-no-db --strategy-file "$OUT/strategy-1m.yaml" --policy-file config/samples/consensuspolicy.yaml \
  --symbols BTCUSDT --data "$OUT/BTCUSDT-1m-year.csv.gz" --out "$OUT/1m" --db sqlite::memory:
if command -v valgrind >/dev/null; then
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$BIN" backtest --json \
    --symbols BTCUSDT --from 2020-01-01 --to 2020-12-31 --out "$OUT/cg" --db sqlite::memory: > "$OUT/cg.json" 2> "$OUT/cg.log"
  total=$(grep -E "^(summary|totals):" "$OUT/callgrind.out" | head -1 | awk '{print $2}')
  candles=$(python3 -c "import json; print(json.load(open('$OUT/cg.json'))['candles'])")
  echo "instructions per candle (callgrind, year-1h-no-db, whole process): $((total / candles)) ($total / $candles)"
fi
