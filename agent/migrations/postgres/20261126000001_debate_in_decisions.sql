-- The debate travels with its decision: one JSON array per decision (the Decision message's own
-- transcript) instead of one row per opinion. A backtest decides on every candle, and ~15 opinion rows
-- per decision (each repeating strategy, decision id and symbol, plus an index entry) were most of
-- what a run wrote. `opinions` stays queryable, row by row, as a view. TEXT like `votes` and the
-- old `evidence`, so both backends store byte-identical values; the view reads it as JSONB.

ALTER TABLE decisions ADD COLUMN transcript TEXT NOT NULL DEFAULT '[]';

UPDATE decisions AS d SET transcript = agg.transcript
FROM (
    SELECT strategy, decision_id,
           json_agg(json_build_object(
               'round', round, 'assistant', assistant, 'role', role, 'action', action,
               'confidence', confidence, 'weight', weight, 'reasoning', reasoning,
               'evidence', evidence::json, 'veto', veto, 'llm', llm) ORDER BY id)::text AS transcript
    FROM opinions
    GROUP BY strategy, decision_id
) AS agg
WHERE agg.strategy = d.strategy AND agg.decision_id = d.id;

DROP TABLE opinions;

CREATE VIEW opinions AS
SELECT d.strategy                              AS strategy,
       d.id                                    AS decision_id,
       (o.position - 1)::INTEGER               AS position,
       (o.value ->> 'round')::INTEGER          AS round,
       o.value ->> 'assistant'                 AS assistant,
       o.value ->> 'role'                      AS role,
       d.symbol                                AS symbol,
       o.value ->> 'action'                    AS action,
       (o.value ->> 'confidence')::DOUBLE PRECISION AS confidence,
       (o.value ->> 'weight')::DOUBLE PRECISION     AS weight,
       o.value ->> 'reasoning'                 AS reasoning,
       (o.value -> 'evidence')::TEXT           AS evidence,
       (o.value ->> 'veto')::BOOLEAN           AS veto,
       (o.value ->> 'llm')::BOOLEAN            AS llm
FROM decisions AS d,
     jsonb_array_elements(d.transcript::jsonb) WITH ORDINALITY AS o(value, position);
