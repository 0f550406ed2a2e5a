#!/usr/bin/env bash
# Streaming indicators (criterion) and TA-Lib's batch functions over the same 1M real candles, in one
# run, side by side; and the technical analyst's opinions per second.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/py/bin/python ] || { python3 -m venv target/py && target/py/bin/pip install -q -r tests/requirements.txt; }
cargo bench -p ia-agent --bench indicators -- --noplot 2>&1 | grep -E "^(indicator_per_candle|technical_analyst)/|thrpt:" | paste - - | awk '{print $1, $(NF-3), $(NF-2), $(NF-1), $NF}'
target/py/bin/python scripts/talib_bench.py
