//! The command line: global options and one subcommand per file under `src/commands/`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// lastseen tells identity-governance teams which SaaS accounts are used, by whom, and which are
/// dormant. It pulls Slack account and access data into date-partitioned Parquet (a local folder
/// or S3/GCS/Azure) and answers with SQL and reports.
///
/// Exit codes: 0 ok, 1 failed, 2 usage error, 3 run committed but a source was skipped,
/// 78 bad configuration.
#[derive(Debug, Parser)]
#[command(name = "lastseen", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML). Default: ./lastseen.toml if it exists, else built-in defaults.
    /// Any key can be overridden by LASTSEEN_<SECTION>__<KEY> environment variables.
    #[arg(long, short = 'c', global = true, env = "LASTSEEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Lake location, overriding `storage.url`: a folder, file:///…, s3://bucket/prefix,
    /// gs://…, az://… or memory://.
    #[arg(long, global = true, env = "LASTSEEN_LAKE", value_name = "URL")]
    pub lake: Option<String>,

    /// Log format: `human`, `json` (one object per line), or `auto` (human on a terminal, JSON
    /// otherwise). Logs go to stderr; results go to stdout.
    #[arg(long, global = true, env = "LASTSEEN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// More log detail (-v debug, -vv trace). RUST_LOG, when set, takes precedence.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors; no progress bars.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on a simulated Slack organisation into a local folder, then print
    /// the dormant report. Needs no token and no network.
    Demo(DemoArgs),
    /// One daily run: collect from Slack, commit to the lake, derive last_seen. What cron calls.
    Run(RunArgs),
    /// Collect past days from the sources Slack keeps history for (access_logs, analytics,
    /// audit), merge them into the lake, then re-derive the newest last_seen snapshot.
    ///
    /// What Slack keeps: access_logs (team.accessLogs, per workspace) as far back as the
    /// workspace's access history, on paid plans; analytics (admin.analytics.getFile, one member
    /// file per day) 13 months, each day published a day or two later, on Business+ and
    /// Enterprise Grid; audit (Audit Logs API login events) from the organisation's start, none
    /// before March 2018, on Enterprise Grid with an org owner's org-level token.
    ///
    /// Days Slack does not have are a warning naming them (exit 3). A source the plan, scopes
    /// or token cannot serve is skipped: with a warning and exit 3 when `slack.sources` lists
    /// it (and for access_logs), quietly with `sources = "auto"`. The rest is committed either
    /// way. Re-running a window adds nothing, and no watermark moves back. Other sources say
    /// they cannot be backfilled.
    Backfill(BackfillArgs),
    /// Run the daily job on the `[daemon]` schedule: catches up missed days on start, never
    /// runs twice at once, serves /healthz and /metrics, stops cleanly on SIGTERM or Ctrl-C.
    Daemon(DaemonArgs),
    /// Serve the lake over the Postgres wire protocol, read-only, for psql, DBeaver, Metabase,
    /// Grafana and Python: the newest committed version (picked up without a restart), the
    /// report views (report_dormant, …) and enough of pg_catalog for schema browsers. TLS is
    /// required off loopback, logins are SCRAM-SHA-256 for the `[[serve.users]]`, every query
    /// has a memory limit and a timeout and is logged with its user. Stops on SIGTERM/Ctrl-C.
    Serve(ServeArgs),
    /// Run SQL over the lake's tables (`lastseen tables` lists them), or open an interactive
    /// SQL shell when no query is given.
    Sql(SqlArgs),
    /// Reports over the lake (SQL files with parameters), in any export format with provenance.
    Report(ReportArgs),
    /// Check the configuration without touching the network; exits 78 naming a bad field.
    Validate,
    /// Check the Slack token: who it is, its scopes and workspaces, and for every source whether
    /// it works or why not (missing scope, plan, token type). Exit 3 when a configured source
    /// would be skipped.
    Check,
    /// Per table: partitions, first and last day, rows, bytes and files; then the last
    /// successful run and its warnings. Reads only the commit log and run manifests.
    Tables(TablesArgs),
    /// Delete what no reader can still need: data files superseded longer ago than
    /// `lake.keep_superseded` (default 7 days), files of runs that died before publishing once
    /// that window has passed, their staging files, and old log versions. Also runs after each
    /// daily run. Without --apply it only lists what it would delete.
    Vacuum(VacuumArgs),
    /// Serve the Slack simulator on its own, for experiments: prints its base URLs and a token
    /// per kind, then serves until Ctrl-C or SIGTERM.
    Simulate(SimulateArgs),
    /// Access-review decisions: `review import FILE` reads a filled-in `report review` export
    /// (CSV with its .provenance.json, or XLSX) into the `review_decisions` table.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Deactivate accounts through SCIM the safe way: plan (guards re-read live), approve (hash,
    /// approver, expiry), apply (dry-run unless --execute; journaled, resumable), undo.
    #[command(subcommand)]
    Deprovision(DeprovisionCommand),
    /// One account: `account disable|enable ACCOUNT --reason TEXT` through the same guards and
    /// journal as a plan (dry-run unless --execute).
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Read reviewers' decisions from a filled-in review export and commit them to the lake.
    Import(ReviewImportArgs),
}

#[derive(Debug, Args)]
pub struct ReviewImportArgs {
    /// The filled-in export: review.csv (with review.csv.provenance.json next to it) or review.xlsx.
    pub file: PathBuf,
    /// Who decided, for rows whose `decided_by` is empty.
    #[arg(long, value_name = "NAME")]
    pub reviewer: Option<String>,
    /// Commit the usable rows even if some cannot be used (they are listed either way; exit 3).
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Debug, Subcommand)]
pub enum DeprovisionCommand {
    /// Write a plan: per account the SCIM call, the evidence and each guard's live verdict.
    /// Writes nothing to Slack.
    Plan(DeprovisionPlanArgs),
    /// Approve a plan (or add a second approver to an approved plan).
    Approve(DeprovisionApproveArgs),
    /// Apply an approved plan. Dry-run unless --execute.
    Apply(DeprovisionApplyArgs),
    /// Re-activate what a plan deactivated (per the journal). Dry-run unless --execute.
    Undo(DeprovisionApplyArgs),
}

#[derive(Debug, Args)]
pub struct DeprovisionPlanArgs {
    /// Where to write the plan (JSON).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// The review whose `revoke` decisions to plan (its review_id); default: the newest imported.
    #[arg(long, value_name = "ID", conflicts_with = "dormant_days")]
    pub review: Option<String>,
    /// Plan from the dormant report (no evidence of use in N days) instead of review decisions.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub dormant_days: Option<u32>,
    /// Let owners (never the primary owner) and admins into the plan; they then need two approvers.
    #[arg(long)]
    pub allow_privileged: bool,
    /// The cap: at most this many deactivations per plan.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub max_actions: usize,
    /// The cap: at most this share (0..1) of the active accounts per plan.
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    pub max_share: f64,
}

#[derive(Debug, Args)]
pub struct DeprovisionApproveArgs {
    /// The plan (or an approved plan, to add a second approver).
    pub plan: PathBuf,
    /// Who approves.
    #[arg(long, value_name = "NAME")]
    pub approver: String,
    /// Hours the approval stays valid.
    #[arg(long, default_value_t = 72, value_name = "HOURS", value_parser = clap::value_parser!(u64).range(1..=720))]
    pub valid_hours: u64,
    /// Where to write the approved plan; default: PLAN with `.approved.json`.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeprovisionApplyArgs {
    /// The approved plan.
    pub approved: PathBuf,
    /// Really call Slack and journal; without it, a dry-run that only reads.
    #[arg(long)]
    pub execute: bool,
    /// Apply although the lake has newer evidence than the plan (the guards re-check it).
    #[arg(long)]
    pub allow_stale: bool,
    /// Write budget per minute (Slack allows 180/min per operation and 600/min org-wide, shared
    /// with the IdP).
    #[arg(long, default_value_t = 60, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=150))]
    pub rate: u32,
    /// Who runs it, for the journal; default: $USER.
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Deactivate one account (SCIM PATCH active:false).
    Disable(AccountArgs),
    /// Re-activate one account (SCIM PATCH active:true).
    Enable(AccountArgs),
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The Slack user id (U… or W…).
    pub account: String,
    /// Why: recorded in the journal.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Really call Slack and journal; without it, a dry-run.
    #[arg(long)]
    pub execute: bool,
    /// Allow an owner (never the primary owner) or admin.
    #[arg(long)]
    pub allow_privileged: bool,
    /// Who runs it, for the journal; default: $USER.
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Loopback port to listen on; 0 picks a free one.
    #[arg(long, env = "LASTSEEN_SIM_PORT", default_value_t = 0)]
    pub port: u16,
    /// Slack plan: free, pro, business_plus or enterprise (Grid).
    #[arg(long, env = "LASTSEEN_SIM_PLAN", default_value = "enterprise")]
    pub plan: String,
    /// Accounts in the simulated organisation.
    #[arg(long, env = "LASTSEEN_SIM_USERS", default_value_t = 2000)]
    pub users: usize,
    /// Seed of the organisation (same seed, same organisation).
    #[arg(long, env = "LASTSEEN_SIM_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Days of activity history ending today.
    #[arg(long, env = "LASTSEEN_SIM_HISTORY_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub history_days: u32,
    /// Workspaces (Enterprise Grid only; other plans have one).
    #[arg(long, env = "LASTSEEN_SIM_WORKSPACES", default_value_t = 3)]
    pub workspaces: usize,
    /// Rate limits at Slack's tiers times this factor; 0 turns rate limiting off.
    #[arg(long, env = "LASTSEEN_SIM_RATE_SCALE", default_value_t = 1.0)]
    pub rate_scale: f64,
    /// Fault rules to inject, as a TOML (`[[faults]]`) or JSON file.
    #[arg(long, env = "LASTSEEN_SIM_FAULTS", value_name = "FILE")]
    pub faults: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder to write the demo lake into (created if missing; re-running replaces its days).
    #[arg(long, env = "LASTSEEN_DEMO_OUT", default_value = "./lastseen-data", value_name = "DIR")]
    pub out: PathBuf,
    /// Accounts in the simulated organisation.
    #[arg(long, env = "LASTSEEN_DEMO_USERS", default_value_t = 2000)]
    pub users: usize,
    /// Daily runs to perform, ending today.
    #[arg(long, env = "LASTSEEN_DEMO_RUNS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub runs: u32,
    /// Days of activity history the simulated organisation has before the first run.
    #[arg(long, env = "LASTSEEN_DEMO_HISTORY_DAYS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub history_days: u32,
    /// Seed of the simulated organisation (same seed, same organisation).
    #[arg(long, env = "LASTSEEN_DEMO_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Dormancy threshold for the printed report, in days.
    #[arg(long, env = "LASTSEEN_DEMO_DORMANT_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub dormant_days: u32,
    /// Rows of the report to print (the rest are summarised).
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Also simulate Okta: an Okta organisation of the same people (users of every status and
    /// their System Log, with sign-ins and SSO into Slack and other apps) on a second loopback
    /// port, collected by the same daily runs as a second app. Its SSO into Slack counts as use
    /// of the Slack account; the report lists dormant accounts of both apps.
    #[arg(long, env = "LASTSEEN_DEMO_OKTA", value_parser = clap::builder::BoolishValueParser::new())]
    pub okta: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The day to collect (UTC), YYYY-MM-DD. Default: today (UTC). A past day is collected as
    /// far as Slack still shows it (access logs up to the end of that day); a day after today
    /// is a usage error (exit 2).
    #[arg(long, env = "LASTSEEN_RUN_DATE", value_name = "DATE")]
    pub date: Option<NaiveDate>,
    /// Collect and count, but write nothing to the lake.
    #[arg(long, env = "LASTSEEN_DRY_RUN", value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,
    /// Publish the users snapshot (and use the identity export) even if it shrank by more than
    /// `lake.max_snapshot_drop` against the previous one (the mass-change guard), e.g. after a
    /// real mass offboarding; and apply a retention pass the `lake.retention_max_drop` guard
    /// refused.
    #[arg(long, env = "LASTSEEN_FORCE", value_parser = clap::builder::BoolishValueParser::new())]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First day of the window (UTC), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub from: NaiveDate,
    /// Last day of the window (UTC), YYYY-MM-DD; not after today.
    #[arg(long, value_name = "DATE")]
    pub to: NaiveDate,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address for /healthz and /metrics, overriding `daemon.listen` (port 0 picks a free port;
    /// the bound address is logged).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, overriding `serve.listen` (port 0 picks a free port; the bound
    /// address is printed). Off loopback it needs serve.tls_cert and serve.tls_key.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Delete the files; without it, only list them. The window is `lake.keep_superseded`
    /// (env LASTSEEN_LAKE__KEEP_SUPERSEDED, e.g. "2d"): a reader (a report, `lastseen sql`,
    /// another engine) still using a version older than that may fail once its files are gone.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct TablesArgs {
    /// `table` prints the tables, then the last successful run; `csv` and `json` print one row
    /// per table with the last run's columns (`last_run_*`) repeated on each.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL query. Tables: slack_users, slack_access_logs, last_seen (each with a `dt` DATE
    /// partition column; filter on it to read fewer files). Without a query and without --file,
    /// an interactive shell opens (statements end with `;`; `\d` lists tables, `\d TABLE`
    /// shows columns, `\q` quits); it also reads statements piped on stdin.
    #[arg(conflicts_with = "file")]
    pub query: Option<String>,
    /// Read the query from this file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The shell's history file. Default: $HOME/.lastseen_history.
    #[arg(long, env = "LASTSEEN_HISTORY", value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Read this lake version instead of the newest: the version an export's provenance names
    /// (`lake_version`), so a signed-off review can be re-run. Works while its files are kept
    /// (`lake.keep_superseded` after they were replaced); otherwise a clear error.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lake_version: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format. parquet and xlsx are binary: give --output or redirect stdout.
    #[arg(long, short = 'f', env = "LASTSEEN_FORMAT", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout. CSV, JSON and table output also get
    /// FILE.provenance.json (parameters, lake version, run id, SQL); Parquet, XLSX and HTML
    /// carry it inside. With `report --split-by`, the folder the files go to.
    #[arg(long, short = 'o', env = "LASTSEEN_OUTPUT", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Start CSV output with a UTF-8 byte-order mark (what Excel on Windows needs).
    #[arg(long, env = "LASTSEEN_BOM", value_parser = clap::builder::BoolishValueParser::new())]
    pub bom: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header; cells that a spreadsheet would run as formulas are prefixed with `'`.
    Csv,
    /// JSON lines, one object per row, every column present.
    Json,
    /// Parquet (zstd), the provenance in the file's key-value metadata.
    Parquet,
    /// Excel: styled, filterable, frozen header; text stays text; real dates; an "About" sheet.
    Xlsx,
    /// One self-contained HTML file: charts, the rows, and a provenance footer with the SQL.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitBy {
    /// The owner's manager (by e-mail, case-insensitive).
    Manager,
    /// The owner's department.
    Department,
    /// The account's workspace.
    Workspace,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report: dormant (unused accounts), usage (daily/weekly/monthly active accounts per
    /// day), seats (billable, active and reclaimable seats), orphans (accounts nobody owns),
    /// terminated (owner left, account still live), review (one row per account with its
    /// entitlements, evidence, owner and a keep/revoke/investigate recommendation). Reports are
    /// SQL files in query/reports/; `--list` shows each one's parameters, `--show-sql` its SQL.
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the reports with their parameters and charts.
    #[arg(long)]
    pub list: bool,
    /// Threshold in days: no evidence of use for this long = dormant (for `usage`, the days of
    /// the trend ending on the as-of day). Default: config `reports.dormant_days` (90; env
    /// LASTSEEN_REPORTS__DORMANT_DAYS), for the reports that take it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: Option<u32>,
    /// Snapshot day to report on, YYYY-MM-DD. Default: the newest.
    #[arg(long, env = "LASTSEEN_AS_OF", value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Only accounts of this app (the `app` column, e.g. slack). Default: every app.
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Only accounts of this workspace (team id, e.g. T0123ABCD): its home accounts and its
    /// members on Enterprise Grid.
    #[arg(long, value_name = "TEAM_ID")]
    pub workspace: Option<String>,
    /// Only accounts whose owner identity (HR export) is in this department (case-insensitive).
    #[arg(long, value_name = "NAME")]
    pub department: Option<String>,
    /// Leave out single- and multi-channel guests (included by default).
    #[arg(long)]
    pub exclude_guests: bool,
    /// Keep bots, apps and Slackbot (left out by default).
    #[arg(long)]
    pub include_bots: bool,
    /// Print the report's SQL instead of running it.
    #[arg(long)]
    pub show_sql: bool,
    /// Write one file per manager (or department, or workspace) into the folder given by
    /// --output, named after the manager's e-mail (rows without one go to no-manager.EXT), plus
    /// index.EXT listing each file with its account counts (and, for `review`, how many to
    /// revoke, investigate and keep). The folder must be new or empty; it appears complete or
    /// not at all. For the account reports: dormant, orphans, review, terminated.
    #[arg(long, value_enum, value_name = "BY", requires = "output")]
    pub split_by: Option<SplitBy>,
    /// Read this lake version instead of the newest: the version an export's provenance names
    /// (`lake_version`), so a signed-off review can be re-run. Works while its files are kept
    /// (`lake.keep_superseded` after they were replaced); otherwise a clear error.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lake_version: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}
