-- Which notifications still need a push is now kept by the event stream's pending list (an entry
-- is acknowledged only after its push), not by this column: updating pushed_at rewrote every row
-- and its six index entries once more. New rows get pushed_at at insert, so that replicas of the
-- previous version, still running during a rolling upgrade, leave them to the new consumers (their
-- sweep looks for pushed_at IS NULL) and the partial index of unpushed rows gets no new entries.
-- The column and its index go in the next release.
ALTER TABLE notifications ALTER COLUMN pushed_at SET DEFAULT now();
COMMENT ON COLUMN notifications.pushed_at IS
  'unused: push progress is the event stream''s pending list; dropped in the next release';
