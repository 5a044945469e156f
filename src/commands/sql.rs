//! `lastseen sql`: a query (argument or `--file`) over the committed lake, exported with its
//! provenance (CSV and JSON lines streamed as the rows come); without a query, the interactive
//! shell.

use anyhow::Context;
use lastseen_query::{Format, ResultSet};

use crate::cli::{GlobalArgs, SqlArgs};

pub async fn run(g: &GlobalArgs, args: &SqlArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let query = match (&args.query, &args.file) {
        (Some(q), _) => Some(q.clone()),
        (None, Some(f)) => {
            Some(std::fs::read_to_string(f).with_context(|| format!("reading the query file {}", f.display()))?)
        }
        (None, None) => None,
    };
    let lake = super::open_lake(&cfg)?;
    let engine = match args.lake_version {
        Some(v) => lastseen_query::QueryEngine::open_version(&lake, v).await?,
        None => lastseen_query::QueryEngine::open(&lake).await?,
    };
    let Some(query) = query else {
        return super::shell::run(&engine, args).await;
    };
    let df = engine.plan(&query, &[]).await?;
    let provenance = engine.provenance("SQL query", &query).await?;
    let format = Format::from(args.output.format);
    if format.streams() {
        // CSV and JSON lines are written as the query produces its rows (as `report` does): a
        // large result is never held whole, and `| head` gets its first lines before the query
        // has finished.
        let context = std::sync::Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        super::emit_plan(plan, context, &provenance, &args.output).await?;
        return Ok(crate::exit::OK);
    }
    let data = ResultSet::collect(df).await?;
    super::emit(&data, &provenance, &[], &args.output)?;
    Ok(crate::exit::OK)
}
