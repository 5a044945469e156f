-- DBeaver: PostgreSchema.readSchemaId (schema_id lookup), 'public' bound.
-- dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java
SELECT s.oid as schema_id
from pg_catalog.pg_namespace s
WHERE s.nspname ='public'
