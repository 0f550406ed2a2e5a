#!/usr/bin/env bash
# Regenerates the README's screenshot of `kubectl ia-agents status`: docs/images/plugin-status.txt
# (what the plugin prints, verbatim) and docs/images/plugin-status.png (that text in a terminal).
#
# operator/examples/replay_cluster.rs runs the sample team replaying the bundled candles on a
# stand-in cluster: the operator's reconcilers and decision consumer, every trading-agent Deployment
# they create as a local process over a local nats-server (JetStream) with a SQLite store, the
# in-memory API server of the tests behind a kubeconfig. The coordinator is paused (SIGSTOP) when it
# raises its first escalation (a replay decides in milliseconds what a live feed decides hourly);
# once the operator has written the rest, with the Strategy Ready, a last decision and the escalation
# pending, it runs `kubectl ia-agents status btc-eth-paper` against that kubeconfig. Headless
# Chromium then renders the text as a terminal 160 columns wide. The replay is deterministic: a
# rerun normally shows the same screen unless the team's code changed.
#
# Needs: cargo, nats-server (scripts/services.sh installs it), chromium; kubectl is optional (the
# plugin binary runs directly without it, as kubectl would run it).
# Run: scripts/screenshot-plugin.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=docs/images
TARGET=${CARGO_TARGET_DIR:-$PWD/target}/debug
CHROMIUM=${CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}
COLS=160
LINE_PX=20
COMMAND="kubectl ia-agents status btc-eth-paper"

cargo build --locked -p ia-agent --bin trading-agent \
  -p ia-operator --bin kubectl-ia_agents --example replay_cluster

# a run of a few seconds once built; its pods' files and logs go to a temporary directory
"$TARGET/examples/replay_cluster" --agent "$TARGET/trading-agent" --plugin-dir "$TARGET" \
  --out "$OUT/plugin-status.txt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the terminal's rows: the prompt, then each line of the text as a terminal wraps it
rows=$(awk -v cols="$COLS" '{ n = int((length($0) + cols - 1) / cols); rows += (n < 1 ? 1 : n) }
  END { print rows + 1 }' "$OUT/plugin-status.txt")
height=$((32 + 16 + rows * LINE_PX + 16))
text=$(sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' "$OUT/plugin-status.txt")

cat >"$work/terminal.html" <<EOF
<!doctype html>
<html><head><meta charset="utf-8"><style>
  html, body { margin: 0; background: #1e1e1e; }
  .bar { height: 32px; background: #323232; display: flex; align-items: center; padding: 0 12px;
         font: 13px "DejaVu Sans", sans-serif; color: #b8b8b8; }
  .dot { width: 12px; height: 12px; border-radius: 50%; margin-right: 8px; }
  .title { flex: 1; text-align: center; margin-right: 60px; }
  pre { margin: 0; padding: 16px 20px; width: ${COLS}ch; color: #d4d4d4;
        font: 14px/${LINE_PX}px "DejaVu Sans Mono", "Liberation Mono", monospace;
        white-space: pre-wrap; word-break: break-all; }
  .prompt { color: #8ae234; }
</style></head><body>
<div class="bar"><span class="dot" style="background:#ff5f56"></span><span class="dot"
  style="background:#ffbd2e"></span><span class="dot" style="background:#27c93f"></span>
  <span class="title">${COMMAND}</span></div>
<pre><span class="prompt">\$ ${COMMAND}</span>
${text}</pre>
</body></html>
EOF

if ! "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="1400,$height" --screenshot="$work/plugin-status.png" \
  "file://$work/terminal.html" >"$work/chromium.log" 2>&1; then
  cat "$work/chromium.log" >&2
  exit 1
fi
cp "$work/plugin-status.png" "$OUT/plugin-status.png"
echo "wrote $OUT/plugin-status.txt and $OUT/plugin-status.png"
