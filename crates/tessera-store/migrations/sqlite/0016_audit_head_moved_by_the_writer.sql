-- The audit chain's head moves once per appended batch, by the writer,
-- instead of by two triggers on every row: `append_audit` moves the head
-- with `UPDATE audit_head ... WHERE seq = <first - 1> AND hash = <first's
-- prev_hash>` before it inserts the batch, so an append that does not
-- continue the head still writes nothing and is refused (it reads the head
-- and chains again), and the rows of the batch are checked to chain in
-- order before any is written. Per row, the triggers cost a trigger
-- program and a statement journal (old page images) for every insert:
-- about a third of what appending a read's audit event cost.
DROP TRIGGER audit_events_continue_head;
DROP TRIGGER audit_events_move_head;
