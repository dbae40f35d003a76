-- Orders, their line items, idempotency keys and the transactional outbox. Owned by the orders
-- service alone. user_id values are ids of the users service, which lives in another database:
-- no foreign key can (or should) reach there.
CREATE TABLE orders (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Insertion order, for keyset pagination: strictly increasing, whereas timestamps can tie.
  seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  user_id     uuid NOT NULL,
  status      text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'SHIPPED', 'CANCELLED')),
  currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  total_cents bigint NOT NULL CHECK (total_cents >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- A user's listing, newest first (scanned backwards).
CREATE INDEX orders_user_id_seq_idx ON orders (user_id, seq);
-- The auto-confirm sweep reads PENDING orders only, oldest first.
CREATE INDEX orders_pending_created_at_idx ON orders (created_at) WHERE status = 'PENDING';

CREATE TABLE order_items (
  order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  position         int NOT NULL CHECK (position >= 0),
  sku              text NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
  quantity         int NOT NULL CHECK (quantity >= 1),
  unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
  PRIMARY KEY (order_id, position)
);

-- Idempotency-Key per user. The primary key is what makes concurrent retries create one order:
-- the second INSERT ... ON CONFLICT waits for the first transaction and then sees its row.
CREATE TABLE idempotency_keys (
  user_id         uuid NOT NULL,
  idempotency_key text NOT NULL,
  request_hash    bytea NOT NULL,  -- SHA-256 of the canonical serialized request
  -- The key is claimed before its order is inserted, in the same transaction: check at commit.
  order_id        uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE
                    DEFERRABLE INITIALLY DEFERRED,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- Transactional outbox: one row per order state change, written in the transaction of the change
-- and published to a Redis Stream afterwards by the relay.
CREATE TABLE outbox (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id     uuid NOT NULL,
  user_id      uuid NOT NULL,
  type         text NOT NULL,   -- order.created, order.confirmed, order.shipped, order.cancelled
  -- The order after the change, as the API renders it. json, not jsonb: relayed byte for byte.
  payload      json NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
