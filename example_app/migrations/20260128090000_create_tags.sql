-- migrate:up
-- Tags, and the many-to-many link between tasks and tags.
CREATE TABLE tags (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);
CREATE TABLE task_tags (
    task_id bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id  bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
-- The primary key serves "tags of a task"; "tasks with a tag" needs its own index. A plain
-- CREATE INDEX is fine here: the table was created a line above, so nobody else can be using it.
CREATE INDEX task_tags_tag_id_idx ON task_tags (tag_id);

-- migrate:down
DROP TABLE task_tags;
DROP TABLE tags;
