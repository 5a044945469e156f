//! `lastseen sql`: run a query over the committed lake.

use crate::cli::{GlobalArgs, SqlArgs};

pub async fn run(g: &GlobalArgs, args: &SqlArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let lake = super::open_lake(&cfg)?;
    let engine = lastseen_query::QueryEngine::open(&lake).await?;
    let batches = engine.sql(&args.query).await?;
    super::emit(&batches, &args.output)?;
    Ok(crate::exit::OK)
}
