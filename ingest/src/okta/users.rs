//! The `okta_users` source: every Okta user, as the `okta_users` snapshot of the run day.
//!
//! `GET /api/v1/users` without a filter "omits users that have a status of DEPROVISIONED … To
//! return all users, use a filter or search query instead" (listUsers). So the snapshot is two
//! listings: the unfiltered one (every other status, including any status Okta adds later), then
//! `filter=status eq "DEPROVISIONED"`; a user met twice (its status changed between the two) is
//! kept once, as first read.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use lastseen_lake::TableDef;
use lastseen_lake::catalog::OKTA_USERS;

use super::client::{OktaClient, USERS};
use super::models::OktaUser;
use super::{pages, until_error};
use crate::error::Result;
use crate::source::{AppSource, Item, Probe, RunInfo};

static TABLES: [&TableDef; 1] = [&OKTA_USERS];

/// The `okta_users` source.
pub struct UsersSource {
    client: Arc<OktaClient>,
    page_size: u32,
}

impl UsersSource {
    pub fn new(client: Arc<OktaClient>, page_size: u32) -> Self {
        UsersSource { client, page_size }
    }
}

impl AppSource for UsersSource {
    fn app(&self) -> &'static str {
        "okta"
    }

    fn name(&self) -> String {
        "okta_users".to_owned()
    }

    fn methods(&self) -> &'static [&'static str] {
        &[USERS]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    /// Every other Okta table is keyed on the user snapshot.
    fn required(&self) -> bool {
        true
    }

    fn probe<'a>(&'a self, _run: &'a RunInfo) -> BoxFuture<'a, Result<Probe>> {
        async move {
            let url = self.client.url("api/v1/users", &[("limit", "1".to_owned())])?;
            match self.client.page::<OktaUser>(USERS, &url).await {
                Ok(_) => Ok(Probe::Works),
                Err(e) if e.is_capability() => Ok(Probe::Unavailable(e)),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn collect(&self, run: Arc<RunInfo>) -> BoxStream<'static, Result<Item>> {
        let client = Arc::clone(&self.client);
        let limit = ("limit", self.page_size.to_string());
        let listings = [
            self.client.url("api/v1/users", std::slice::from_ref(&limit)),
            self.client.url("api/v1/users", &[limit.clone(), ("filter", "status eq \"DEPROVISIONED\"".to_owned())]),
        ];
        let mut seen: HashSet<String> = HashSet::new();
        let collected = run.collected_at.timestamp_micros();
        let rows = stream::iter(listings)
            .map(move |first| match first {
                Ok(url) => pages::<OktaUser>(Arc::clone(&client), USERS, url, None),
                Err(e) => stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .try_filter_map(move |users| {
                let fresh: Vec<OktaUser> = users.into_iter().filter(|u| seen.insert(u.id.clone())).collect();
                let item = (!fresh.is_empty())
                    .then(|| users_batch(&fresh, collected).map(|batch| Item::Rows { table: &OKTA_USERS, batch }));
                std::future::ready(item.transpose())
            })
            .boxed();
        until_error(rows)
    }
}

/// Users as `okta_users` rows (the catalog's column order).
pub(crate) fn users_batch(users: &[OktaUser], collected_at: i64) -> Result<RecordBatch> {
    let s = StringBuilder::new;
    let ts = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let (mut id, mut status) = (s(), s());
    let (mut created, mut activated, mut status_changed, mut last_login, mut last_updated, mut collected) =
        (ts(), ts(), ts(), ts(), ts(), ts());
    let (mut login, mut email, mut first, mut last, mut number, mut department, mut manager, mut manager_id, mut kind) =
        (s(), s(), s(), s(), s(), s(), s(), s(), s());
    for u in users {
        let p = &u.profile;
        id.append_value(&u.id);
        status.append_value(&u.status);
        created.append_value(u.created.timestamp_micros());
        activated.append_option(u.activated.map(|t| t.timestamp_micros()));
        status_changed.append_option(u.status_changed.map(|t| t.timestamp_micros()));
        last_login.append_option(u.last_login.map(|t| t.timestamp_micros()));
        last_updated.append_option(u.last_updated.map(|t| t.timestamp_micros()));
        login.append_option(p.login.as_deref());
        email.append_option(p.email.as_deref());
        first.append_option(p.first_name.as_deref());
        last.append_option(p.last_name.as_deref());
        number.append_option(p.employee_number.as_deref());
        department.append_option(p.department.as_deref());
        manager.append_option(p.manager.as_deref());
        manager_id.append_option(p.manager_id.as_deref());
        kind.append_option(p.user_type.as_deref());
        collected.append_value(collected_at);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(status.finish()),
        Arc::new(created.finish()),
        Arc::new(activated.finish()),
        Arc::new(status_changed.finish()),
        Arc::new(last_login.finish()),
        Arc::new(last_updated.finish()),
        Arc::new(login.finish()),
        Arc::new(email.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(number.finish()),
        Arc::new(department.finish()),
        Arc::new(manager.finish()),
        Arc::new(manager_id.finish()),
        Arc::new(kind.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(OKTA_USERS.schema(), columns).map_err(crate::source::arrow_err(&OKTA_USERS))
}
