-- migrate:up transaction:false
DROP DATABASE legacy_reports;

-- migrate:down
