-- migrate:up
CREATE TABLE step_1 (id int);
-- migrate:down
DROP TABLE step_1;
