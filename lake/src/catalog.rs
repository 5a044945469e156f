//! The table catalog: every lake table's name, explicit Arrow schema, partitioning and write rule.
//!
//! Schemas are data, not inferred: readers (lastseen, DuckDB, Spark…) all see the same types.
//! Timestamps are `Timestamp(Microsecond, "UTC")`; the `dt` partition column lives in the path
//! (`<table>/dt=YYYY-MM-DD/`) and never inside the files, so no engine sees it twice.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Name of the Hive partition column every table has.
pub const PARTITION_COLUMN: &str = "dt";

/// How a table's rows are assigned to `dt` partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// One partition per run date: the table is a daily snapshot.
    Snapshot,
    /// `dt` is the UTC date of a timestamp (or `Date32`) column of each row (an event table).
    EventDate { column: &'static str },
}

/// What committing new rows into an existing partition means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The new rows become the partition's whole content (re-running a day replaces it).
    Replace,
    /// The new rows are merged with the partition's committed rows and de-duplicated on `key`,
    /// keeping the row with the greatest `latest_by`. Used where the source is a moving
    /// aggregate that a later read may no longer show (access logs): nothing seen is lost, and
    /// reading the same rows twice adds nothing.
    Merge { key: &'static [&'static str], latest_by: &'static str },
}

/// A lake table: everything the writer, the commit protocol and the readers need to know.
#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: &'static LazyLock<SchemaRef>,
    pub partitioning: Partitioning,
    pub write_mode: WriteMode,
    /// Rows are sorted by these columns inside each file (pruning and compression).
    pub sort_key: &'static [&'static str],
    /// The sort-key columns sorted descending, nulls first (SQL's default for DESC); the others
    /// sort ascending, nulls last.
    pub descending: &'static [&'static str],
    /// Scans of committed files tell DataFusion each file is in sort-key order, so a query
    /// ordered by a prefix of the key merges the scan's partitions instead of sorting, and
    /// filters on the leading columns prune pages. Only for a table every committed file of
    /// which is in this order, including files written before the key last changed (see
    /// [`ACCOUNT_REPORT`]).
    pub ordered_scan: bool,
    /// Bumped on every (additive) schema change.
    pub version: u32,
    /// Mass-change guard: a snapshot partition of this table that shrinks by more than the
    /// transaction's allowed share against the previous snapshot is not published. Set on the
    /// account snapshot, where a sudden drop is far more often a broken source than reality.
    pub mass_change_guard: bool,
}

impl TableDef {
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(self.schema)
    }

    /// The sort key with each column's direction: the one place that says how a file's rows
    /// are ordered, for the writer's `ORDER BY`, the Parquet footer's `sorting_columns` and
    /// the ordering scans declare to DataFusion. Descending columns put nulls first, ascending
    /// ones last (SQL's defaults for DESC and ASC).
    pub fn sort_columns(&self) -> impl Iterator<Item = (&'static str, SortOptions)> + '_ {
        self.sort_key.iter().map(|c| {
            let descending = self.descending.contains(c);
            (*c, SortOptions { descending, nulls_first: descending })
        })
    }

    /// The schema a query sees: the file columns plus the `dt` partition column.
    pub fn table_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(partition_field());
        Arc::new(Schema::new(fields))
    }
}

/// Days since 1970-01-01, Arrow's `Date32` representation of a `dt` value.
pub fn date32(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days() as i32
}

/// The date a `Date32` value stands for.
pub fn from_date32(days: i32) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .expect("valid date")
        .checked_add_signed(chrono::Duration::days(i64::from(days)))
}

/// A `dt` value as a DataFusion literal or query parameter.
pub fn date_scalar(d: chrono::NaiveDate) -> datafusion::common::ScalarValue {
    datafusion::common::ScalarValue::Date32(Some(date32(d)))
}

pub fn partition_field() -> Field {
    Field::new(PARTITION_COLUMN, DataType::Date32, false)
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn boolean(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Boolean, nullable)
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(name, ts(), nullable)
}

fn int64(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

/// The element field of `List<Utf8>` columns, as Arrow's `ListBuilder<StringBuilder>` makes it.
pub fn utf8_list_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, true))
}

static SLACK_USERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("team_id", false),
        utf8("user_id", false),
        utf8("name", true),
        utf8("real_name", true),
        utf8("display_name", true),
        utf8("email", true),
        utf8("title", true),
        boolean("deleted", false),
        boolean("is_admin", false),
        boolean("is_owner", false),
        boolean("is_primary_owner", false),
        boolean("is_restricted", false),
        boolean("is_ultra_restricted", false),
        boolean("is_bot", false),
        boolean("is_app_user", false),
        boolean("is_invited_user", false),
        boolean("is_stranger", false),
        utf8("bot_id", true),
        utf8("tz", true),
        boolean("has_2fa", true),
        Field::new("updated", ts(), true),
        Field::new("collected_at", ts(), false),
        // Version 2 (additive): Enterprise Grid organisation facts. Null where the plan or the
        // token cannot tell.
        utf8("enterprise_id", true),
        Field::new("workspace_ids", DataType::List(utf8_list_item()), true),
        timestamp("last_active_at", true),
        timestamp("created_at", true),
        boolean("has_sso", true),
        // Version 3 (additive): Slack's workflow and connector bots (`is_workflow_bot`,
        // `is_connector_bot` in real users.list/users.info answers), service accounts whatever
        // `is_bot` says. Null in files written before.
        boolean("is_workflow_bot", true),
        boolean("is_connector_bot", true),
    ]))
});

static SLACK_WORKSPACES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("team_id", false),
        utf8("name", true),
        utf8("domain", true),
        utf8("enterprise_id", true),
        timestamp("collected_at", false),
    ]))
});

static SLACK_BILLING_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("team_id", false),
        utf8("user_id", false),
        boolean("billing_active", false),
        timestamp("collected_at", false),
    ]))
});

static SLACK_USERGROUPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("team_id", false),
        utf8("usergroup_id", false),
        utf8("handle", true),
        utf8("name", true),
        boolean("disabled", false),
        int64("user_count", true),
        timestamp("collected_at", false),
    ]))
});

static SLACK_USERGROUP_MEMBERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("team_id", false),
        utf8("usergroup_id", false),
        utf8("user_id", false),
        timestamp("collected_at", false),
    ]))
});

static SLACK_SCIM_USERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("user_id", false),
        utf8("user_name", true),
        utf8("external_id", true),
        utf8("email", true),
        boolean("active", true),
        utf8("display_name", true),
        utf8("employee_number", true),
        utf8("department", true),
        utf8("manager_id", true),
        timestamp("collected_at", false),
    ]))
});

static SLACK_SCIM_GROUPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("group_id", false),
        utf8("display_name", true),
        utf8("member_user_id", true),
        timestamp("collected_at", false),
    ]))
});

static SLACK_MEMBER_ANALYTICS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        utf8("enterprise_id", true),
        utf8("team_id", true),
        utf8("user_id", false),
        utf8("email", true),
        boolean("is_guest", true),
        boolean("is_billable_seat", true),
        boolean("is_active", true),
        boolean("is_active_ios", true),
        boolean("is_active_android", true),
        boolean("is_active_desktop", true),
        boolean("is_active_apps", true),
        boolean("is_active_workflows", true),
        boolean("is_active_slack_connect", true),
        int64("messages_posted", true),
        int64("channel_messages_posted", true),
        int64("reactions_added", true),
        int64("files_added", true),
        int64("search_count", true),
        timestamp("date_claimed", true),
        timestamp("collected_at", false),
    ]))
});

static SLACK_AUDIT_LOGINS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("id", false),
        timestamp("date_create", false),
        utf8("action", false),
        utf8("user_id", true),
        utf8("email", true),
        utf8("team_id", true),
        utf8("ip", true),
        utf8("user_agent", true),
        timestamp("collected_at", false),
    ]))
});

static SLACK_ACCESS_LOGS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("team_id", false),
        utf8("user_id", false),
        utf8("username", true),
        Field::new("date_first", ts(), false),
        Field::new("date_last", ts(), false),
        Field::new("count", DataType::Int64, false),
        utf8("ip", true),
        utf8("user_agent", true),
        utf8("isp", true),
        utf8("country", true),
        utf8("region", true),
        Field::new("collected_at", ts(), false),
    ]))
});

static LAST_SEEN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("app", false),
        utf8("workspace_id", false),
        utf8("account_id", false),
        Field::new("last_seen_at", ts(), true),
        utf8("last_seen_source", true),
        Field::new("first_seen_at", ts(), true),
        Field::new("computed_at", ts(), false),
        // Version 2 (nullable, so version-1 files still read).
        Field::new("active_days_30", DataType::Int64, true),
        Field::new("active_days_90", DataType::Int64, true),
        utf8("state", true),
        boolean("listed", true),
    ]))
});

fn utf8_list(name: &str) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true)
}

static IDENTITIES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("identity_id", false),
        utf8("email", true),
        utf8_list("alternate_emails"),
        utf8("username", true),
        utf8("employee_id", true),
        utf8("display_name", true),
        utf8("department", true),
        utf8("manager_id", true),
        utf8("manager_email", true),
        utf8("status", true),
        Field::new("termination_date", DataType::Date32, true),
        utf8("employee_type", true),
        utf8("source_file", false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("loaded_at", ts(), false),
    ]))
});

static IDENTITIES_QUARANTINE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("source_file", false),
        Field::new("source_line", DataType::Int64, false),
        utf8("identity_id", true),
        utf8("reason", false),
        utf8("record", true),
        Field::new("loaded_at", ts(), false),
    ]))
});

static CORRELATION_OVERRIDES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("account_id", false),
        utf8("identity_id", true),
        utf8("service_owner_id", true),
        utf8("reason", true),
        Field::new("source_line", DataType::Int64, false),
    ]))
});

static SLACK_MEMBER_ANALYTICS_QUARANTINE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("line", DataType::Int64, false),
        utf8("reason", false),
        utf8("record", true),
        Field::new("collected_at", ts(), false),
    ]))
});

static ACCOUNTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("app", false),
        utf8("workspace_id", false),
        utf8("account_id", false),
        utf8("enterprise_id", true),
        utf8("username", true),
        utf8("display_name", true),
        utf8("email", true),
        utf8("account_type", false),
        utf8("status", false),
        boolean("billable", true),
        utf8_list("groups"),
        boolean("has_2fa", true),
        boolean("has_sso", true),
        Field::new("created_at", ts(), true),
        Field::new("updated_at", ts(), true),
        utf8_list("workspace_ids"),
        Field::new("collected_at", ts(), false),
        // Version 2 (additive): what the app's accounts file knows beside the account itself,
        // so that correlation and the account_report rollup read `accounts` only: the home
        // workspace's name and the attributes the app's IdP provisioning (SCIM) records.
        // Null in files written before.
        utf8("workspace_name", true),
        utf8("scim_user_name", true),
        utf8("scim_external_id", true),
        utf8("scim_email", true),
        utf8("employee_number", true),
    ]))
});

static ACCOUNT_IDENTITY_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("app", false),
        utf8("workspace_id", false),
        utf8("account_id", false),
        utf8("account_type", false),
        utf8("match_status", false),
        utf8("identity_id", true),
        utf8("rule", true),
        utf8("matched_value", true),
        utf8("candidates", true),
        utf8("service_owner_id", true),
        Field::new("computed_at", ts(), false),
    ]))
});

static ACTIVITY_DAILY_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("app", false),
        utf8("account_id", false),
        utf8("workspace_id", true),
        boolean("active", false),
        utf8("sources", false),
        Field::new("first_at", ts(), true),
        Field::new("last_at", ts(), true),
        utf8("last_source", true),
        Field::new("logins", DataType::Int64, true),
        Field::new("messages", DataType::Int64, true),
        Field::new("computed_at", ts(), false),
    ]))
});

static ACCOUNT_REPORT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("app", false),
        utf8("workspace_id", false),
        utf8("workspace_name", true),
        utf8("account_id", false),
        utf8_list("workspace_ids"),
        utf8("username", true),
        utf8("email", true),
        utf8("display_name", true),
        utf8("account_type", false),
        utf8("status", false),
        boolean("billable", true),
        timestamp("created_at", true),
        utf8("user_groups", true),
        utf8("idp_groups", true),
        timestamp("last_seen_at", true),
        utf8("last_seen_source", true),
        int64("active_days_30", true),
        int64("active_days_90", true),
        utf8("last_seen_state", true),
        utf8("match_status", true),
        utf8("match_rule", true),
        utf8("matched_value", true),
        utf8("candidates", true),
        utf8("identity_id", true),
        utf8("identity_name", true),
        utf8("identity_email", true),
        utf8("department", true),
        utf8("employee_type", true),
        utf8("identity_status", true),
        Field::new("termination_date", DataType::Date32, true),
        utf8("manager_email", true),
        utf8("manager_name", true),
        Field::new("last_active_day", DataType::Date32, true),
        Field::new("key_since", DataType::Date32, false),
        // Version 2 (additive), the leading sort key: null in files written before, which were
        // sorted by the rest of the key (app, workspace_id, account_id) and so are in the
        // declared order too. `dormant` reads a day only where they are set (its `@guard`).
        //   days_since_last_seen  dt - the day of last_seen_at (NULL: never seen)
        //   risk                  4 × privileged + 4 × owner terminated by dt + 2 × orphan +
        //                         1 × billable: the dormant report's first sort key
        int64("risk", true),
        Field::new("days_since_last_seen", DataType::Int32, true),
    ]))
});

static USAGE_DAILY_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        // Version 2 (additive): the app the accounts are of. Null in files written before (a
        // report reading such a day falls back to its oracle).
        utf8("app", true),
        utf8("workspace_id", false),
        utf8_list("workspace_ids"),
        utf8("department", true),
        utf8("account_type", false),
        int64("accounts", false),
        int64("dau", false),
        int64("wau", false),
        int64("mau", false),
        int64("billable_seats", false),
        int64("billing_known", false),
        Field::new("key_since", DataType::Date32, false),
    ]))
});

static OKTA_USERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("user_id", false),
        // `UserStatus` as Okta sends it (STAGED … DEPROVISIONED), kept as text.
        utf8("status", false),
        timestamp("created", false),
        timestamp("activated", true),
        timestamp("status_changed", true),
        // "The timestamp of the last login": Okta's own last sign-in, older than the System Log
        // may reach back.
        timestamp("last_login", true),
        timestamp("last_updated", true),
        utf8("login", true),
        utf8("email", true),
        utf8("first_name", true),
        utf8("last_name", true),
        utf8("employee_number", true),
        utf8("department", true),
        utf8("manager", true),
        utf8("manager_id", true),
        utf8("user_type", true),
        timestamp("collected_at", false),
    ]))
});

static OKTA_LOG_EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("uuid", false),
        timestamp("published", false),
        utf8("event_type", false),
        utf8("actor_id", true),
        utf8("actor_type", true),
        utf8("actor_alternate_id", true),
        utf8("actor_display_name", true),
        utf8("outcome_result", true),
        utf8("outcome_reason", true),
        // The first `AppInstance` target (SSO events): Okta's app instance id and label.
        utf8("target_app_id", true),
        utf8("target_app_label", true),
        // The lastseen app that instance stands for (`okta.apps` in the configuration), or null.
        utf8("mapped_app", true),
        // The first `User` target (lifecycle events).
        utf8("target_user_id", true),
        utf8("client_ip", true),
        timestamp("collected_at", false),
    ]))
});

static SSO_LAST_SEEN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        // The identity provider (an app with an `sql/sso/<idp>.sql` source, e.g. okta), its user
        // (the IdP account's id) and the app instance the user signed into through it.
        utf8("idp", false),
        utf8("idp_user_id", false),
        utf8("app_instance_id", false),
        utf8("app_instance_label", true),
        // The lastseen app the instance stands for (the IdP collector's configuration), or null;
        // the IdP user's account in that app on the snapshot day when exactly one maps to it
        // (`mapped_accounts` says how many do: 0 = none, more than 1 = not one to name).
        utf8("mapped_app", true),
        utf8("mapped_account_id", true),
        int64("mapped_accounts", true),
        timestamp("first_sso_at", true),
        timestamp("last_sso_at", false),
        timestamp("computed_at", false),
    ]))
});

/// Slack `users.list`: one row per user per snapshot day.
pub static SLACK_USERS: TableDef = TableDef {
    name: "slack_users",
    description: "Slack users.list snapshot: one row per account per day",
    schema: &SLACK_USERS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["team_id", "user_id"],
    descending: &[],
    ordered_scan: false,
    // 2: enterprise_id, workspace_ids, last_active_at, created_at, has_sso.
    // 3: is_workflow_bot, is_connector_bot.
    version: 3,
    mass_change_guard: true,
};

/// Workspaces the token can see: the token's own, or every workspace of a Grid organisation.
pub static SLACK_WORKSPACES: TableDef = TableDef {
    name: "slack_workspaces",
    description: "Slack workspaces (team.info, or admin.teams.list on Enterprise Grid) per day",
    schema: &SLACK_WORKSPACES_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["team_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// `team.billableInfo`: whether Slack bills each member (Fair Billing), per workspace and day.
pub static SLACK_BILLING: TableDef = TableDef {
    name: "slack_billing",
    description: "Slack team.billableInfo snapshot: billing_active per workspace member per day",
    schema: &SLACK_BILLING_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["team_id", "user_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// `usergroups.list` (disabled groups included) per workspace and day.
pub static SLACK_USERGROUPS: TableDef = TableDef {
    name: "slack_usergroups",
    description: "Slack user groups snapshot (usergroups.list, disabled included) per day",
    schema: &SLACK_USERGROUPS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["team_id", "usergroup_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// One row per (user group, member) per day.
pub static SLACK_USERGROUP_MEMBERS: TableDef = TableDef {
    name: "slack_usergroup_members",
    description: "Slack user group memberships snapshot: one row per group member per day",
    schema: &SLACK_USERGROUP_MEMBERS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["team_id", "usergroup_id", "user_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// SCIM `/Users` (v2; v1 on GovSlack): the identity provider's view of each account.
pub static SLACK_SCIM_USERS: TableDef = TableDef {
    name: "slack_scim_users",
    description: "Slack SCIM /Users snapshot (userName, externalId, email, active, HR attributes) per day",
    schema: &SLACK_SCIM_USERS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["user_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// SCIM `/Groups`: one row per member; a group without members has one row with a null member.
pub static SLACK_SCIM_GROUPS: TableDef = TableDef {
    name: "slack_scim_groups",
    description: "Slack SCIM /Groups snapshot: one row per group member per day",
    schema: &SLACK_SCIM_GROUPS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["group_id", "member_user_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// `admin.analytics.getFile` type=member: one row per member per analytics day; `dt` is the
/// file's `date`, and fetching a day again replaces it.
pub static SLACK_MEMBER_ANALYTICS: TableDef = TableDef {
    name: "slack_member_analytics",
    description: "Slack member analytics (admin.analytics.getFile type=member), partitioned by the file's date",
    schema: &SLACK_MEMBER_ANALYTICS_SCHEMA,
    partitioning: Partitioning::EventDate { column: "date" },
    write_mode: WriteMode::Replace,
    sort_key: &["team_id", "user_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Lines of a member-analytics file that could not be read (malformed JSON, no user id): the
/// file's day, the line number, why, and the line's text (cut at 1000 characters). Fetching
/// the day again replaces them, like the day's rows.
pub static SLACK_MEMBER_ANALYTICS_QUARANTINE: TableDef = TableDef {
    name: "slack_member_analytics_quarantine",
    description: "Member analytics file lines refused, per file date: line number, reason, the line's text",
    schema: &SLACK_MEMBER_ANALYTICS_QUARANTINE_SCHEMA,
    partitioning: Partitioning::EventDate { column: "date" },
    write_mode: WriteMode::Replace,
    sort_key: &["line"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Audit Logs API login events (user_login, user_logout, user_login_failed), partitioned by
/// the UTC date of `date_create`; `id` is Slack's unique event id, so re-reading adds nothing.
pub static SLACK_AUDIT_LOGINS: TableDef = TableDef {
    name: "slack_audit_logins",
    description: "Slack Audit Logs login/logout/failed-login events, partitioned by the UTC date of date_create",
    schema: &SLACK_AUDIT_LOGINS_SCHEMA,
    partitioning: Partitioning::EventDate { column: "date_create" },
    write_mode: WriteMode::Merge { key: &["id"], latest_by: "collected_at" },
    sort_key: &["user_id", "date_create"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Slack `team.accessLogs`: one row per (user, ip, user agent, first access) as last observed on
/// the day of its `date_last`. Key documented in the README: (team_id, user_id, ip, user_agent,
/// date_first) is unique within a `dt` partition.
pub static SLACK_ACCESS_LOGS: TableDef = TableDef {
    name: "slack_access_logs",
    description: "Slack team.accessLogs entries, partitioned by the UTC date of date_last",
    schema: &SLACK_ACCESS_LOGS_SCHEMA,
    partitioning: Partitioning::EventDate { column: "date_last" },
    write_mode: WriteMode::Merge {
        key: &["team_id", "user_id", "ip", "user_agent", "date_first"],
        latest_by: "date_last",
    },
    sort_key: &["team_id", "user_id", "date_last"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Okta `GET /api/v1/users`: one row per Okta user per snapshot day.
pub static OKTA_USERS: TableDef = TableDef {
    name: "okta_users",
    description: "Okta users snapshot (/api/v1/users): one row per user per day",
    schema: &OKTA_USERS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["user_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: true,
};

/// Okta System Log events (`GET /api/v1/logs`) of the collected event types, partitioned by the
/// UTC date of `published`; `uuid` is Okta's unique event id, so re-reading adds nothing.
pub static OKTA_LOG_EVENTS: TableDef = TableDef {
    name: "okta_log_events",
    description: "Okta System Log events (sign-ins, SSO into apps), partitioned by the UTC date of published",
    schema: &OKTA_LOG_EVENTS_SCHEMA,
    partitioning: Partitioning::EventDate { column: "published" },
    write_mode: WriteMode::Merge { key: &["uuid"], latest_by: "collected_at" },
    sort_key: &["actor_id", "published"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Derived: per account, the last time any source saw it, as of the snapshot day.
pub static LAST_SEEN: TableDef = TableDef {
    name: "last_seen",
    description: "Derived: last and first evidence of use per account, as of each snapshot day",
    schema: &LAST_SEEN_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["app", "workspace_id", "account_id"],
    descending: &[],
    ordered_scan: false,
    version: 2,
    // Derived from slack_users, which is guarded already.
    mass_change_guard: false,
};

/// Derived: per snapshot day, the last single sign-on through an identity provider per (IdP
/// user, app instance), whatever the app (transform/sql/sso_last_seen.sql).
pub static SSO_LAST_SEEN: TableDef = TableDef {
    name: "sso_last_seen",
    description: "Derived: last SSO per identity-provider user and app instance, with the mapped app and account, as of each snapshot day",
    schema: &SSO_LAST_SEEN_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["idp", "idp_user_id", "app_instance_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// The HR/IdP identity export as read on the snapshot day.
pub static IDENTITIES: TableDef = TableDef {
    name: "identities",
    description: "Governance identities (HR/IdP export) as read on each snapshot day",
    schema: &IDENTITIES_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["identity_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Rows of the identity export that could not be used, with file, line and reason.
pub static IDENTITIES_QUARANTINE: TableDef = TableDef {
    name: "identities_quarantine",
    description: "Identity export rows refused on each snapshot day: file, line, reason",
    schema: &IDENTITIES_QUARANTINE_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["source_file", "source_line"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// The manual correlation overrides file (`correlation.overrides`) as read on the snapshot day,
/// committed with the raw tables like the identity export.
pub static CORRELATION_OVERRIDES: TableDef = TableDef {
    name: "correlation_overrides",
    description: "Manual correlation overrides (account → identity or service owner) as read on each snapshot day",
    schema: &CORRELATION_OVERRIDES_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["account_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Derived: the app-agnostic account snapshot.
pub static ACCOUNTS: TableDef = TableDef {
    name: "accounts",
    description: "Derived: app-agnostic account snapshot (type, status, billable, groups)",
    schema: &ACCOUNTS_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["app", "workspace_id", "account_id"],
    descending: &[],
    ordered_scan: false,
    version: 2,
    mass_change_guard: false,
};

/// Derived: which identity owns each account, by which rule.
pub static ACCOUNT_IDENTITY: TableDef = TableDef {
    name: "account_identity",
    description: "Derived: the identity owning each account, the rule and value that matched",
    schema: &ACCOUNT_IDENTITY_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["app", "workspace_id", "account_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Derived: per account and day, whether any source saw it active and with what evidence.
pub static ACTIVITY_DAILY: TableDef = TableDef {
    name: "activity_daily",
    description: "Derived: per account and day, activity and the sources that prove it",
    schema: &ACTIVITY_DAILY_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["app", "account_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Derived rollup: per snapshot day, the day's accounts counted per home workspace,
/// memberships, department and account type (accounts, DAU/WAU/MAU, billable seats): what the
/// `usage` report reads (transform/sql/usage_daily.sql).
pub static USAGE_DAILY: TableDef = TableDef {
    name: "usage_daily",
    description: "Derived rollup: per snapshot day and workspace × memberships × department × account type: accounts, DAU, WAU, MAU, billable seats",
    schema: &USAGE_DAILY_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    sort_key: &["app", "workspace_id", "department", "account_type"],
    descending: &[],
    ordered_scan: false,
    version: 2,
    mass_change_guard: false,
};

/// Derived rollup: per snapshot day, every account with the joins the account reports repeat
/// (workspace, last seen, owner identity, manager, groups), written by the same derivation as
/// `last_seen` (transform/sql/account_report.sql).
pub static ACCOUNT_REPORT: TableDef = TableDef {
    name: "account_report",
    description: "Derived rollup: per account and snapshot day, the joined facts the account reports read",
    schema: &ACCOUNT_REPORT_SCHEMA,
    partitioning: Partitioning::Snapshot,
    write_mode: WriteMode::Replace,
    // The order of the `dormant` report (query/reports/dormant.sql): it reads its rows as they
    // are stored, merging the scan's partitions instead of sorting, and the pages of accounts
    // seen since its cutoff (most of each risk level) are pruned by `days_since_last_seen`.
    sort_key: &["risk", "days_since_last_seen", "app", "workspace_id", "account_id"],
    descending: &["risk", "days_since_last_seen"],
    ordered_scan: true,
    version: 2,
    mass_change_guard: false,
};

static REVIEW_DECISIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("review_id", false),
        utf8("report", false),
        Field::new("review_as_of", DataType::Date32, false),
        int64("review_lake_version", false),
        utf8("review_run_id", true),
        utf8("source_file", false),
        utf8("file_sha256", false),
        int64("source_line", false),
        utf8("workspace_id", true),
        utf8("account_id", false),
        utf8("username", true),
        utf8("email", true),
        utf8("recommendation", true),
        utf8("decision", false),
        utf8("decided_by", false),
        utf8("note", true),
        timestamp("imported_at", false),
    ]))
});

static DEPROVISION_ACTIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("entry_id", false),
        utf8("plan_id", false),
        utf8("account_id", false),
        utf8("workspace_id", true),
        utf8("username", true),
        utf8("email", true),
        utf8("action", false),
        utf8("phase", false),
        utf8("outcome", true),
        utf8("detail", true),
        int64("http_status", true),
        utf8("slack_error", true),
        utf8("call", true),
        utf8("evidence", true),
        utf8("approvers", true),
        utf8("actor", true),
        utf8("reason", true),
        timestamp("at", false),
    ]))
});

/// Reviewers' decisions read back from a filled-in `review` export (`lastseen review import`).
pub static REVIEW_DECISIONS: TableDef = TableDef {
    name: "review_decisions",
    description: "Access-review decisions imported from filled-in review exports: who, what, file, line, review",
    schema: &REVIEW_DECISIONS_SCHEMA,
    partitioning: Partitioning::EventDate { column: "imported_at" },
    // Importing the same file again adds nothing.
    write_mode: WriteMode::Merge { key: &["file_sha256", "account_id"], latest_by: "imported_at" },
    sort_key: &["review_id", "account_id"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// The deprovisioning journal: one row per intent and per outcome, never rewritten in meaning.
pub static DEPROVISION_ACTIONS: TableDef = TableDef {
    name: "deprovision_actions",
    description: "Deprovisioning journal: intent and outcome of every SCIM (de)activation, by plan and account",
    schema: &DEPROVISION_ACTIONS_SCHEMA,
    partitioning: Partitioning::EventDate { column: "at" },
    // Each entry has its own id: merging keeps every entry (append-only).
    write_mode: WriteMode::Merge { key: &["entry_id"], latest_by: "at" },
    sort_key: &["plan_id", "account_id", "at"],
    descending: &[],
    ordered_scan: false,
    version: 1,
    mass_change_guard: false,
};

/// Every table, in the order `lastseen tables` lists them.
pub static TABLES: &[&TableDef] = &[
    &SLACK_USERS,
    &SLACK_ACCESS_LOGS,
    &LAST_SEEN,
    &SLACK_WORKSPACES,
    &SLACK_BILLING,
    &SLACK_USERGROUPS,
    &SLACK_USERGROUP_MEMBERS,
    &SLACK_SCIM_USERS,
    &SLACK_SCIM_GROUPS,
    &SLACK_MEMBER_ANALYTICS,
    &SLACK_MEMBER_ANALYTICS_QUARANTINE,
    &SLACK_AUDIT_LOGINS,
    &OKTA_USERS,
    &OKTA_LOG_EVENTS,
    &IDENTITIES,
    &IDENTITIES_QUARANTINE,
    &CORRELATION_OVERRIDES,
    &ACCOUNTS,
    &ACCOUNT_IDENTITY,
    &ACTIVITY_DAILY,
    &ACCOUNT_REPORT,
    &USAGE_DAILY,
    &SSO_LAST_SEEN,
    &REVIEW_DECISIONS,
    &DEPROVISION_ACTIONS,
];

pub fn table(name: &str) -> crate::Result<&'static TableDef> {
    TABLES.iter().copied().find(|t| t.name == name).ok_or_else(|| crate::LakeError::UnknownTable(name.to_string()))
}

pub fn table_names() -> Vec<&'static str> {
    TABLES.iter().map(|t| t.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_and_merge_keys_are_columns() {
        for t in TABLES {
            let schema = t.schema();
            for k in t.sort_key {
                assert!(schema.index_of(k).is_ok(), "{}: sort key {k}", t.name);
            }
            for k in t.descending {
                assert!(t.sort_key.contains(k), "{}: descending {k} is not in the sort key", t.name);
            }
            if let WriteMode::Merge { key, latest_by } = t.write_mode {
                for k in key.iter().chain([&latest_by]) {
                    assert!(schema.index_of(k).is_ok(), "{}: merge key {k}", t.name);
                }
            }
            if let Partitioning::EventDate { column } = t.partitioning {
                assert!(matches!(
                    schema.field_with_name(column).unwrap().data_type(),
                    DataType::Timestamp(_, _) | DataType::Date32
                ));
            }
            assert!(schema.index_of(PARTITION_COLUMN).is_err(), "{}: dt must not be a file column", t.name);
            assert!(
                !t.mass_change_guard || t.partitioning == Partitioning::Snapshot,
                "{}: the mass-change guard compares snapshots",
                t.name
            );
        }
    }

    #[test]
    fn unknown_table_lists_known_ones() {
        let err = table("nope").unwrap_err().to_string();
        assert!(err.contains("slack_users") && err.contains("nope"), "{err}");
    }
}
