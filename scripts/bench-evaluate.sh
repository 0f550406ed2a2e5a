#!/usr/bin/env bash
# `trading-agent evaluate` over all bundled hourly data (BTCUSDT and ETHUSDT 2017-2020, 8 windows:
# the team, three baselines and five voters alone in each), release build: wall time, CPU time and
# peak memory of RUNS runs (default 5) from /usr/bin/time, and their medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
OUT=target/bench-evaluate
mkdir -p "$OUT"
cargo build --release -q -p ia-agent
BIN=target/release/trading-agent
for i in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %U %S %M" -o "$OUT/run-$i.time" "$BIN" evaluate --out "$OUT/eval" > "$OUT/run-$i.txt"
done
python3 - "$OUT" "$RUNS" <<'PY'
import statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = [list(map(float, open(f"{out}/run-{i}.time").read().split())) for i in range(1, runs + 1)]
wall = [r[0] for r in rows]; cpu = [r[1] + r[2] for r in rows]; rss = [r[3] / 1024 for r in rows]
print(f"evaluate, bundled hourly data, {runs} runs: wall median {statistics.median(wall):.2f} s "
      f"({min(wall):.2f}-{max(wall):.2f}), CPU median {statistics.median(cpu):.2f} s, "
      f"peak {statistics.median(rss):.0f} MiB")
PY
