//! `lastseen sql`: a query (argument or `--file`) over the committed lake, exported with its
//! provenance; without a query, the interactive shell.

use anyhow::Context;
use lastseen_query::ResultSet;

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
    let data = ResultSet::collect(engine.plan(&query, &[]).await?).await?;
    let provenance = engine.provenance("SQL query", &query).await?;
    super::emit(&data, &provenance, &[], &args.output)?;
    Ok(crate::exit::OK)
}
