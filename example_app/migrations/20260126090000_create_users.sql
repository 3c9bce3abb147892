-- migrate:up
-- People who own projects and are assigned tasks. Email is unique case-insensitively, so the
-- unique index is on lower(email) rather than a plain UNIQUE constraint.
CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- A nullable foreign key is a metadata-only change: no table rewrite, existing tasks stay unassigned.
-- The index can be built in this transaction because tasks.assignee_id is new and all NULL.
ALTER TABLE tasks ADD COLUMN assignee_id bigint REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX tasks_assignee_id_idx ON tasks (assignee_id);

-- migrate:down
ALTER TABLE tasks DROP COLUMN assignee_id;
DROP TABLE users;
