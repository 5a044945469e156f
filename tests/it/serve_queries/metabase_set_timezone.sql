-- Metabase: sql-jdbc.execute/set-timezone-sql (report timezone UTC).
-- metabase/metabase src/metabase/driver/postgres.clj
SET SESSION TIMEZONE TO 'UTC';
