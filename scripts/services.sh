#!/usr/bin/env bash
# Starts throwaway PostgreSQL and NATS servers on 127.0.0.1 for the integration tests, installing them
# from apt when missing, and prints the environment the tests read (eval "$(scripts/services.sh)").
# The servers live under target/services/ and are stopped by `scripts/services.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/target/services
PG_PORT=${IA_TEST_PG_PORT:-55432}
NATS_PORT=${IA_TEST_NATS_PORT:-54222}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
pg_bin() { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -1; }

if [ "${1:-}" = stop ]; then
  if [ -f "$ROOT/nats.pid" ]; then kill "$(cat "$ROOT/nats.pid")" 2>/dev/null || true; fi
  if [ -d "$ROOT/pg" ]; then
    as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    as_postgres "$(pg_bin)/pg_ctl" -D "$ROOT/pg" -m fast stop >/dev/null 2>&1 || true
  fi
  exit 0
fi

missing=()
[ -n "$(pg_bin)" ] || missing+=(postgresql)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt)" >&2
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
  # Debian starts a packaged cluster on 5432; ours is separate, so leave it be.
fi
mkdir -p "$ROOT"

# PostgreSQL refuses to run as root: run it as the postgres user, data under target/services/pg.
PG=$(pg_bin)
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$ROOT"
  as_postgres() { runuser -u postgres -- "$@"; }
else
  as_postgres() { "$@"; }
fi
if ! as_postgres "$PG/pg_ctl" -D "$ROOT/pg" status >/dev/null 2>&1; then
  if [ ! -f "$ROOT/pg/PG_VERSION" ]; then
    as_postgres "$PG/initdb" -D "$ROOT/pg" -U ia --auth=trust -E UTF8 >/dev/null
  fi
  as_postgres "$PG/pg_ctl" -D "$ROOT/pg" -l "$ROOT/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $ROOT -c fsync=off -c max_connections=200" start >/dev/null
  as_postgres "$PG/createdb" -h 127.0.0.1 -p "$PG_PORT" -U ia ia 2>/dev/null || true
fi

# NATS with JetStream, state under target/services/nats.
if ! { [ -f "$ROOT/nats.pid" ] && kill -0 "$(cat "$ROOT/nats.pid")" 2>/dev/null; }; then
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$ROOT/nats" -l "$ROOT/nats.log" >/dev/null 2>&1 &
  echo $! > "$ROOT/nats.pid"
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$NATS_PORT") 2>/dev/null && break; sleep 0.1; done
fi

echo "export IA_TEST_POSTGRES_URL=postgres://ia@127.0.0.1:$PG_PORT/ia"
echo "export IA_TEST_NATS_URL=nats://127.0.0.1:$NATS_PORT"
echo "export IA_TEST_NATS_SERVER=$(command -v nats-server)"
