//! The server side of `lastseen serve`: pgwire's simple and extended query protocols over the
//! [`crate::engine`] sessions. Every statement is classified first: queries are planned
//! read-only (the query crate's options: no DDL, DML, COPY or DataFusion statements),
//! transaction statements and harmless session `SET`s that drivers send on connect are
//! acknowledged without effect, `SHOW` answers from fixed values, and anything else is refused.
//! Each query runs in its own session with the configured memory limit and timeout and is
//! logged with its user, duration and row count.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use futures::{Sink, StreamExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use crate::engine::{Prepared, Versions};

/// A parsed statement, bound to the lake version current when it was parsed.
#[derive(Clone)]
pub struct Stmt {
    sql: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Query {
        plan: LogicalPlan,
        prepared: Arc<Prepared>,
    },
    /// Acknowledged without effect: `BEGIN`, `COMMIT`, savepoints, harmless `SET`s, `DISCARD ALL`.
    Ack(Ack),
    /// `SHOW name`: one row, one column.
    Show {
        name: String,
        value: String,
    },
}

#[derive(Clone, Copy)]
enum Ack {
    Begin,
    Commit,
    Rollback,
    /// `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`: the transaction stays open.
    /// psycopg wraps its own catalogue lookups in one when a transaction is open, which is how
    /// SQLAlchemy connects; with nothing writable there is nothing to roll back to.
    Savepoint(&'static str),
    Set,
    Discard,
}

/// Session settings drivers set on connect and lastseen can acknowledge without effect: none
/// changes what a query may read or the limits it runs under.
const HARMLESS_SETTINGS: &[&str] = &[
    "application_name",
    "extra_float_digits",
    "datestyle",
    "client_encoding",
    "client_min_messages",
    "search_path",
    "timezone",
    "intervalstyle",
    "bytea_output",
    "standard_conforming_strings",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "jit",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "transaction_isolation",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "session characteristics",
    "transaction",
];

/// Answers to `SHOW`, as Postgres 16 gives them for this server's settings.
pub(crate) fn show(name: &str) -> Option<&'static str> {
    Some(match name {
        "transaction_isolation" | "transaction isolation level" | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "search_path" => "public",
        "server_version" => "16.6",
        "server_version_num" => "160006",
        "server_encoding" | "client_encoding" => "UTF8",
        "timezone" | "time zone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "max_identifier_length" => "63",
        "lc_collate" | "lc_ctype" => "C",
        "is_superuser" => "off",
        "bytea_output" => "hex",
        "statement_timeout" | "lock_timeout" => "0",
        _ => return None,
    })
}

pub struct Service {
    versions: Arc<Versions>,
}

impl Service {
    pub fn new(versions: Arc<Versions>) -> Service {
        Service { versions }
    }

    /// Splits and classifies `sql` (Postgres dialect); queries are planned on the current version.
    async fn parse(&self, sql: &str) -> PgWireResult<Vec<Stmt>> {
        let sql = crate::compat::rewrite_text(sql);
        let statements = DFParser::parse_sql_with_dialect(&sql, &PostgreSqlDialect {}).map_err(|e| {
            user_error("42601", format!("syntax error: {}", e.to_string().trim_start_matches("SQL error: ")))
        })?;
        let mut out = Vec::with_capacity(statements.len());
        for statement in statements {
            out.push(self.classify(statement).await?);
        }
        Ok(out)
    }

    async fn classify(&self, mut statement: DfStatement) -> PgWireResult<Stmt> {
        let sql = statement.to_string();
        if let DfStatement::Statement(s) = &mut statement {
            crate::compat::rewrite(s);
        }
        let kind = match &statement {
            DfStatement::Statement(s) => match s.as_ref() {
                Statement::StartTransaction { .. } => Some(Kind::Ack(Ack::Begin)),
                Statement::Commit { .. } => Some(Kind::Ack(Ack::Commit)),
                Statement::Rollback { savepoint: Some(_), .. } => Some(Kind::Ack(Ack::Savepoint("ROLLBACK"))),
                Statement::Rollback { .. } => Some(Kind::Ack(Ack::Rollback)),
                Statement::Savepoint { .. } => Some(Kind::Ack(Ack::Savepoint("SAVEPOINT"))),
                Statement::ReleaseSavepoint { .. } => Some(Kind::Ack(Ack::Savepoint("RELEASE"))),
                Statement::Discard { .. } => Some(Kind::Ack(Ack::Discard)),
                Statement::Set(set) => Some(set_statement(set)?),
                Statement::ShowVariable { variable } => {
                    let name = variable.iter().map(|i| i.value.to_lowercase()).collect::<Vec<_>>().join(" ");
                    let value = show(&name).ok_or_else(|| {
                        user_error("42704", format!("unrecognized configuration parameter \"{name}\""))
                    })?;
                    Some(Kind::Show { name, value: value.to_owned() })
                }
                Statement::Copy { .. } => return Err(read_only_refusal("COPY")),
                _ => None,
            },
            DfStatement::CopyTo(_) => return Err(read_only_refusal("COPY")),
            _ => None,
        };
        if let Some(kind) = kind {
            return Ok(Stmt { sql, kind });
        }
        let prepared = self.versions.current().await;
        let state = prepared.engine.context().state();
        let plan = state.statement_to_plan(statement).await.map_err(df_error)?;
        lastseen_query::read_only().verify_plan(&plan).map_err(|e| read_only_refusal(&e.to_string()))?;
        Ok(Stmt { sql, kind: Kind::Query { plan, prepared } })
    }

    /// Runs one statement; `params` are the extended protocol's bound values.
    async fn execute<C: ClientInfo>(
        &self,
        client: &C,
        stmt: &Stmt,
        params: Option<ParamValues>,
        format: &Format,
    ) -> PgWireResult<Response> {
        let (plan, prepared) = match &stmt.kind {
            Kind::Ack(a) => {
                return Ok(match a {
                    Ack::Begin => Response::TransactionStart(Tag::new("BEGIN")),
                    Ack::Commit => Response::TransactionEnd(Tag::new("COMMIT")),
                    Ack::Rollback => Response::TransactionEnd(Tag::new("ROLLBACK")),
                    Ack::Savepoint(tag) => Response::Execution(Tag::new(tag)),
                    Ack::Set => Response::Execution(Tag::new("SET")),
                    Ack::Discard => Response::Execution(Tag::new("DISCARD ALL")),
                });
            }
            Kind::Show { name, value } => return show_response(name, value, format),
            Kind::Query { plan, prepared } => (plan, prepared),
        };
        let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
        let log = QueryLog { user, sql: stmt.sql.clone(), version: prepared.version, start: Instant::now(), rows: 0 };
        let plan = match params {
            Some(p) => plan.clone().replace_params_with_values(&p).map_err(|e| log.failed(df_error(e)))?,
            None => plan.clone(),
        };
        let limits = self.versions.limits;
        let deadline = tokio::time::Instant::now() + limits.query_timeout;
        let ctx = self.versions.session(prepared).map_err(|e| log.failed(user_error("XX000", e.to_string())))?;
        let started = async {
            let df = ctx.execute_logical_plan(plan).await?;
            let fields = arrow_schema_to_pg_fields(df.schema().as_arrow(), format, None)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok::<_, DataFusionError>((Arc::new(fields), df.execute_stream().await?))
        };
        let (fields, batches) = match tokio::time::timeout_at(deadline, started).await {
            Err(_) => return Err(log.failed(timeout_error(limits.query_timeout))),
            Ok(r) => r.map_err(|e| log.failed(df_error(e)))?,
        };
        // Rows are encoded batch by batch as the client reads them (a large result is never
        // held whole); the deadline covers the whole stream.
        struct St {
            batches: datafusion::execution::SendableRecordBatchStream,
            rows: Option<Box<dyn Iterator<Item = PgWireResult<pgwire::messages::data::DataRow>> + Send + Sync>>,
            fields: Arc<Vec<FieldInfo>>,
            log: QueryLog,
            done: bool,
            timeout: std::time::Duration,
            deadline: tokio::time::Instant,
        }
        let st = St {
            batches,
            rows: None,
            fields: Arc::clone(&fields),
            log,
            done: false,
            timeout: limits.query_timeout,
            deadline,
        };
        let rows = stream::unfold(st, |mut st| async move {
            loop {
                if let Some(it) = st.rows.as_mut() {
                    if let Some(row) = it.next() {
                        st.log.rows += 1;
                        return Some((row, st));
                    }
                    st.rows = None;
                }
                if st.done {
                    return None;
                }
                match tokio::time::timeout_at(st.deadline, st.batches.next()).await {
                    Err(_) => {
                        st.done = true;
                        let e = st.log.failed(timeout_error(st.timeout));
                        return Some((Err(e), st));
                    }
                    Ok(None) => {
                        st.done = true;
                        st.log.finished();
                        return None;
                    }
                    Ok(Some(Err(e))) => {
                        st.done = true;
                        let e = st.log.failed(df_error(e));
                        return Some((Err(e), st));
                    }
                    Ok(Some(Ok(batch))) => st.rows = Some(encode_recordbatch(Arc::clone(&st.fields), batch)),
                }
            }
        });
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

/// One query's log line: who, what, on which version, how long, how many rows. The SQL is the
/// statement as parsed; a password never reaches here (logins are SCRAM exchanges).
struct QueryLog {
    user: String,
    sql: String,
    version: u64,
    start: Instant,
    rows: u64,
}

impl QueryLog {
    fn finished(&self) {
        tracing::info!(
            target: "lastseen::serve",
            user = %self.user,
            version = self.version,
            rows = self.rows,
            ms = self.start.elapsed().as_millis() as u64,
            sql = %self.sql,
            "query"
        );
    }

    fn failed(&self, e: PgWireError) -> PgWireError {
        tracing::warn!(
            target: "lastseen::serve",
            user = %self.user,
            version = self.version,
            rows = self.rows,
            ms = self.start.elapsed().as_millis() as u64,
            sql = %self.sql,
            error = %e,
            "query failed"
        );
        e
    }
}

fn set_statement(set: &Set) -> PgWireResult<Kind> {
    let name = match set {
        Set::SingleAssignment { variable, .. } => variable.to_string().to_lowercase(),
        Set::SetTimeZone { .. } => "timezone".to_owned(),
        Set::SetTransaction { .. } => "transaction".to_owned(),
        Set::SetSessionParam(_) => "session characteristics".to_owned(),
        other => other.to_string().to_lowercase(),
    };
    if HARMLESS_SETTINGS.contains(&name.as_str()) {
        Ok(Kind::Ack(Ack::Set))
    } else {
        Err(user_error(
            "25006",
            format!(
                "SET {name} is refused: this lastseen server is read-only and its limits (memory, timeout) are \
                 fixed by its configuration"
            ),
        ))
    }
}

fn show_response(name: &str, value: &str, format: &Format) -> PgWireResult<Response> {
    let field = FieldInfo::new(name.to_owned(), None, None, Type::TEXT, format.format_for(0));
    let fields = Arc::new(vec![field]);
    let mut encoder = DataRowEncoder::new(Arc::clone(&fields));
    encoder.encode_field(&value.to_owned())?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(fields, stream::iter(vec![Ok(row)]))))
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message)))
}

fn read_only_refusal(what: &str) -> PgWireError {
    user_error(
        "25006",
        format!(
            "this lastseen server is read-only: COPY, CREATE, DROP, INSERT, UPDATE, DELETE and SET are refused ({})",
            what.trim_start_matches("Error during planning: ")
        ),
    )
}

fn timeout_error(limit: std::time::Duration) -> PgWireError {
    user_error(
        "57014",
        format!("canceling statement due to statement timeout ({} s, serve.query_timeout)", limit.as_secs()),
    )
}

/// A DataFusion failure as a Postgres error with a code clients understand.
fn df_error(e: DataFusionError) -> PgWireError {
    let root = e.find_root();
    let (code, message) = match root {
        DataFusionError::ResourcesExhausted(m) => {
            ("53200", format!("the query needs more memory than one query may use (serve.query_memory_mb): {m}"))
        }
        DataFusionError::Plan(m) if m.contains("not found") => ("42P01", m.clone()),
        DataFusionError::Plan(m) => ("42601", m.clone()),
        DataFusionError::SQL(..) => ("42601", root.to_string()),
        DataFusionError::NotImplemented(m) => ("0A000", m.clone()),
        _ => ("XX000", e.to_string()),
    };
    // A refusal by the read-only options (e.g. through EXPLAIN) keeps its own code.
    if ["DDL not supported", "DML not supported", "Statement not supported"].iter().any(|m| message.contains(m)) {
        return read_only_refusal(&message);
    }
    user_error(code, message)
}

#[async_trait]
impl SimpleQueryHandler for Service {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = self.parse(query).await?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut out = Vec::with_capacity(statements.len());
        for s in &statements {
            out.push(self.execute(client, s, None, &Format::UnifiedText).await?);
        }
        Ok(out)
    }
}

pub struct Parser {
    service: Arc<Service>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Stmt;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, _types: &[Option<Type>]) -> PgWireResult<Option<Stmt>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = self.service.parse(sql).await?;
        if statements.len() > 1 {
            return Err(user_error("42601", "cannot insert multiple commands into a prepared statement".to_owned()));
        }
        Ok(statements.pop())
    }

    fn get_parameter_types(&self, stmt: &Stmt) -> PgWireResult<Vec<Type>> {
        Ok(parameter_types(stmt)?
            .into_iter()
            .map(|t| t.map_or(Type::UNKNOWN, |t| crate::catalog::pg_type(&t)))
            .collect())
    }

    fn get_result_schema(&self, stmt: &Stmt, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.unwrap_or(&Format::UnifiedText);
        match &stmt.kind {
            Kind::Query { plan, .. } => arrow_schema_to_pg_fields(plan.schema().as_arrow(), format, None),
            Kind::Show { name, .. } => {
                Ok(vec![FieldInfo::new(name.clone(), None, None, Type::TEXT, format.format_for(0))])
            }
            Kind::Ack(_) => Ok(vec![]),
        }
    }
}

/// The plan's `$1`, `$2`, … in order, with the type DataFusion inferred (if any).
fn parameter_types(stmt: &Stmt) -> PgWireResult<Vec<Option<DataType>>> {
    let Kind::Query { plan, .. } = &stmt.kind else {
        return Ok(vec![]);
    };
    let types: HashMap<String, Option<DataType>> = plan.get_parameter_types().map_err(df_error)?;
    let mut ordered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(k, t)| k.trim_start_matches('$').parse::<usize>().ok().map(|i| (i, t)))
        .collect();
    ordered.sort_by_key(|(i, _)| *i);
    Ok(ordered.into_iter().map(|(_, t)| t).collect())
}

/// Reads the bound parameters as the types the client declared (or DataFusion inferred),
/// then casts them to what the plan expects.
fn bind_parameters(portal: &Portal<Stmt>) -> PgWireResult<Option<ParamValues>> {
    let inferred = parameter_types(&portal.statement.statement)?;
    if portal.parameter_len() == 0 && inferred.is_empty() {
        return Ok(None);
    }
    let mut values = Vec::with_capacity(portal.parameter_len());
    for i in 0..portal.parameter_len() {
        let wanted = inferred.get(i).cloned().flatten();
        let declared = portal.statement.parameter_types.get(i).cloned().flatten();
        let wire = declared
            .filter(|t| *t != Type::UNKNOWN)
            .or_else(|| wanted.as_ref().map(crate::catalog::pg_type))
            .unwrap_or(Type::TEXT);
        let value = decode(portal, i, &wire)?;
        let value = match wanted {
            Some(t) if value.data_type() != t => value
                .cast_to(&t)
                .map_err(|e| user_error("22P02", format!("parameter ${} cannot be used as {t}: {e}", i + 1)))?,
            _ => value,
        };
        values.push(value.into());
    }
    Ok(Some(ParamValues::List(values)))
}

/// Parameter `i` as a DataFusion value of the Postgres type `wire`.
fn decode(portal: &Portal<Stmt>, i: usize, wire: &Type) -> PgWireResult<ScalarValue> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
    Ok(if *wire == Type::BOOL {
        ScalarValue::Boolean(portal.parameter::<bool>(i, wire)?)
    } else if *wire == Type::INT2 {
        ScalarValue::Int16(portal.parameter::<i16>(i, wire)?)
    } else if *wire == Type::INT4 {
        ScalarValue::Int32(portal.parameter::<i32>(i, wire)?)
    } else if *wire == Type::INT8 {
        ScalarValue::Int64(portal.parameter::<i64>(i, wire)?)
    } else if *wire == Type::FLOAT4 {
        ScalarValue::Float32(portal.parameter::<f32>(i, wire)?)
    } else if *wire == Type::FLOAT8 {
        ScalarValue::Float64(portal.parameter::<f64>(i, wire)?)
    } else if *wire == Type::DATE {
        ScalarValue::Date32(portal.parameter::<NaiveDate>(i, wire)?.map(|d| (d - epoch).num_days() as i32))
    } else if *wire == Type::TIMESTAMP {
        ScalarValue::TimestampMicrosecond(
            portal.parameter::<NaiveDateTime>(i, wire)?.map(|t| t.and_utc().timestamp_micros()),
            None,
        )
    } else if *wire == Type::TIMESTAMPTZ {
        ScalarValue::TimestampMicrosecond(
            portal.parameter::<DateTime<FixedOffset>>(i, wire)?.map(|t| t.timestamp_micros()),
            Some("UTC".into()),
        )
    } else {
        ScalarValue::Utf8(portal.parameter::<String>(i, &Type::TEXT)?)
    })
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = Stmt;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::new(Parser { service: Arc::new(Service { versions: Arc::clone(&self.versions) }) })
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Stmt>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Stmt>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = bind_parameters(portal)?;
        self.execute(client, &portal.statement.statement, params, &portal.result_column_format).await
    }
}
