-- decisions_recent_by_symbol (strategy, symbol, decided_at DESC, id DESC) serves every lookup that
-- decisions_by_time (strategy, symbol, decided_at) did; keeping both cost an index write per decision.
DROP INDEX decisions_by_time;
