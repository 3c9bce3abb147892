-- migrate:up
CREATE TABLE step_5 (id int);
-- migrate:down
DROP TABLE step_5;
