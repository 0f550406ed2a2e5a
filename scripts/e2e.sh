#!/usr/bin/env bash
# End-to-end on kind: create the cluster, build and load the images, install the chart, apply the
# sample team (replaying the bundled candles, so no exchange is needed), wait for Ready on the Strategy
# and all seven TradingAssistants, scale one assistant, observe a decision in `kubectl get strategy`,
# and tear down (KEEP_CLUSTER=1 keeps it for a look around).
#
# Needs: docker, kind, kubectl, helm.   Run: make e2e
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-ia-agents}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
OPERATOR_IMAGE=ghcr.io/ia-agents/trading-operator:$VERSION
AGENT_IMAGE=ghcr.io/ia-agents/trading-agent:$VERSION
NS=trading
TIMEOUT=${E2E_TIMEOUT:-600s}

log() { printf '\n==> %s\n' "$*"; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e needs $tool on PATH" >&2; exit 1; }
done

diagnose() {
  log "diagnostics"
  kubectl get ia-agents,deploy,sts,pods -A -o wide || true
  kubectl -n "$NS" describe strategy || true
  kubectl -n ia-agents-system logs deploy/ia-agents --tail=200 || true
  kubectl -n "$NS" logs deploy/btc-eth-paper-coordinator --tail=100 || true
  kubectl get events -A --sort-by=.lastTimestamp | tail -50 || true
}
cleanup() {
  status=$?
  [ $status -ne 0 ] && diagnose
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    log "deleting kind cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit $status
}
trap cleanup EXIT

if ! kind get clusters | grep -qx "$CLUSTER"; then
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config kind-cluster.yaml --wait 120s
fi

log "building the images"
docker build --target operator -t "$OPERATOR_IMAGE" .
docker build --target agent -t "$AGENT_IMAGE" .
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$AGENT_IMAGE"

log "installing the chart"
helm upgrade --install ia-agents charts/ia-agents -n ia-agents-system --create-namespace \
  --set image.pullPolicy=IfNotPresent --wait --timeout "$TIMEOUT"

log "applying the sample team (replaying bundled candles)"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" apply -k config/samples
kubectl -n "$NS" patch strategy btc-eth-paper --type merge \
  -p '{"spec":{"marketData":{"source":"replay"}}}'

log "waiting for the seven assistants and the Strategy to be Ready"
kubectl -n "$NS" wait --for=condition=Ready ta --all --timeout "$TIMEOUT"
kubectl -n "$NS" wait --for=condition=Ready strategy/btc-eth-paper --timeout "$TIMEOUT"
kubectl -n "$NS" get ia-agents

log "scaling the technical analyst to 2 (scale subresource)"
kubectl -n "$NS" scale ta/technical-analyst --replicas=2
kubectl -n "$NS" wait --for=jsonpath='{.status.readyReplicas}'=2 ta/technical-analyst --timeout "$TIMEOUT"

log "waiting for a decision in the Strategy's status"
for _ in $(seq 1 120); do
  decision=$(kubectl -n "$NS" get strategy btc-eth-paper -o jsonpath='{.status.lastDecision.id}')
  [ -n "$decision" ] && break
  sleep 5
done
[ -n "$decision" ] || { echo "no decision reached the Strategy's status" >&2; exit 1; }
kubectl -n "$NS" get strategy btc-eth-paper
kubectl -n "$NS" get strategy btc-eth-paper \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}){"\n"}{end}'
log "e2e passed: decision $decision"
