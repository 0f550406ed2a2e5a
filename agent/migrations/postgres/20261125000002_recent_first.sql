-- The API lists decisions and orders newest first, with or without a symbol filter: these indexes
-- serve both without sorting the strategy's whole history on every request.
CREATE INDEX decisions_recent ON decisions (strategy, decided_at DESC, id DESC);
CREATE INDEX decisions_recent_by_symbol ON decisions (strategy, symbol, decided_at DESC, id DESC);
CREATE INDEX orders_recent ON orders (strategy, at DESC, decision_id DESC);
