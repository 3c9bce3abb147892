-- migrate:up
UPDATE users SET plan = 'pro' WHERE plan = 'premium';
