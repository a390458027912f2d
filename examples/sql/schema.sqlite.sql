-- The example schema of the sql source, SQLite. Times are UTC text in the
-- form of datetime(): 'YYYY-MM-DD HH:MM:SS' (:from and :to are bound so).
CREATE TABLE users (
  id         INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL
);
CREATE TABLE events (
  user_id INTEGER NOT NULL,
  name    TEXT NOT NULL,
  at      TEXT NOT NULL
);
CREATE INDEX events_at_user ON events (at, user_id);
CREATE INDEX events_name_at ON events (name, at, user_id);
CREATE INDEX events_user_at ON events (user_id, at);
CREATE INDEX users_created_at ON users (created_at);
