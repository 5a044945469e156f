-- DBeaver: PostgreTableReal.readTableStatistics, the first relation's OID bound.
-- dbeaver/dbeaver plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTableReal.java
select pg_catalog.pg_total_relation_size(16384) as total_rel_size,pg_catalog.pg_relation_size(16384) as rel_size
