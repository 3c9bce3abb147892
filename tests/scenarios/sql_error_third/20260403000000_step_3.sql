-- migrate:up
CREATE TABLE step_3 (id int);
INSERT INTO step_3 VALUES (1);
ALTER TABLE step_3
    ADD COLUMN label text,
    ADD COLUMN broken nosuchtype;
-- migrate:down
DROP TABLE step_3;
