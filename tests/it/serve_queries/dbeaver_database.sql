-- DBeaver: PostgreDatabase.readDatabaseInfo, datname bound.
-- dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname='lastseen'
