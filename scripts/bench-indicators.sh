#!/usr/bin/env bash
# Streaming indicators (criterion) and TA-Lib's batch functions over the same 1M real candles, in one
# run, side by side; and the technical analyst's opinions per second.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/py/bin/python ] || { python3 -m venv target/py && target/py/bin/pip install -q -r tests/requirements.txt; }
cargo bench -p ia-agent --bench indicators -- --noplot > target/bench-indicators.txt 2>&1
echo "ia-agents streaming indicators, ns per candle (criterion median), and the technical analyst:"
awk '/^(indicator_per_candle|technical_analyst)\//{name=$1} /time:/{if (name!="") {print "  " name, $4, $5; name=""}}' target/bench-indicators.txt \
  | awk '{ if ($1 ~ /indicator_per_candle/) { v=$2; u=$3; ns=(u=="ms")? v*1e6/1e6 : (u=="s")? v*1e9/1e6 : v/1e6; sub("indicator_per_candle/","",$1); printf "  %-14s %8.2f\n", $1, ns } else { v=$2; u=$3; per=(u=="ms")? 10000/(v/1e3) : 10000/(v/1e6); sub("technical_analyst/","",$1); printf "  technical_analyst %-9s %.2f M/s\n", $1, per/1e6 } }'
target/py/bin/python scripts/talib_bench.py
