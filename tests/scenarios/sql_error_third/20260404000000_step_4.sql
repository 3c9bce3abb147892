-- migrate:up
CREATE TABLE step_4 (id int);
-- migrate:down
DROP TABLE step_4;
