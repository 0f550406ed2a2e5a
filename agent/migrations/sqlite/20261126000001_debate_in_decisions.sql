-- The debate travels with its decision: one JSON array per decision (the Decision message's own
-- transcript) instead of one row per opinion. A backtest decides on every candle, and ~15 opinion rows
-- per decision (each repeating strategy, decision id and symbol, plus an index entry) were most of
-- what a run wrote. `opinions` stays queryable, row by row, as a view.

ALTER TABLE decisions ADD COLUMN transcript TEXT NOT NULL DEFAULT '[]';

UPDATE decisions SET transcript = (
    SELECT COALESCE(json_group_array(json_object(
        'round', o.round, 'assistant', o.assistant, 'role', o.role, 'action', o.action,
        'confidence', o.confidence, 'weight', o.weight, 'reasoning', o.reasoning,
        'evidence', json(o.evidence), 'veto', json(CASE WHEN o.veto THEN 'true' ELSE 'false' END),
        'llm', json(CASE WHEN o.llm THEN 'true' ELSE 'false' END))), '[]')
    FROM (SELECT * FROM opinions
          WHERE opinions.strategy = decisions.strategy AND opinions.decision_id = decisions.id
          ORDER BY opinions.id) AS o
);

DROP TABLE opinions;

CREATE VIEW opinions AS
SELECT d.strategy                                         AS strategy,
       d.id                                               AS decision_id,
       CAST(o.key AS INTEGER)                             AS position,
       CAST(json_extract(o.value, '$.round') AS INTEGER)  AS round,
       json_extract(o.value, '$.assistant')               AS assistant,
       json_extract(o.value, '$.role')                    AS role,
       d.symbol                                           AS symbol,
       json_extract(o.value, '$.action')                  AS action,
       json_extract(o.value, '$.confidence')              AS confidence,
       json_extract(o.value, '$.weight')                  AS weight,
       json_extract(o.value, '$.reasoning')               AS reasoning,
       json_extract(o.value, '$.evidence')                AS evidence,
       json_extract(o.value, '$.veto')                    AS veto,
       json_extract(o.value, '$.llm')                     AS llm
FROM decisions AS d, json_each(d.transcript) AS o;
