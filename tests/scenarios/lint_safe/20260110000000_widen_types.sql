-- migrate:up
ALTER TABLE users ALTER COLUMN email TYPE varchar(200);
ALTER TABLE users ALTER COLUMN balance TYPE numeric(12, 2);

-- migrate:down
ALTER TABLE users ALTER COLUMN balance TYPE numeric(10, 2);
ALTER TABLE users ALTER COLUMN email TYPE varchar(100);
