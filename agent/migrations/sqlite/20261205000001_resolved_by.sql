-- Who answered an escalated decision (the resolution's `by`: the operator's relayed annotation, or
-- the HTTP API); NULL for a decision nobody resolved. Committed to the decision's audit entry.
ALTER TABLE decisions ADD COLUMN resolved_by TEXT;
