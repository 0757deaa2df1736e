-- The audit chain's head moves with every appended event inside the inserting
-- statement, and an event that does not continue the head is refused. A writer
-- may then remember the head between transactions instead of reading and
-- updating it each time: when it was wrong (another process appended, or a
-- transaction that appended rolled back) the insert fails, nothing is written,
-- and the writer reads the head and chains its events again.
CREATE TRIGGER audit_events_continue_head BEFORE INSERT ON audit_events
WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_head WHERE id = 1)
  OR NEW.prev_hash IS NOT (SELECT hash FROM audit_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit_head_moved');
END;

CREATE TRIGGER audit_events_move_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;
