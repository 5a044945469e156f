//! `cursor_pages`: the one walk over Slack's cursor-paged methods (`cursor` in,
//! `response_metadata.next_cursor` out; Web API methods and the Audit Logs API alike). Every
//! page is recorded in the client's counters, and the walk's [`WalkGuard`] ends it with
//! `Protocol` when a cursor comes back (A→A, A→B→A) or a page cap is reached, instead of
//! looping until the run deadline. Empty pages with a cursor are followed (Slack documents
//! that a page may hold fewer items than asked for, even none, while more follow).

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};

use crate::error::Result;
use crate::slack::api::SlackClient;
use crate::slack::models::ResponseMetadata;
use crate::walk::WalkGuard;

/// A page of a cursor-paged answer.
pub(crate) trait CursorPage: Send + 'static {
    /// Rows on the page, for the counters and the empty-page cap.
    fn rows(&self) -> usize;
    /// The page's `response_metadata`, taken out (its `next_cursor`; `None` or empty = last).
    fn take_metadata(&mut self) -> Option<ResponseMetadata>;
}

/// Every page of a cursor walk of `label`, each fetched with `fetch(cursor)` (the first with
/// `None`), recorded as a page of `label` and followed through a [`WalkGuard`].
pub(crate) fn cursor_pages<P, F, Fut>(
    client: Arc<SlackClient>,
    label: &'static str,
    fetch: F,
) -> BoxStream<'static, Result<P>>
where
    P: CursorPage,
    F: Fn(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<P>> + Send + 'static,
{
    struct Walk<F> {
        client: Arc<SlackClient>,
        fetch: F,
        cursor: Option<String>,
        guard: WalkGuard,
        done: bool,
    }
    let walk = Walk { client, fetch, cursor: None, guard: WalkGuard::new(label), done: false };
    stream::try_unfold(walk, move |mut w| async move {
        if w.done {
            return Ok(None);
        }
        let mut page = (w.fetch)(w.cursor.take()).await?;
        let rows = page.rows();
        w.client.record_page(label, rows);
        match w.guard.next_cursor(rows, page.take_metadata().and_then(|m| m.next_cursor))? {
            Some(next) => w.cursor = Some(next),
            None => w.done = true,
        }
        Ok(Some((page, w)))
    })
    .boxed()
}

/// `params` plus `cursor` when there is one.
pub(crate) fn with_cursor(
    mut params: Vec<(&'static str, String)>,
    cursor: Option<String>,
) -> Vec<(&'static str, String)> {
    if let Some(c) = cursor {
        params.push(("cursor", c));
    }
    params
}
