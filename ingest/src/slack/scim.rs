//! The SCIM collector: `/Users` and `/Groups` (v2, or v1.1 on GovSlack) with `startIndex` /
//! `count` paging, into `slack_scim_users` and `slack_scim_groups` (one row per member).
//! SCIM is organisation-wide on Enterprise Grid and workspace-wide on Business+: one walk each.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::{SLACK_SCIM_GROUPS, SLACK_SCIM_USERS};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use crate::error::{IngestError, Result};
use crate::slack::api::SlackClient;
use crate::slack::collector::{Collector, Item, RunContext, WalkGuard, arrow_err};
use crate::slack::micros;
use crate::slack::models::lenient;

pub const SCIM_USERS: &str = "scim.Users";
pub const SCIM_GROUPS: &str = "scim.Groups";
/// SCIM's page cap (larger counts are read as 1000).
const PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct ListResponse<T> {
    #[serde(default, rename = "totalResults", deserialize_with = "lenient::opt_i64")]
    total_results: Option<i64>,
    #[serde(default, rename = "Resources", deserialize_with = "lenient::vec")]
    resources: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
struct ScimUser {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(default, rename = "userName", deserialize_with = "lenient::opt_string")]
    user_name: Option<String>,
    #[serde(default, rename = "externalId", deserialize_with = "lenient::opt_string")]
    external_id: Option<String>,
    #[serde(default, rename = "displayName", deserialize_with = "lenient::opt_string")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::vec")]
    emails: Vec<ScimEmail>,
    /// Extension schemas are keyed by their URN, which differs between v1 and v2.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ScimEmail {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    value: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    primary: bool,
}

impl ScimUser {
    fn email(&self) -> Option<&str> {
        let primary = self.emails.iter().find(|e| e.primary && e.value.is_some());
        primary.or_else(|| self.emails.iter().find(|e| e.value.is_some())).and_then(|e| e.value.as_deref())
    }

    /// The enterprise extension (`…:extension:enterprise:2.0:User` or `…:extension:enterprise:1.0`).
    fn enterprise(&self, field: &str) -> Option<String> {
        let ext = self.rest.iter().find(|(k, _)| k.contains(":extension:enterprise:")).map(|(_, v)| v)?;
        let v = match field {
            // v2 nests the manager as {value}, v1 as {managerId}.
            "manager" => ext.get("manager").and_then(|m| m.get("value").or_else(|| m.get("managerId"))),
            f => ext.get(f),
        }?;
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ScimGroup {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(default, rename = "displayName", deserialize_with = "lenient::opt_string")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    members: Vec<ScimMember>,
}

#[derive(Debug, Default, Deserialize)]
struct ScimMember {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    value: Option<String>,
}

static TABLES: [&TableDef; 2] = [&SLACK_SCIM_USERS, &SLACK_SCIM_GROUPS];

/// The `scim` source.
#[derive(Debug)]
pub struct ScimCollector;

fn page_url(base: &Url, resource: &str, start: usize, count: usize) -> Result<Url> {
    let mut url = base
        .join(resource)
        .map_err(|e| IngestError::Setup(format!("building the SCIM URL for {resource} from {base}: {e}")))?;
    url.query_pairs_mut().append_pair("startIndex", &start.to_string()).append_pair("count", &count.to_string());
    Ok(url)
}

impl Collector for ScimCollector {
    fn source(&self) -> Source {
        Source::Scim
    }

    fn methods(&self) -> &'static [&'static str] {
        &[SCIM_USERS, SCIM_GROUPS]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        async move {
            let url = page_url(&ctx.settings.scim_base, "Users", 1, 1)?;
            ctx.client
                .get_rest::<ListResponse<ScimUser>>(SCIM_USERS, Some(ctx.scope.org_key()), &url)
                .await
                .map(drop)
                .map_err(IngestError::refused_rest_token)
        }
        .boxed()
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        let collected = micros(ctx.collected_at);
        let users = walk(Arc::clone(&ctx), SCIM_USERS, "Users", |u: &ScimUser| u.id.clone())
            .map(move |page| Ok(Item::Rows { table: &SLACK_SCIM_USERS, batch: users_batch(&page?, collected)? }));
        let groups = walk(Arc::clone(&ctx), SCIM_GROUPS, "Groups", |g: &ScimGroup| g.id.clone())
            .map(move |page| Ok(Item::Rows { table: &SLACK_SCIM_GROUPS, batch: groups_batch(&page?, collected)? }));
        stream::select(users, groups).boxed()
    }
}

struct Walk {
    client: Arc<SlackClient>,
    base: Url,
    org: String,
    start: usize,
    guard: WalkGuard,
    done: bool,
}

/// The resources of one SCIM list, a page at a time.
fn walk<T: DeserializeOwned + Send + 'static>(
    ctx: Arc<RunContext>,
    label: &'static str,
    resource: &'static str,
    id: fn(&T) -> String,
) -> BoxStream<'static, Result<Vec<T>>> {
    let st = Walk {
        client: Arc::clone(&ctx.client),
        base: ctx.settings.scim_base.clone(),
        org: ctx.scope.org_key().to_owned(),
        start: 1,
        guard: WalkGuard::new(label),
        done: false,
    };
    stream::try_unfold(st, move |mut st| async move {
        if st.done {
            return Ok(None);
        }
        let url = page_url(&st.base, resource, st.start, PAGE)?;
        let page: ListResponse<T> =
            st.client.get_rest(label, Some(&st.org), &url).await.map_err(IngestError::refused_rest_token)?;
        st.client.record_page(label, page.resources.len());
        let n = page.resources.len();
        // A server that ignores startIndex (and sends no totalResults) repeats a page: its first
        // resource is then one already read.
        st.guard.page(n)?;
        if let Some(first) = page.resources.first() {
            st.guard.visit(id(first))?;
        }
        st.start += n;
        // An empty page ends the list whatever totalResults says, so a miscount cannot loop.
        st.done = n == 0 || page.total_results.is_some_and(|t| st.start as i64 > t);
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((page.resources, st)))
    })
    .boxed()
}

fn users_batch(users: &[ScimUser], collected_at_us: i64) -> Result<RecordBatch> {
    let s = StringBuilder::new;
    let (mut id, mut user_name, mut external_id, mut email, mut display) = (s(), s(), s(), s(), s());
    let (mut employee, mut department, mut manager) = (s(), s(), s());
    let mut active = BooleanBuilder::new();
    let mut collected = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for u in users {
        id.append_value(&u.id);
        user_name.append_option(u.user_name.as_deref());
        external_id.append_option(u.external_id.as_deref());
        email.append_option(u.email());
        active.append_option(u.active);
        display.append_option(u.display_name.as_deref());
        employee.append_option(u.enterprise("employeeNumber"));
        department.append_option(u.enterprise("department"));
        manager.append_option(u.enterprise("manager"));
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(user_name.finish()),
        Arc::new(external_id.finish()),
        Arc::new(email.finish()),
        Arc::new(active.finish()),
        Arc::new(display.finish()),
        Arc::new(employee.finish()),
        Arc::new(department.finish()),
        Arc::new(manager.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_SCIM_USERS.schema(), columns).map_err(arrow_err(&SLACK_SCIM_USERS))
}

fn groups_batch(groups: &[ScimGroup], collected_at_us: i64) -> Result<RecordBatch> {
    let (mut id, mut name, mut member) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut collected = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for g in groups {
        let members: Vec<&str> = g.members.iter().filter_map(|m| m.value.as_deref()).collect();
        // A group without members still exists: one row with a null member.
        let rows: Vec<Option<&str>> =
            if members.is_empty() { vec![None] } else { members.into_iter().map(Some).collect() };
        for m in rows {
            id.append_value(&g.id);
            name.append_option(g.display_name.as_deref());
            member.append_option(m);
            collected.append_value(collected_at_us);
        }
    }
    let columns: Vec<ArrayRef> =
        vec![Arc::new(id.finish()), Arc::new(name.finish()), Arc::new(member.finish()), Arc::new(collected.finish())];
    RecordBatch::try_new(SLACK_SCIM_GROUPS.schema(), columns).map_err(arrow_err(&SLACK_SCIM_GROUPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_users_read_the_same_columns() {
        let v2 = r#"{"id":"U1","userName":"ann","externalId":"","displayName":"Ann B","active":false,
            "emails":[{"value":"x@y.test","primary":false},{"value":"ann@y.test","primary":true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7","department":"eng","manager":{"value":"U9"}}}"#;
        let v1 = r#"{"id":"U1","userName":"ann","displayName":"Ann B","active":false,
            "emails":[{"value":"ann@y.test","primary":true}],
            "urn:scim:schemas:extension:enterprise:1.0":{"employeeNumber":7,"department":"eng","manager":{"managerId":"U9"}}}"#;
        for text in [v2, v1] {
            let u: ScimUser = serde_json::from_str(text).unwrap();
            assert_eq!(u.email(), Some("ann@y.test"));
            assert_eq!(u.external_id, None);
            assert_eq!(u.enterprise("employeeNumber").as_deref(), Some("7"));
            assert_eq!(u.enterprise("department").as_deref(), Some("eng"));
            assert_eq!(u.enterprise("manager").as_deref(), Some("U9"));
            let b = users_batch(&[u], 1).unwrap();
            assert_eq!(b.schema(), SLACK_SCIM_USERS.schema());
        }
    }

    #[test]
    fn an_empty_group_keeps_one_row() {
        let groups: Vec<ScimGroup> = serde_json::from_str(
            r#"[{"id":"S1","displayName":"A","members":[{"value":"U1"},{"value":"U2"}]},{"id":"S2","displayName":"B","members":[]}]"#,
        )
        .unwrap();
        let b = groups_batch(&groups, 1).unwrap();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.column(2).null_count(), 1);
    }

    /// The SCIM fields read are in Slack's recorded v1 and v2 answers, except the enterprise
    /// extension's `employeeNumber` and `department`: the recorded organisations set none
    /// (the extension holds only `manager: {}`); they are RFC 7643 enterprise-extension
    /// attributes Slack documents on its SCIM page.
    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        use crate::slack::contract::{TEXT, parse};
        for v in ["v1", "v2"] {
            let page: ListResponse<ScimUser> = parse(&format!("scim__{v}__Users.json"));
            assert_eq!(page.total_results, Some(12345), "{v}");
            let u = &page.resources[0];
            assert_eq!(u.id, "W00000000", "{v}");
            assert_eq!((u.user_name.as_deref(), u.external_id.as_deref()), (Some(TEXT), Some(TEXT)), "{v}");
            assert_eq!((u.display_name.as_deref(), u.active, u.email()), (Some(TEXT), Some(true), Some(TEXT)), "{v}");
            assert!(u.rest.keys().any(|k| k.contains(":extension:enterprise:")), "{v}");
            let ext = u.rest.iter().find(|(k, _)| k.contains(":extension:enterprise:")).map(|(_, e)| e).unwrap();
            assert!(ext["manager"].is_object(), "{v}: the manager is an object");
            let groups: ListResponse<ScimGroup> = parse(&format!("scim__{v}__Groups.json"));
            let g = &groups.resources[0];
            assert_eq!((g.id.as_str(), g.display_name.as_deref()), ("S00000000", Some(TEXT)), "{v}");
            assert_eq!(g.members[0].value.as_deref(), Some("U00000000"), "{v}");
        }
    }
}
