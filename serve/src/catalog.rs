//! Enough of Postgres' `pg_catalog` for the schema browsers of DBeaver, Metabase and Grafana and
//! for drivers' type look-ups: namespaces, relations, columns and types built from the
//! session's own tables and views (so they always describe the served lake version), empty
//! tables for the catalogues lastseen has no use for (indexes, constraints, …), and the
//! functions those tools call (`version()`, `format_type`, `has_table_privilege`, …).
//! `information_schema`'s views the tools read are lastseen's own, in `pg_information_schema`
//! ([`crate::compat`] points the names there), with Postgres type names.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int16Array, Int32Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::common::{ScalarValue, cast::as_int64_array};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use pgwire::api::Type;

use crate::error::Result;

pub const PG_CATALOG_OID: i32 = 11;
pub const PUBLIC_OID: i32 = 2200;
pub const INFORMATION_SCHEMA_OID: i32 = 13_000;
/// Relations get OIDs from here up, in name order (the first OID Postgres gives user objects).
const FIRST_REL_OID: i32 = 16_384;
/// The owner of everything.
const OWNER_OID: i32 = 10;
pub const DATABASE: &str = "lastseen";
/// Where the Postgres-typed `information_schema` views live.
pub const INFORMATION_SCHEMA: &str = "pg_information_schema";
/// The `information_schema` views served from [`INFORMATION_SCHEMA`].
pub const INFORMATION_SCHEMA_TABLES: &[&str] =
    &["columns", "tables", "schemata", "views", "table_constraints", "key_column_usage"];

/// Registers `pg_catalog` (tables and functions) on `ctx`, describing its `public` tables.
pub async fn register(ctx: &SessionContext) -> Result<()> {
    let public = ctx.catalog("datafusion").and_then(|c| c.schema("public"));
    let mut relations: Vec<(String, TableType, SchemaRef)> = Vec::new();
    if let Some(public) = public {
        let mut names = public.table_names();
        names.sort();
        for name in names {
            if let Some(t) = public.table(&name).await? {
                relations.push((name, t.table_type(), t.schema()));
            }
        }
    }
    let schema = MemorySchemaProvider::new();
    for (name, batch) in tables(&relations)? {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        schema.register_table(name.to_owned(), Arc::new(table))?;
    }
    let info = MemorySchemaProvider::new();
    for (name, batch) in information_schema(&relations)? {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        info.register_table(name.to_owned(), Arc::new(table))?;
    }
    if let Some(catalog) = ctx.catalog("datafusion") {
        catalog.register_schema("pg_catalog", Arc::new(schema))?;
        catalog.register_schema(INFORMATION_SCHEMA, Arc::new(info))?;
    }
    let oids: Vec<(String, i32)> =
        relations.iter().enumerate().map(|(i, r)| (r.0.clone(), FIRST_REL_OID + i as i32)).collect();
    for udf in functions(oids) {
        ctx.register_udf(udf);
    }
    ctx.register_udtf("pg_get_keywords", Arc::new(Keywords));
    Ok(())
}

/// `pg_get_keywords()`: the keywords of the SQL parser that reads the queries here (pgjdbc's
/// `getSQLKeywords`, which DBeaver calls on connect, filters this list).
#[derive(Debug)]
struct Keywords;

impl datafusion::catalog::TableFunctionImpl for Keywords {
    fn call_with_args(
        &self,
        _args: datafusion::catalog::TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
        let words: Vec<String> =
            datafusion::sql::sqlparser::keywords::ALL_KEYWORDS.iter().map(|k| k.to_lowercase()).collect();
        let n = words.len();
        let b = batch(vec![
            ("word", Arc::new(StringArray::from(words)) as ArrayRef),
            ("catcode", s(vec!["U"; n])),
            ("barelabel", bools(vec![true; n])),
            ("catdesc", s(vec!["unreserved"; n])),
            ("baredesc", s(vec!["can be bare label"; n])),
        ])
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(MemTable::try_new(b.schema(), vec![vec![b]])?))
    }
}

/// `information_schema` as Postgres shows it for the served relations (the catalogue's own
/// tables are left out, as the tools filter them anyway): Grafana's column picker and
/// Metabase's `describe-fields-sql` read `data_type` / `udt_name` as Postgres type names.
fn information_schema(relations: &[(String, TableType, SchemaRef)]) -> Result<Vec<(&'static str, RecordBatch)>> {
    let n = relations.len();
    let mut out = Vec::new();
    out.push((
        "schemata",
        batch(vec![
            ("catalog_name", s(vec![DATABASE; 3])),
            ("schema_name", s(vec!["information_schema", "pg_catalog", "public"])),
            ("schema_owner", s(vec!["lastseen"; 3])),
        ])?,
    ));
    out.push((
        "tables",
        batch(vec![
            ("table_catalog", s(vec![DATABASE; n])),
            ("table_schema", s(vec!["public"; n])),
            ("table_name", s(relations.iter().map(|r| r.0.as_str()).collect())),
            (
                "table_type",
                s(relations.iter().map(|r| if r.1 == TableType::View { "VIEW" } else { "BASE TABLE" }).collect()),
            ),
            ("is_insertable_into", s(vec!["NO"; n])),
            ("is_typed", s(vec!["NO"; n])),
        ])?,
    ));
    let views: Vec<&str> = relations.iter().filter(|r| r.1 == TableType::View).map(|r| r.0.as_str()).collect();
    let v = views.len();
    out.push((
        "views",
        batch(vec![
            ("table_catalog", s(vec![DATABASE; v])),
            ("table_schema", s(vec!["public"; v])),
            ("table_name", s(views)),
            ("view_definition", os(vec![None; v])),
            ("is_updatable", s(vec!["NO"; v])),
        ])?,
    ));
    let (mut table, mut column, mut position, mut nullable, mut data_type, mut udt) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in relations {
        for (j, f) in r.2.fields().iter().enumerate() {
            let t = pg_type(f.data_type());
            table.push(r.0.as_str());
            column.push(f.name().as_str());
            position.push(j as i32 + 1);
            nullable.push(if f.is_nullable() { "YES" } else { "NO" });
            // Postgres says `ARRAY` for every array column and its element type in `udt_name`.
            data_type.push(if t.name().starts_with('_') {
                "ARRAY"
            } else {
                type_name(i64::from(t.oid())).unwrap_or("text")
            });
            udt.push(t.name().to_owned());
        }
    }
    let m = table.len();
    let null_i32 = || Arc::new(Int32Array::from(vec![None; m])) as ArrayRef;
    out.push((
        "columns",
        batch(vec![
            ("table_catalog", s(vec![DATABASE; m])),
            ("table_schema", s(vec!["public"; m])),
            ("table_name", s(table)),
            ("column_name", s(column)),
            ("ordinal_position", i32s(position)),
            ("column_default", os(vec![None; m])),
            ("is_nullable", s(nullable)),
            ("data_type", s(data_type)),
            ("character_maximum_length", null_i32()),
            ("numeric_precision", null_i32()),
            ("numeric_scale", null_i32()),
            ("datetime_precision", null_i32()),
            ("udt_catalog", s(vec![DATABASE; m])),
            ("udt_schema", s(vec!["pg_catalog"; m])),
            ("udt_name", Arc::new(StringArray::from(udt)) as ArrayRef),
            ("is_identity", s(vec!["NO"; m])),
            ("is_generated", s(vec!["NEVER"; m])),
            ("is_updatable", s(vec!["NO"; m])),
        ])?,
    ));
    let text = DataType::Utf8;
    let constraint = |extra: &[(&'static str, DataType)]| {
        let mut cols: Vec<(&str, DataType)> = [
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
        ]
        .iter()
        .map(|c| (*c, text.clone()))
        .collect();
        cols.extend(extra.iter().cloned());
        empty(&cols)
    };
    // lastseen's tables have no keys: the lake is append-and-replace Parquet.
    out.push(("table_constraints", constraint(&[("constraint_type", text.clone())])?));
    out.push((
        "key_column_usage",
        constraint(&[("column_name", text.clone()), ("ordinal_position", DataType::Int32)])?,
    ));
    Ok(out)
}

fn s(v: Vec<&str>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn os(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn i32s(v: Vec<i32>) -> ArrayRef {
    Arc::new(Int32Array::from(v))
}
fn i16s(v: Vec<i16>) -> ArrayRef {
    Arc::new(Int16Array::from(v))
}
fn bools(v: Vec<bool>) -> ArrayRef {
    Arc::new(BooleanArray::from(v))
}

fn batch(cols: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols.into_iter().map(|(_, a)| a).collect())
        .map_err(datafusion::error::DataFusionError::from)?;
    Ok(batch)
}

/// An empty catalogue table with these columns (all nullable).
fn empty(cols: &[(&str, DataType)]) -> Result<RecordBatch> {
    let schema = Schema::new(cols.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>());
    Ok(RecordBatch::new_empty(Arc::new(schema)))
}

/// The Postgres type a column is sent as (what the wire's RowDescription says, too).
pub fn pg_type(dt: &DataType) -> Type {
    arrow_pg::datatypes::into_pg_type(dt).unwrap_or(Type::TEXT)
}

/// The types the catalogue lists: every type a lake column maps to, plus the ones drivers look
/// up by name on connect. (type, array type oid, category, length)
fn known_types() -> Vec<(Type, i32, &'static str, i16)> {
    vec![
        (Type::BOOL, 1000, "B", 1),
        (Type::BYTEA, 1001, "U", -1),
        (Type::CHAR, 1002, "S", 1),
        (Type::NAME, 1003, "S", 64),
        (Type::INT8, 1016, "N", 8),
        (Type::INT2, 1005, "N", 2),
        (Type::INT4, 1007, "N", 4),
        (Type::TEXT, 1009, "S", -1),
        (Type::OID, 1028, "N", 4),
        (Type::FLOAT4, 1021, "N", 4),
        (Type::FLOAT8, 1022, "N", 8),
        (Type::VARCHAR, 1015, "S", -1),
        (Type::BPCHAR, 1014, "S", -1),
        (Type::DATE, 1182, "D", 4),
        (Type::TIME, 1183, "D", 8),
        (Type::TIMESTAMP, 1115, "D", 8),
        (Type::TIMESTAMPTZ, 1185, "D", 8),
        (Type::INTERVAL, 1187, "T", 16),
        (Type::NUMERIC, 1231, "N", -1),
        (Type::JSON, 199, "U", -1),
        (Type::JSONB, 3807, "U", -1),
        (Type::UUID, 2951, "U", 16),
        (Type::BOOL_ARRAY, 0, "A", -1),
        (Type::INT2_ARRAY, 0, "A", -1),
        (Type::INT4_ARRAY, 0, "A", -1),
        (Type::INT8_ARRAY, 0, "A", -1),
        (Type::TEXT_ARRAY, 0, "A", -1),
        (Type::VARCHAR_ARRAY, 0, "A", -1),
        (Type::FLOAT8_ARRAY, 0, "A", -1),
        (Type::DATE_ARRAY, 0, "A", -1),
        (Type::TIMESTAMPTZ_ARRAY, 0, "A", -1),
    ]
}

/// `format_type(oid, typmod)`: the SQL name of a type.
/// The OID of a type name as `to_regtype` takes it: the SQL spelling `format_type` gives, or the
/// internal short name (`int4`, `timestamptz`, …), case-insensitive.
fn regtype(name: &str) -> Option<i32> {
    let name = name.trim().trim_start_matches("pg_catalog.").trim_matches('"').to_lowercase();
    let short: &[(&str, i32)] = &[
        ("bool", 16),
        ("int2", 21),
        ("int4", 23),
        ("int", 23),
        ("int8", 20),
        ("float4", 700),
        ("float8", 701),
        ("varchar", 1043),
        ("bpchar", 1042),
        ("timestamp", 1114),
        ("timestamptz", 1184),
        ("time", 1083),
    ];
    if let Some((_, oid)) = short.iter().find(|(n, _)| *n == name) {
        return Some(*oid);
    }
    (0..4000).find(|oid| type_name(*oid) == Some(name.as_str())).and_then(|oid| i32::try_from(oid).ok())
}

fn type_name(oid: i64) -> Option<&'static str> {
    Some(match oid {
        16 => "boolean",
        17 => "bytea",
        18 => "\"char\"",
        19 => "name",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1000 => "boolean[]",
        1005 => "smallint[]",
        1007 => "integer[]",
        1009 => "text[]",
        1015 => "character varying[]",
        1016 => "bigint[]",
        1022 => "double precision[]",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1182 => "date[]",
        1184 => "timestamp with time zone",
        1185 => "timestamp with time zone[]",
        1186 => "interval",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        _ => return None,
    })
}

fn tables(relations: &[(String, TableType, SchemaRef)]) -> Result<Vec<(&'static str, RecordBatch)>> {
    let mut out = Vec::new();
    out.push((
        "pg_namespace",
        batch(vec![
            ("oid", i32s(vec![PG_CATALOG_OID, PUBLIC_OID, INFORMATION_SCHEMA_OID])),
            ("nspname", s(vec!["pg_catalog", "public", "information_schema"])),
            ("nspowner", i32s(vec![OWNER_OID; 3])),
            ("nspacl", os(vec![None; 3])),
        ])?,
    ));
    let n = relations.len();
    let oids: Vec<i32> = (0..n as i32).map(|i| FIRST_REL_OID + i).collect();
    out.push((
        "pg_class",
        batch(vec![
            ("oid", i32s(oids.clone())),
            ("relname", s(relations.iter().map(|r| r.0.as_str()).collect())),
            ("relnamespace", i32s(vec![PUBLIC_OID; n])),
            ("reltype", i32s(vec![0; n])),
            ("reloftype", i32s(vec![0; n])),
            ("relowner", i32s(vec![OWNER_OID; n])),
            ("relam", i32s(vec![0; n])),
            ("relfilenode", i32s(oids.clone())),
            ("reltablespace", i32s(vec![0; n])),
            ("relpages", i32s(vec![0; n])),
            ("reltuples", Arc::new(datafusion::arrow::array::Float32Array::from(vec![-1.0f32; n]))),
            ("reltoastrelid", i32s(vec![0; n])),
            ("relhasindex", bools(vec![false; n])),
            ("relisshared", bools(vec![false; n])),
            ("relpersistence", s(vec!["p"; n])),
            ("relkind", s(relations.iter().map(|r| if r.1 == TableType::View { "v" } else { "r" }).collect())),
            ("relnatts", i16s(relations.iter().map(|r| r.2.fields().len() as i16).collect())),
            ("relchecks", i16s(vec![0; n])),
            ("relhasrules", bools(vec![false; n])),
            ("relhastriggers", bools(vec![false; n])),
            ("relhassubclass", bools(vec![false; n])),
            ("relrowsecurity", bools(vec![false; n])),
            ("relforcerowsecurity", bools(vec![false; n])),
            ("relispopulated", bools(vec![true; n])),
            ("relreplident", s(vec!["d"; n])),
            ("relispartition", bools(vec![false; n])),
            ("relacl", os(vec![None; n])),
            ("reloptions", os(vec![None; n])),
            ("relpartbound", os(vec![None; n])),
        ])?,
    ));
    // pg_attribute: one row per column, attnum from 1.
    let (mut attrelid, mut attname, mut atttypid, mut attnum, mut attnotnull, mut attlen) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, r) in relations.iter().enumerate() {
        for (j, f) in r.2.fields().iter().enumerate() {
            attrelid.push(oids[i]);
            attname.push(f.name().as_str());
            let t = pg_type(f.data_type());
            atttypid.push(t.oid() as i32);
            attnum.push(j as i16 + 1);
            attnotnull.push(!f.is_nullable());
            attlen.push(known_types().iter().find(|k| k.0 == t).map_or(-1, |k| k.3));
        }
    }
    let m = attrelid.len();
    out.push((
        "pg_attribute",
        batch(vec![
            ("attrelid", i32s(attrelid)),
            ("attname", s(attname)),
            ("atttypid", i32s(atttypid)),
            ("attstattarget", i32s(vec![-1; m])),
            ("attlen", i16s(attlen)),
            ("attnum", i16s(attnum)),
            ("attndims", i32s(vec![0; m])),
            ("atttypmod", i32s(vec![-1; m])),
            ("attnotnull", bools(attnotnull)),
            ("atthasdef", bools(vec![false; m])),
            ("atthasmissing", bools(vec![false; m])),
            ("attidentity", s(vec![""; m])),
            ("attgenerated", s(vec![""; m])),
            ("attisdropped", bools(vec![false; m])),
            ("attislocal", bools(vec![true; m])),
            ("attinhcount", i32s(vec![0; m])),
            ("attcollation", i32s(vec![0; m])),
            ("attacl", os(vec![None; m])),
            ("attoptions", os(vec![None; m])),
        ])?,
    ));
    let types = known_types();
    let k = types.len();
    out.push((
        "pg_type",
        batch(vec![
            ("oid", i32s(types.iter().map(|t| t.0.oid() as i32).collect())),
            ("typname", s(types.iter().map(|t| t.0.name()).collect())),
            ("typnamespace", i32s(vec![PG_CATALOG_OID; k])),
            ("typowner", i32s(vec![OWNER_OID; k])),
            ("typlen", i16s(types.iter().map(|t| t.3).collect())),
            ("typbyval", bools(types.iter().map(|t| (1..=8).contains(&t.3)).collect())),
            ("typtype", s(vec!["b"; k])),
            ("typcategory", s(types.iter().map(|t| t.2).collect())),
            ("typispreferred", bools(vec![false; k])),
            ("typisdefined", bools(vec![true; k])),
            ("typdelim", s(vec![","; k])),
            ("typrelid", i32s(vec![0; k])),
            ("typelem", i32s(types.iter().map(|t| element_oid(&t.0)).collect())),
            ("typarray", i32s(types.iter().map(|t| t.1).collect())),
            ("typinput", s(types.iter().map(|t| if t.2 == "A" { "array_in" } else { "-" }).collect())),
            ("typoutput", s(vec!["-"; k])),
            ("typreceive", s(vec!["-"; k])),
            ("typsend", s(vec!["-"; k])),
            ("typalign", s(vec!["i"; k])),
            ("typstorage", s(vec!["p"; k])),
            ("typnotnull", bools(vec![false; k])),
            ("typbasetype", i32s(vec![0; k])),
            ("typtypmod", i32s(vec![-1; k])),
            ("typndims", i32s(vec![0; k])),
            ("typcollation", i32s(vec![0; k])),
            ("typdefault", os(vec![None; k])),
            ("typacl", os(vec![None; k])),
        ])?,
    ));
    out.push((
        "pg_database",
        batch(vec![
            ("oid", i32s(vec![16_383])),
            ("datname", s(vec![DATABASE])),
            ("datdba", i32s(vec![OWNER_OID])),
            ("encoding", i32s(vec![6])),
            ("datcollate", s(vec!["C"])),
            ("datctype", s(vec!["C"])),
            ("datistemplate", bools(vec![false])),
            ("datallowconn", bools(vec![true])),
            ("datconnlimit", i32s(vec![-1])),
            ("dattablespace", i32s(vec![1663])),
            ("datacl", os(vec![None])),
        ])?,
    ));
    let role = |name: &'static str| -> Result<RecordBatch> {
        batch(vec![
            ("oid", i32s(vec![OWNER_OID])),
            (name, s(vec!["lastseen"])),
            ("rolsuper", bools(vec![false])),
            ("rolinherit", bools(vec![true])),
            ("rolcreaterole", bools(vec![false])),
            ("rolcreatedb", bools(vec![false])),
            ("rolcanlogin", bools(vec![false])),
            ("rolreplication", bools(vec![false])),
            ("rolconnlimit", i32s(vec![-1])),
            ("rolvaliduntil", os(vec![None])),
            ("rolbypassrls", bools(vec![false])),
            ("rolconfig", os(vec![None])),
        ])
    };
    out.push(("pg_roles", role("rolname")?));
    out.push(("pg_authid", role("rolname")?));
    out.push((
        "pg_user",
        batch(vec![
            ("usename", s(vec!["lastseen"])),
            ("usesysid", i32s(vec![OWNER_OID])),
            ("usecreatedb", bools(vec![false])),
            ("usesuper", bools(vec![false])),
        ])?,
    ));
    out.push((
        "pg_tablespace",
        batch(vec![
            ("oid", i32s(vec![1663])),
            ("spcname", s(vec!["pg_default"])),
            ("spcowner", i32s(vec![OWNER_OID])),
        ])?,
    ));
    out.push(("pg_am", batch(vec![("oid", i32s(vec![2])), ("amname", s(vec!["heap"])), ("amtype", s(vec!["t"]))])?));
    out.push((
        "pg_settings",
        batch(vec![
            (
                "name",
                s(vec!["max_identifier_length", "server_version", "server_version_num", "standard_conforming_strings"]),
            ),
            ("setting", s(vec!["63", "16.6", "160006", "on"])),
        ])?,
    ));
    // The views' SQL is not shown: a report's SQL is `lastseen report NAME --show-sql`.
    out.push((
        "pg_views",
        batch(vec![
            ("schemaname", s(relations.iter().filter(|r| r.1 == TableType::View).map(|_| "public").collect())),
            ("viewname", s(relations.iter().filter(|r| r.1 == TableType::View).map(|r| r.0.as_str()).collect())),
            ("viewowner", s(relations.iter().filter(|r| r.1 == TableType::View).map(|_| "lastseen").collect())),
            ("definition", os(relations.iter().filter(|r| r.1 == TableType::View).map(|_| None).collect())),
        ])?,
    ));
    let oid = DataType::Int32;
    let text = DataType::Utf8;
    let b = DataType::Boolean;
    let i16t = DataType::Int16;
    for (name, cols) in [
        (
            "pg_index",
            vec![
                ("indexrelid", oid.clone()),
                ("indrelid", oid.clone()),
                ("indnatts", i16t.clone()),
                ("indisunique", b.clone()),
                ("indisprimary", b.clone()),
                ("indisclustered", b.clone()),
                ("indisvalid", b.clone()),
                ("indkey", text.clone()),
                ("indexprs", text.clone()),
                ("indpred", text.clone()),
            ],
        ),
        (
            "pg_constraint",
            vec![
                ("oid", oid.clone()),
                ("conname", text.clone()),
                ("connamespace", oid.clone()),
                ("contype", text.clone()),
                ("conrelid", oid.clone()),
                ("confrelid", oid.clone()),
                ("conindid", oid.clone()),
                ("conkey", list_of_int2()),
                ("confkey", list_of_int2()),
                ("consrc", text.clone()),
            ],
        ),
        (
            "pg_description",
            vec![
                ("objoid", oid.clone()),
                ("classoid", oid.clone()),
                ("objsubid", DataType::Int32),
                ("description", text.clone()),
            ],
        ),
        (
            "pg_attrdef",
            vec![("oid", oid.clone()), ("adrelid", oid.clone()), ("adnum", i16t.clone()), ("adbin", text.clone())],
        ),
        ("pg_inherits", vec![("inhrelid", oid.clone()), ("inhparent", oid.clone()), ("inhseqno", DataType::Int32)]),
        (
            "pg_enum",
            vec![
                ("oid", oid.clone()),
                ("enumtypid", oid.clone()),
                ("enumsortorder", DataType::Float32),
                ("enumlabel", text.clone()),
            ],
        ),
        ("pg_range", vec![("rngtypid", oid.clone()), ("rngsubtype", oid.clone())]),
        (
            "pg_proc",
            vec![
                ("oid", oid.clone()),
                ("proname", text.clone()),
                ("pronamespace", oid.clone()),
                ("prorettype", oid.clone()),
                ("prokind", text.clone()),
                ("proretset", b.clone()),
                ("proargtypes", text.clone()),
            ],
        ),
        ("pg_trigger", vec![("oid", oid.clone()), ("tgrelid", oid.clone()), ("tgname", text.clone())]),
        ("pg_rewrite", vec![("oid", oid.clone()), ("ev_class", oid.clone()), ("rulename", text.clone())]),
        ("pg_sequence", vec![("seqrelid", oid.clone())]),
        ("pg_extension", vec![("oid", oid.clone()), ("extname", text.clone()), ("extversion", text.clone())]),
        ("pg_collation", vec![("oid", oid.clone()), ("collname", text.clone()), ("collnamespace", oid.clone())]),
        (
            "pg_depend",
            vec![
                ("classid", oid.clone()),
                ("objid", oid.clone()),
                ("objsubid", DataType::Int32),
                ("refclassid", oid.clone()),
                ("refobjid", oid.clone()),
                ("refobjsubid", DataType::Int32),
                ("deptype", text.clone()),
            ],
        ),
        (
            "pg_matviews",
            vec![
                ("schemaname", text.clone()),
                ("matviewname", text.clone()),
                ("matviewowner", text.clone()),
                ("definition", text.clone()),
            ],
        ),
        ("pg_shdescription", vec![("objoid", oid.clone()), ("classoid", oid.clone()), ("description", text.clone())]),
        (
            "pg_default_acl",
            vec![("oid", oid.clone()), ("defaclnamespace", oid.clone()), ("defaclobjtype", text.clone())],
        ),
        (
            "pg_stat_activity",
            vec![
                ("pid", DataType::Int32),
                ("datname", text.clone()),
                ("usename", text.clone()),
                ("query", text.clone()),
            ],
        ),
    ] {
        out.push((name, empty(&cols)?));
    }
    // Statistics: Metabase reads `n_live_tup` as an estimated row count; lastseen keeps none
    // (NULL, as for a table never analysed).
    out.push((
        "pg_stat_user_tables",
        batch(vec![
            ("relid", i32s(oids.clone())),
            ("schemaname", s(vec!["public"; n])),
            ("relname", s(relations.iter().map(|r| r.0.as_str()).collect())),
            ("n_live_tup", Arc::new(datafusion::arrow::array::Int64Array::from(vec![None; n])) as ArrayRef),
        ])?,
    ));
    // `pg_tables`: the view psql's \dt and many tools read.
    let base: Vec<&(String, TableType, SchemaRef)> = relations.iter().filter(|r| r.1 != TableType::View).collect();
    out.push((
        "pg_tables",
        batch(vec![
            ("schemaname", s(base.iter().map(|_| "public").collect())),
            ("tablename", s(base.iter().map(|r| r.0.as_str()).collect())),
            ("tableowner", s(base.iter().map(|_| "lastseen").collect())),
            ("tablespace", os(base.iter().map(|_| None).collect())),
            ("hasindexes", bools(vec![false; base.len()])),
            ("hasrules", bools(vec![false; base.len()])),
            ("hastriggers", bools(vec![false; base.len()])),
            ("rowsecurity", bools(vec![false; base.len()])),
        ])?,
    ));
    Ok(out)
}

/// `int2[]`: Metabase's `describe-fks-sql` compares `attnum = ANY(c.conkey)`.
fn list_of_int2() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true)))
}

fn list_of_text() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// The element type of the array types listed in `known_types`.
fn element_oid(t: &Type) -> i32 {
    let pairs = [
        (Type::BOOL_ARRAY, Type::BOOL),
        (Type::INT2_ARRAY, Type::INT2),
        (Type::INT4_ARRAY, Type::INT4),
        (Type::INT8_ARRAY, Type::INT8),
        (Type::TEXT_ARRAY, Type::TEXT),
        (Type::VARCHAR_ARRAY, Type::VARCHAR),
        (Type::FLOAT8_ARRAY, Type::FLOAT8),
        (Type::DATE_ARRAY, Type::DATE),
        (Type::TIMESTAMPTZ_ARRAY, Type::TIMESTAMPTZ),
    ];
    pairs.iter().find(|(a, _)| a == t).map_or(0, |(_, e)| e.oid() as i32)
}

/// A function of the catalogue: fixed answer, or computed per row from its first argument.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CatalogFn {
    name: String,
    aliases: Vec<String>,
    signature: Signature,
    returns: DataType,
    kind: FnKind,
}

#[derive(Debug, PartialEq, Eq, Hash, Clone)]
enum FnKind {
    /// The same value for every row.
    Const(ScalarValueKey),
    /// `format_type(oid, typmod)`.
    FormatType,
    /// `current_setting(name)`: the values `SHOW` gives.
    CurrentSetting,
    /// `quote_ident(text)`.
    QuoteIdent,
    /// `parse_ident(text)`: the dotted name's parts.
    ParseIdent,
    /// `current_schemas(bool)`: the search path.
    CurrentSchemas,
    /// `regclass_oid(x)`: `x::regclass` of an expression ([`crate::compat`]); a relation name
    /// (optionally schema-qualified and quoted) becomes its OID, a number stays itself.
    RegClass(Vec<(String, i32)>),
    /// `format(fmt, args…)` with `%s`, `%I`, `%L` and `%%`.
    Format,
    /// `to_regtype(text)`: the OID of a type name, NULL for a type this server does not have.
    /// psycopg's `TypeInfo.fetch` asks it on connect under SQLAlchemy (for `hstore`, which is
    /// absent here, so NULL is the answer it can use).
    RegType,
}

/// `ScalarValue` is not `Eq`/`Hash`; the constants here are strings, booleans or NULL.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
enum ScalarValueKey {
    Text(Option<String>),
    Bool(bool),
    Int(i64),
}

impl ScalarValueKey {
    fn value(&self) -> ScalarValue {
        match self {
            ScalarValueKey::Text(t) => ScalarValue::Utf8(t.clone()),
            ScalarValueKey::Bool(b) => ScalarValue::Boolean(Some(*b)),
            ScalarValueKey::Int(i) => ScalarValue::Int64(Some(*i)),
        }
    }
}

impl ScalarUDFImpl for CatalogFn {
    fn name(&self) -> &str {
        &self.name
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        match &self.kind {
            FnKind::Const(v) => Ok(ColumnarValue::Scalar(v.value())),
            FnKind::FormatType => {
                let rows = args.number_rows;
                let oids = args.args[0].cast_to(&DataType::Int64, None)?.into_array(rows)?;
                let oids = as_int64_array(&oids)?;
                let names: StringArray = oids.iter().map(|o| o.map(|o| type_name(o).unwrap_or("???"))).collect();
                Ok(ColumnarValue::Array(Arc::new(names)))
            }
            FnKind::CurrentSetting | FnKind::QuoteIdent | FnKind::ParseIdent => {
                let rows = args.number_rows;
                let input = args.args[0].cast_to(&DataType::Utf8, None)?.into_array(rows)?;
                let input = datafusion::common::cast::as_string_array(&input)?;
                match self.kind {
                    FnKind::CurrentSetting => {
                        let out: StringArray =
                            input.iter().map(|n| n.and_then(|n| crate::handler::show(&n.to_lowercase()))).collect();
                        Ok(ColumnarValue::Array(Arc::new(out)))
                    }
                    FnKind::QuoteIdent => {
                        let out: StringArray = input.iter().map(|n| n.map(quote_ident)).collect();
                        Ok(ColumnarValue::Array(Arc::new(out)))
                    }
                    _ => {
                        let mut b = ListBuilder::new(StringBuilder::new());
                        for n in input.iter() {
                            match n {
                                Some(n) => {
                                    for part in n.split('.') {
                                        b.values().append_value(part.trim().trim_matches('"'));
                                    }
                                    b.append(true);
                                }
                                None => b.append(false),
                            }
                        }
                        Ok(ColumnarValue::Array(Arc::new(b.finish())))
                    }
                }
            }
            FnKind::RegType => {
                let rows = args.number_rows;
                let input = args.args[0].cast_to(&DataType::Utf8, None)?.into_array(rows)?;
                let input = datafusion::common::cast::as_string_array(&input)?;
                let out: Int32Array = input.iter().map(|v| v.and_then(regtype)).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            FnKind::RegClass(oids) => {
                let rows = args.number_rows;
                let input = args.args[0].cast_to(&DataType::Utf8, None)?.into_array(rows)?;
                let input = datafusion::common::cast::as_string_array(&input)?;
                let out: Int32Array = input.iter().map(|v| v.and_then(|v| regclass(oids, v))).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            FnKind::Format => {
                let rows = args.number_rows;
                let mut texts = Vec::with_capacity(args.args.len());
                for a in &args.args {
                    texts.push(a.cast_to(&DataType::Utf8, None)?.into_array(rows)?);
                }
                let mut out = StringBuilder::new();
                for row in 0..rows {
                    let value = |i: usize| -> Option<String> {
                        let a = datafusion::common::cast::as_string_array(texts.get(i)?).ok()?;
                        (!datafusion::arrow::array::Array::is_null(a, row)).then(|| a.value(row).to_owned())
                    };
                    match value(0) {
                        Some(fmt) => out.append_value(format_pg(&fmt, |i| value(i + 1))),
                        None => out.append_null(),
                    }
                }
                Ok(ColumnarValue::Array(Arc::new(out.finish())))
            }
            FnKind::CurrentSchemas => {
                let schemas = [ScalarValue::Utf8(Some("pg_catalog".into())), ScalarValue::Utf8(Some("public".into()))];
                Ok(ColumnarValue::Scalar(ScalarValue::List(ScalarValue::new_list_nullable(&schemas, &DataType::Utf8))))
            }
        }
    }
}

/// The OID of relation `name` (`rel`, `public.rel`, `"public"."rel"`, `pg_catalog.pg_class`).
fn regclass(oids: &[(String, i32)], name: &str) -> Option<i32> {
    if let Ok(n) = name.trim().parse::<i32>() {
        return Some(n);
    }
    let parts: Vec<String> = name.split('.').map(|p| p.trim().trim_matches('"').to_owned()).collect();
    let (schema, rel) = match parts.as_slice() {
        [rel] => (None, rel.as_str()),
        [schema, rel] => (Some(schema.as_str()), rel.as_str()),
        _ => return None,
    };
    match schema {
        Some("pg_catalog") => Some(crate::compat::catalog_oid(rel) as i32).filter(|o| *o != 0),
        Some("public") | None => oids
            .iter()
            .find(|(n, _)| n == rel)
            .map(|(_, o)| *o)
            .or_else(|| Some(crate::compat::catalog_oid(rel) as i32).filter(|o| *o != 0)),
        _ => None,
    }
}

/// Postgres' `format`: `%s` (text, NULL as empty), `%I` (identifier), `%L` (literal), `%%`.
fn format_pg(fmt: &str, arg: impl Fn(usize) -> Option<String>) -> String {
    let mut out = String::with_capacity(fmt.len());
    let mut next = 0;
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(kind @ ('s' | 'I' | 'L')) => {
                let v = arg(next);
                next += 1;
                match (kind, v) {
                    ('s', v) => out.push_str(&v.unwrap_or_default()),
                    ('I', Some(v)) => out.push_str(&quote_ident(&v)),
                    ('L', Some(v)) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
                    ('L', None) => out.push_str("NULL"),
                    _ => {}
                }
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Postgres' `quote_ident`: quoted unless a plain lower-case identifier.
fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

fn functions(oids: Vec<(String, i32)>) -> Vec<ScalarUDF> {
    let any = || Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::VariadicAny], Volatility::Stable);
    let text = |v: Option<&str>| FnKind::Const(ScalarValueKey::Text(v.map(str::to_owned)));
    let yes = FnKind::Const(ScalarValueKey::Bool(true));
    let version = format!("PostgreSQL 16.6 (lastseen {}, read-only, DataFusion)", env!("CARGO_PKG_VERSION"));
    let defs: Vec<(&str, DataType, FnKind)> = vec![
        ("version", DataType::Utf8, text(Some(&version))),
        ("current_database", DataType::Utf8, text(Some(DATABASE))),
        ("current_catalog", DataType::Utf8, text(Some(DATABASE))),
        ("current_schema", DataType::Utf8, text(Some("public"))),
        ("pg_get_userbyid", DataType::Utf8, text(Some("lastseen"))),
        ("pg_encoding_to_char", DataType::Utf8, text(Some("UTF8"))),
        ("obj_description", DataType::Utf8, text(None)),
        ("col_description", DataType::Utf8, text(None)),
        ("shobj_description", DataType::Utf8, text(None)),
        ("pg_get_expr", DataType::Utf8, text(None)),
        ("pg_get_indexdef", DataType::Utf8, text(None)),
        ("pg_get_constraintdef", DataType::Utf8, text(None)),
        ("pg_get_viewdef", DataType::Utf8, text(None)),
        ("pg_get_serial_sequence", DataType::Utf8, text(None)),
        ("pg_table_is_visible", DataType::Boolean, yes.clone()),
        ("pg_type_is_visible", DataType::Boolean, yes.clone()),
        ("has_table_privilege", DataType::Boolean, yes.clone()),
        ("has_schema_privilege", DataType::Boolean, yes.clone()),
        ("has_database_privilege", DataType::Boolean, yes.clone()),
        ("has_any_column_privilege", DataType::Boolean, yes.clone()),
        ("pg_is_in_recovery", DataType::Boolean, FnKind::Const(ScalarValueKey::Bool(false))),
        ("pg_backend_pid", DataType::Int64, FnKind::Const(ScalarValueKey::Int(0))),
        ("pg_total_relation_size", DataType::Int64, FnKind::Const(ScalarValueKey::Int(0))),
        ("pg_relation_size", DataType::Int64, FnKind::Const(ScalarValueKey::Int(0))),
        ("pg_get_partkeydef", DataType::Utf8, text(None)),
        ("pg_stat_get_numscans", DataType::Int64, FnKind::Const(ScalarValueKey::Int(0))),
        ("session_user", DataType::Utf8, text(Some("lastseen"))),
        ("current_user", DataType::Utf8, text(Some("lastseen"))),
        ("user", DataType::Utf8, text(Some("lastseen"))),
        ("format_type", DataType::Utf8, FnKind::FormatType),
        ("current_setting", DataType::Utf8, FnKind::CurrentSetting),
        ("quote_ident", DataType::Utf8, FnKind::QuoteIdent),
        ("parse_ident", list_of_text(), FnKind::ParseIdent),
        ("current_schemas", list_of_text(), FnKind::CurrentSchemas),
        ("regclass_oid", DataType::Int32, FnKind::RegClass(oids)),
        ("format", DataType::Utf8, FnKind::Format),
        ("to_regtype", DataType::Int32, FnKind::RegType),
    ];
    defs.into_iter()
        .map(|(name, returns, kind)| {
            let signature = match kind {
                FnKind::FormatType => Signature::any(2, Volatility::Immutable),
                FnKind::CurrentSetting
                | FnKind::QuoteIdent
                | FnKind::ParseIdent
                | FnKind::CurrentSchemas
                | FnKind::RegClass(_)
                | FnKind::RegType => Signature::any(1, Volatility::Stable),
                FnKind::Format => Signature::variadic_any(Volatility::Immutable),
                _ => any(),
            };
            // Tools call both `version()` and `pg_catalog.version()`; DataFusion looks a qualified
            // name up as written, so the qualified spelling is an alias.
            ScalarUDF::new_from_impl(CatalogFn {
                name: name.to_owned(),
                aliases: vec![format!("pg_catalog.{name}")],
                signature,
                returns,
                kind,
            })
        })
        .collect()
}
