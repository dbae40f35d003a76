-- seq is only read together with user_id (keyset pages of one user's notifications, served by
-- notifications_user_seq_idx), and as an identity column GENERATED ALWAYS it is unique without an
-- index of its own. That index cost a write per notification, two per order (placed, confirmed).
-- Replicas of the previous version never name the constraint, so a rolling upgrade is safe.
ALTER TABLE notifications DROP CONSTRAINT notifications_seq_key;
