-- The example schema of the sql source, PostgreSQL. Times are UTC.
CREATE TABLE users (
  id         bigint PRIMARY KEY,
  created_at timestamp NOT NULL              -- sign-up
);
CREATE TABLE events (
  user_id bigint NOT NULL,
  name    text NOT NULL,                     -- session_start, session_end, or a feature's name
  at      timestamp NOT NULL
);
-- The indexes the example queries need: each reads a window of time, and
-- counts distinct users (at, user_id cover it without reading the table).
CREATE INDEX events_at_user ON events (at, user_id);
CREATE INDEX events_name_at ON events (name, at) INCLUDE (user_id);
CREATE INDEX events_user_at ON events (user_id, at);
CREATE INDEX users_created_at ON users (created_at);
