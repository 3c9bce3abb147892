-- migrate:up
-- pgmig:allow ban-drop-column because the app stopped reading users.legacy in release 2.3
ALTER TABLE users DROP COLUMN legacy;
ALTER TABLE users RENAME COLUMN nickname TO handle; -- pgmig:allow renaming-column because handle is only read by the admin job, deployed first

-- migrate:down
ALTER TABLE users RENAME COLUMN handle TO nickname;
ALTER TABLE users ADD COLUMN legacy text;
