-- A rejected cycle (the policy's `escalation.action: Reject`, or a human's reject) is a decision of
-- its own kind: no order follows it, where a HOLD may still resize a held position.
ALTER TABLE decisions ADD COLUMN rejected BOOLEAN NOT NULL DEFAULT FALSE;
