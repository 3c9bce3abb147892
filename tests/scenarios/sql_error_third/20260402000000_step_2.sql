-- migrate:up
CREATE TABLE step_2 (id int);
-- migrate:down
DROP TABLE step_2;
