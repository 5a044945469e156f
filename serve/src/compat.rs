//! Rewrites for the catalogue queries BI tools send that DataFusion cannot plan as written,
//! applied before planning and only where the construct cannot mean anything else:
//!
//! - `'pg_class'::regclass` and other `reg*` casts of a literal become the object's OID (or,
//!   for `regproc`, its unqualified name, which is how `pg_type.typinput` is stored here);
//!   `x::oid` / `x::regclass` of a column become an integer cast.
//! - `array_lower(a, 1)` is 1 and `array_upper(a, 1)` is `array_length(a, 1)` (lastseen's arrays
//!   are 1-based and one-dimensional, as in those queries).
//! - `'{a,b}'::text[]` (a literal array, pgjdbc's keyword filter in
//!   `PgDatabaseMetaData.getSQLKeywords`) becomes `make_array('a', 'b')`.
//! - `x::regclass` of a column or expression (Metabase's `col_description(format('%I.%I', schema,
//!   table)::regclass::oid, n)` in `describe-fields-sql`, src/metabase/driver/postgres.clj) becomes
//!   `regclass_oid(x)`, which looks the name up among the served relations.
//! - `pg_catalog.f(…)` in `FROM` (pgjdbc's `pg_catalog.pg_get_keywords()`) becomes `f(…)`:
//!   DataFusion looks a table function up by the first part of its name.
//! - `information_schema.columns` / `tables` / `schemata` / `views` / `table_constraints` /
//!   `key_column_usage` read `pg_information_schema`, lastseen's Postgres-typed copy
//!   ([`crate::catalog`]): DataFusion's own says `Utf8` and `Timestamp(…)` where Grafana's and
//!   Metabase's column pickers expect `text` and `timestamp with time zone`, and lacks
//!   `udt_name`, `is_identity` and the constraint views Metabase joins.
//! - Grafana's search-path constraint (`quote_ident(table_schema) IN (SELECT … trim(s[i]) …
//!   generate_series(…) as i, string_to_array(current_setting('search_path'),',') s)`, from
//!   `postgresMetaQuery.ts`) becomes `IN ('public')`: the search path here is always `public`,
//!   and DataFusion has no set-returning functions in `FROM` with column aliases.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Select, SelectItem, SelectItemQualifiedWildcardKind, Statement, TableFactor, Value,
    VisitMut, VisitorMut,
};

/// The OIDs Postgres gives its catalogue relations (fixed since 8.x).
pub(crate) fn catalog_oid(name: &str) -> i64 {
    match name.trim_start_matches("pg_catalog.") {
        "pg_type" => 1247,
        "pg_attribute" => 1249,
        "pg_proc" => 1255,
        "pg_class" => 1259,
        "pg_database" => 1262,
        "pg_constraint" => 2606,
        "pg_namespace" => 2615,
        "pg_description" => 2609,
        "pg_index" => 2610,
        _ => 0,
    }
}

/// Text-level rewrite, before parsing: Grafana's search-path constraint.
pub fn rewrite_text(sql: &str) -> String {
    const HEAD: &str = "quote_ident(table_schema) IN (";
    if !sql.contains("trim(s[i])") {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(HEAD) {
        let open = at + HEAD.len();
        // The matching close parenthesis of the IN list.
        let mut depth = 1usize;
        let mut close = None;
        for (i, c) in rest[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(open + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { break };
        out.push_str(&rest[..open]);
        if rest[open..close].contains("trim(s[i])") {
            out.push_str("'public'");
        } else {
            out.push_str(&rest[open..close]);
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// AST rewrite, after parsing: `reg*` casts, 1-based array bounds, `pg_*` relations without a
/// schema (Postgres finds them through the implicit `pg_catalog` on the search path), and
/// `SELECT x.col, x.*` (DBeaver's style; DataFusion refuses the duplicate name, so the explicit
/// column goes and the wildcard still returns it, under the same name).
pub fn rewrite(statement: &mut Statement) {
    let _ = statement.visit(&mut Compat);
}

struct Compat;

impl VisitorMut for Compat {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        // Quoted too: Metabase writes `"pg_stat_user_tables"` (get-tables-sql in postgres.clj).
        // No lake table starts with `pg_`, so the name cannot mean one of those.
        if let [ObjectNamePart::Identifier(ident)] = relation.0.as_slice()
            && ident.value.to_lowercase().starts_with("pg_")
        {
            *relation = ObjectName::from(vec![Ident::new("pg_catalog"), ident.clone()]);
        }
        if let [ObjectNamePart::Identifier(schema), ObjectNamePart::Identifier(table)] = relation.0.as_slice()
            && schema.value.eq_ignore_ascii_case("information_schema")
            && crate::catalog::INFORMATION_SCHEMA_TABLES.contains(&table.value.to_lowercase().as_str())
        {
            *relation = ObjectName::from(vec![
                Ident::new(crate::catalog::INFORMATION_SCHEMA),
                Ident::new(table.value.to_lowercase()),
            ]);
        }
        ControlFlow::Continue(())
    }

    /// After the relation visit above, which would put the schema back.
    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: Some(_), .. } = factor
            && name.0.len() == 2
            && name.0[0].to_string().eq_ignore_ascii_case("pg_catalog")
        {
            name.0.remove(0);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let wildcards: Vec<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                    Some(name.to_string().to_lowercase())
                }
                _ => None,
            })
            .collect();
        if !wildcards.is_empty() {
            select.projection.retain(|item| match item {
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) if parts.len() == 2 => {
                    !wildcards.contains(&parts[0].value.to_lowercase())
                }
                _ => true,
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        rewrite_expr(e);
        ControlFlow::Continue(())
    }
}

fn rewrite_expr(e: &mut Expr) {
    match e {
        Expr::Cast { kind: CastKind::DoubleColon | CastKind::Cast, expr, data_type: DataType::Array(_), .. } => {
            if let Expr::Value(v) = expr.as_ref()
                && let Value::SingleQuotedString(text) = &v.value
                && let Some(items) = array_literal(text)
            {
                *e = call("make_array", items.into_iter().map(|i| Expr::value(Value::SingleQuotedString(i))).collect());
            }
        }
        Expr::Cast { kind: CastKind::DoubleColon | CastKind::Cast, expr, data_type, .. } => {
            let ty = match data_type {
                DataType::Regclass => "regclass".to_owned(),
                DataType::Custom(name, _) => name.to_string().to_lowercase(),
                _ => return,
            };
            let ty = ty.trim_start_matches("pg_catalog.");
            if !["regclass", "regproc", "regprocedure", "regtype", "regnamespace", "regrole", "oid"].contains(&ty) {
                return;
            }
            let literal = match expr.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            };
            *e = match (ty, literal) {
                ("regproc" | "regprocedure", Some(s)) => {
                    Expr::value(Value::SingleQuotedString(s.trim_start_matches("pg_catalog.").to_owned()))
                }
                (_, Some(s)) => match s.parse::<i64>() {
                    Ok(n) => Expr::value(Value::Number(n.to_string(), false)),
                    Err(_) => Expr::value(Value::Number(catalog_oid(&s).to_string(), false)),
                },
                ("regclass", None) => call("regclass_oid", vec![expr.as_ref().clone()]),
                (_, None) => Expr::Cast {
                    kind: CastKind::Cast,
                    expr: expr.clone(),
                    data_type: DataType::Int(None),
                    array: false,
                    format: None,
                },
            };
        }
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            let name = name.trim_start_matches("pg_catalog.");
            if name == "array_lower" {
                *e = Expr::value(Value::Number("1".into(), false));
            } else if name == "array_upper" {
                // BIGINT, as Postgres' int: `generate_series(1, array_upper(…))` (pgjdbc's
                // TypeInfoCache) takes only signed integers, and array_length is unsigned.
                rename(f, "array_length");
                *e = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(e.clone()),
                    data_type: DataType::BigInt(None),
                    array: false,
                    format: None,
                };
            }
        }
        _ => {}
    }
}

/// `{a,"b c",d}`: the elements of a one-dimensional Postgres array literal, unquoted.
fn array_literal(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(inner.split(',').map(|i| i.trim().trim_matches('"').to_owned()).collect())
}

/// `name(args…)`, a plain function call.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Renames a function call; `array_length(a, dim)` takes the same two arguments.
fn rename(f: &mut Function, to: &str) {
    f.name = ObjectName::from(vec![Ident::new(to)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_search_path_constraint_becomes_public() {
        let sql = "SELECT 1 FROM information_schema.tables WHERE quote_ident(table_schema) IN (\n SELECT\n CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END\n FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), 2) as i,\n string_to_array(current_setting('search_path'),',') s\n ) ORDER BY 1";
        assert_eq!(
            rewrite_text(sql),
            "SELECT 1 FROM information_schema.tables WHERE quote_ident(table_schema) IN ('public') ORDER BY 1"
        );
        assert_eq!(
            rewrite_text("SELECT quote_ident(table_schema) IN ('x')"),
            "SELECT quote_ident(table_schema) IN ('x')"
        );
    }
}

#[cfg(test)]
mod ast_tests {
    use datafusion::sql::parser::{DFParser, Statement as DfStatement};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn rewritten(sql: &str) -> String {
        let mut s = DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}).unwrap().pop_front().unwrap();
        if let DfStatement::Statement(st) = &mut s {
            super::rewrite(st);
        }
        s.to_string()
    }

    #[test]
    fn regclass_literals_become_oids_and_pg_tables_get_their_schema() {
        assert_eq!(
            rewritten("SELECT n.oid, n.* FROM pg_namespace n WHERE d.classoid = 'pg_namespace'::regclass"),
            "SELECT n.* FROM pg_catalog.pg_namespace n WHERE d.classoid = 2615"
        );
        assert_eq!(
            rewritten("SELECT array_upper(a, 1), array_lower(a, 1)"),
            "SELECT CAST(array_length(a, 1) AS BIGINT), 1"
        );
        assert_eq!(
            rewritten("SELECT x FROM pg_catalog.pg_get_keywords() WHERE w <> ALL ('{a,\"null\"}'::text[])"),
            "SELECT x FROM pg_get_keywords() WHERE w <> ALL(make_array('a', 'null'))"
        );
        assert_eq!(
            rewritten("SELECT CAST(CAST(format('%I.%I', s, t) AS REGCLASS) AS OID) FROM information_schema.columns"),
            "SELECT CAST(regclass_oid(format('%I.%I', s, t)) AS INT) FROM pg_information_schema.columns"
        );
    }
}
