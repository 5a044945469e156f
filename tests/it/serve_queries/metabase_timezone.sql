-- Metabase: driver/db-default-timezone.
-- metabase/metabase src/metabase/driver/postgres.clj
show timezone;
