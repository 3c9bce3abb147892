-- migrate:up
CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, touched int NOT NULL DEFAULT 0, score int);
INSERT INTO events (id, kind) SELECT g, 'k' || (g % 7) FROM generate_series(1, 200000) g;
-- migrate:down
DROP TABLE events;
