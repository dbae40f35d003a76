-- Which notifications still need a push is now kept by the event stream's pending list (an entry
-- is acknowledged only after its push), not by this column: updating pushed_at rewrote every row
-- and its six index entries once more. The column stays for one release, so that replicas of the
-- previous version still run during a rolling upgrade (their sweep may push rows again, which
-- at-least-once push allows); its partial index goes now, as new rows would only grow it.
DROP INDEX IF EXISTS notifications_unpushed_idx;
COMMENT ON COLUMN notifications.pushed_at IS
  'unused: push progress is the event stream''s pending list; dropped in the next release';
