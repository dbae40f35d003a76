-- Per-user notifications, made from domain events. Owned by the notifications service alone;
-- user_id and order_id are ids of other services' databases (no foreign keys can reach there).
CREATE TABLE notifications (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Insertion order, for keyset pagination: strictly increasing, whereas timestamps can tie.
  seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  user_id    uuid NOT NULL,
  -- The event this notification was made from: its stream and its event_id field (the orders
  -- outbox id). Unique, and written in the same statement as the notification: a redelivered event
  -- finds its notification instead of making a second one.
  source     text NOT NULL,
  event_id   bigint NOT NULL,
  type       text NOT NULL,
  order_id   uuid,
  title      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  read_at    timestamptz,
  -- When it was handed to the gateways' live streams; NULL until then (the sweep retries).
  pushed_at  timestamptz,
  UNIQUE (source, event_id)
);
-- A user's listing, newest first, all or unread only.
CREATE INDEX notifications_user_seq_idx ON notifications (user_id, seq);
CREATE INDEX notifications_user_unread_idx ON notifications (user_id, seq) WHERE read_at IS NULL;
-- The push sweep reads only what is still to push.
CREATE INDEX notifications_unpushed_idx ON notifications (seq) WHERE pushed_at IS NULL;
