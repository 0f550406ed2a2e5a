-- ia-agents storage, keyed by strategy. Money and quantities are exact decimal strings (TEXT), the
-- same in Postgres and SQLite, so the two backends hold byte-identical values.

CREATE TABLE decisions (
    id                TEXT NOT NULL,
    strategy          TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    action            TEXT NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
    confidence        REAL NOT NULL,
    consensus_reached BOOLEAN NOT NULL,
    escalated         BOOLEAN NOT NULL,
    vetoed            BOOLEAN NOT NULL,
    rounds            INTEGER NOT NULL,
    votes             TEXT NOT NULL,       -- JSON: every round's scores per action and weights
    price             REAL NOT NULL,
    decided_at        INTEGER NOT NULL,     -- ms since the Unix epoch
    PRIMARY KEY (strategy, id)
);
CREATE INDEX decisions_by_time ON decisions (strategy, symbol, decided_at);

CREATE TABLE opinions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy    TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    round       INTEGER NOT NULL,
    assistant   TEXT NOT NULL,
    role        TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    action      TEXT NOT NULL,
    confidence  REAL NOT NULL,
    weight      REAL NOT NULL,            -- the vote's weight (0: not counted)
    reasoning   TEXT NOT NULL,
    evidence    TEXT NOT NULL,             -- JSON object of figures
    veto        BOOLEAN NOT NULL,
    llm         BOOLEAN NOT NULL
);
-- written once per decision, with it (the decision's primary key keeps replays out)
CREATE INDEX opinions_by_decision ON opinions (strategy, decision_id);

CREATE TABLE orders (
    strategy    TEXT NOT NULL,
    decision_id TEXT NOT NULL,             -- idempotency key: one order per decision
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    kind        TEXT NOT NULL,
    quantity    TEXT NOT NULL,
    status      TEXT NOT NULL,             -- FILLED | REJECTED
    price       TEXT,
    fee         TEXT,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (strategy, decision_id)
);

CREATE TABLE positions (
    strategy    TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    quantity    TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (strategy, symbol)
);

CREATE TABLE portfolio (
    strategy TEXT NOT NULL,
    at       INTEGER NOT NULL,
    equity   TEXT NOT NULL,
    cash     TEXT NOT NULL,
    PRIMARY KEY (strategy, at)
);

CREATE TABLE audit_log (
    strategy  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (strategy, seq)
);

CREATE TABLE assistant_weights (
    strategy   TEXT NOT NULL,
    assistant  TEXT NOT NULL,
    weight     REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (strategy, assistant)
);

CREATE TABLE models (
    strategy   TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    trained_at INTEGER NOT NULL,
    metrics    TEXT NOT NULL,              -- JSON
    model      BLOB NOT NULL,
    PRIMARY KEY (strategy, name, version)
);
