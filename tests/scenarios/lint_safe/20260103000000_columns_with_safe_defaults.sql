-- migrate:up
ALTER TABLE users ADD COLUMN nickname text;
ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';
ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE users ADD COLUMN score integer DEFAULT 0;

-- migrate:down
ALTER TABLE users DROP COLUMN nickname, DROP COLUMN plan, DROP COLUMN created_at, DROP COLUMN score;
