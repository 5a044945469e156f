-- DBeaver: PostgreDataSource settings read, name bound.
-- dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java
select * from pg_catalog.pg_settings where name='standard_conforming_strings'
