-- Fixture for the embedding test: the bytes of this file, quotes ' " \ and all, must arrive
-- unchanged in the binary. )" and )sql" would end a naive raw string literal.
CREATE TABLE widgets (
  id serial PRIMARY KEY,
  label text NOT NULL DEFAULT 'it''s a "widget" \ )sql" )"'
);
