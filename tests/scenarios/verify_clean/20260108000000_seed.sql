-- migrate:up
INSERT INTO billing.accounts (email) VALUES ('first@example.com');
