-- migrate:up
CREATE TYPE user_status AS ENUM ('active', 'blocked');
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    status user_status NOT NULL DEFAULT 'active'
);

-- migrate:down
DROP TABLE users;
DROP TYPE user_status;
