-- The example schema of the sql source, MySQL and MariaDB. Times are UTC.
CREATE TABLE users (
  id         BIGINT PRIMARY KEY,
  created_at DATETIME NOT NULL
);
CREATE TABLE events (
  user_id BIGINT NOT NULL,
  name    VARCHAR(64) NOT NULL,
  at      DATETIME NOT NULL
);
CREATE INDEX events_at_user ON events (at, user_id);
CREATE INDEX events_name_at ON events (name, at, user_id);
CREATE INDEX events_user_at ON events (user_id, at);
CREATE INDEX users_created_at ON users (created_at);
