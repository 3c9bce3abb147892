-- migrate:up
-- A data fix: tags were created as typed ('Bug', ' bug', 'BUG'), which split tasks across
-- duplicates. Normalize the names to lower case without surrounding spaces, merging duplicates
-- into the oldest tag, and keep it that way with a CHECK constraint.
CREATE TEMPORARY TABLE tag_merge ON COMMIT DROP AS
SELECT id, min(id) OVER (PARTITION BY lower(btrim(name))) AS keep_id
FROM tags;

INSERT INTO task_tags (task_id, tag_id)
SELECT tt.task_id, m.keep_id
FROM task_tags tt JOIN tag_merge m ON m.id = tt.tag_id
WHERE m.id <> m.keep_id
ON CONFLICT DO NOTHING;

DELETE FROM tags t USING tag_merge m WHERE m.id = t.id AND m.id <> m.keep_id;

UPDATE tags SET name = lower(btrim(name)) WHERE name <> lower(btrim(name));

ALTER TABLE tags ADD CONSTRAINT tags_name_normalized CHECK (name = lower(btrim(name)));

-- migrate:down
-- The merged duplicates are not restored (nothing needs them back); only the constraint goes.
ALTER TABLE tags DROP CONSTRAINT tags_name_normalized;
