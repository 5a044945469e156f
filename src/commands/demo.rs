//! `lastseen demo`: the embedded default. Starts the Slack simulator on a loopback port with a
//! seeded organisation (and with `--okta` an Okta organisation of the same people on another),
//! runs the daily pipeline for several days into a local folder, and prints the dormant report.
//! No token, no network.

use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use lastseen_config::Config;
use lastseen_okta_sim::{OktaOrgSpec, OktaSimConfig, OktaSimulator};
use lastseen_query::ReportParams;
use lastseen_slack_sim::{OrgSpec, Plan, RateLimits, SimConfig, Simulator};
use secrecy::SecretString;

use crate::cli::{DemoArgs, GlobalArgs};
use lastseen::pipeline::{DayRun, run_day};

/// The simulator enforces Slack's tiers scaled by this factor, and the client paces to the same
/// scaled tiers, so the demo shows real pacing without waiting minutes per page.
const RATE_SCALE: u32 = 60;

pub async fn run(g: &GlobalArgs, args: &DemoArgs) -> anyhow::Result<u8> {
    let today = Utc::now().date_naive();
    let first = today - chrono::Duration::days(i64::from(args.runs) - 1);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out).with_context(|| format!("resolving {}", args.out.display()))?;

    tracing::info!(
        users = args.users,
        seed = args.seed,
        history_days = args.history_days,
        "starting the Slack simulator"
    );
    let spec = OrgSpec::new(args.seed, args.users, Plan::Pro, today, args.history_days);
    let sim = Simulator::start(
        SimConfig {
            org: spec,
            rate_limits: RateLimits::Tiers { scale: f64::from(RATE_SCALE) },
            faults: Vec::new(),
            conditions: Default::default(),
        },
        "127.0.0.1:0".parse().expect("valid socket address"),
    )
    .await
    .context("starting the Slack simulator")?;

    // With --okta, the organisation's IdP: the same people (HR records become Okta users, linked
    // to their Slack accounts by email), with its own seeded sign-ins and SSOs.
    let okta = if args.okta {
        tracing::info!("starting the Okta simulator");
        let spec = OktaOrgSpec::from_slack(sim.org(), args.seed);
        let okta = OktaSimulator::start(OktaSimConfig::new(spec), "127.0.0.1:0".parse().expect("valid socket address"))
            .await
            .context("starting the Okta simulator")?;
        Some(okta)
    } else {
        None
    };

    // The simulator's HR export, as an identity-governance team would drop it next to the lake.
    let inputs = out.join("_inputs");
    std::fs::create_dir_all(&inputs).with_context(|| format!("creating {}", inputs.display()))?;
    let identities_path = inputs.join("identities.csv");
    std::fs::write(&identities_path, sim.org().identities_csv())
        .with_context(|| format!("writing {}", identities_path.display()))?;

    // The demo's configuration is built here, not read from lastseen.toml or LASTSEEN_* variables,
    // so a configured production lake can never receive simulated data.
    let mut toml = format!(
        "[storage]\nurl = {url:?}\n\n[slack]\napi_url = {api:?}\n\n[slack.rate_limits]\ntier1 = {t1}\ntier2 = {t2}\ntier3 = {t3}\ntier4 = {t4}\n\n[reports]\ndormant_days = {days}\n\n\
         [identities]\nurl = {ids:?}\n\n[correlation.domain_aliases]\n{alias:?} = {domain:?}\n",
        url = out.display().to_string(),
        api = sim.api_url(),
        t1 = RATE_SCALE,
        t2 = 20 * RATE_SCALE,
        t3 = 50 * RATE_SCALE,
        t4 = 100 * RATE_SCALE,
        days = args.dormant_days,
        ids = identities_path.display().to_string(),
        alias = sim.org().alias_email_domain(),
        domain = sim.org().email_domain(),
    );
    if let Some(okta) = &okta {
        // An http org URL is accepted on loopback only; the first run reads Okta's whole 90 days.
        toml.push_str(&format!("\n[okta]\norg_url = {:?}\n", okta.org_url()));
    }
    let cfg =
        Config::from_toml_str(&toml, "demo settings", std::iter::empty()).map_err(crate::exit::ConfigProblem::from)?;
    let lake = super::open_lake(&cfg)?;

    let bar = if crate::logging::progress_enabled(g) {
        let pb = indicatif::ProgressBar::new(u64::from(args.runs));
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} day {pos}/{len} {wide_msg}")
                .expect("valid progress template"),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        Some(pb)
    } else {
        None
    };
    let mut day = first;
    while day <= today {
        // Each daily run happens at the end of its day, as a nightly job would see it.
        let day_end = day.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("valid time")).and_utc();
        sim.set_now(day_end);
        if let Some(pb) = &bar {
            pb.set_message(format!("{day}"));
        }
        let mut apps: Vec<Box<dyn lastseen_ingest::source::App>> = vec![
            lastseen_ingest::apps::slack(&cfg, SecretString::from(sim.user_token().to_string()))
                .context("setting up the simulated Slack")?,
        ];
        if let (Some(okta), Some(okta_cfg)) = (&okta, &cfg.okta) {
            okta.set_now(day_end);
            // The System Log windows end at the simulated day's end, not the wall clock's now.
            let clock: lastseen_ingest::okta::Clock = std::sync::Arc::new(move || day_end);
            let app = lastseen_ingest::okta::OktaApp::new(okta_cfg, SecretString::from(okta.api_token().to_owned()))
                .context("setting up the simulated Okta")?
                .with_clock(clock);
            apps.push(Box::new(app));
        }
        let outcome = run_day(
            DayRun { config: &cfg, lake: &lake, date: day, dry_run: false, progress: bar.clone(), cancel: None },
            apps,
        )
        .await
        .with_context(|| format!("demo run for {day}"))?;
        let m = &outcome.manifest;
        tracing::info!(
            date = %day,
            users = m.tables.get("slack_users").map_or(0, |t| t.rows),
            access_log_rows = m.sources.get("access_logs").map_or(0, |s| s.rows),
            okta_log_events = m.sources.get("okta_logs").map_or(0, |s| s.rows),
            api_calls = m.sources.values().map(|s| s.calls).sum::<u64>(),
            "day committed"
        );
        if let Some(pb) = &bar {
            pb.inc(1);
        }
        day += chrono::Duration::days(1);
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    sim.shutdown().await;
    let okta_ran = okta.is_some();
    if let Some(okta) = okta {
        okta.shutdown().await;
    }

    let engine = lastseen_query::QueryEngine::open(&lake).await?;
    let params = ReportParams { as_of: Some(today), days: Some(args.dormant_days), ..Default::default() };
    let report = lastseen_query::reports::find("dormant")?.run(&engine, &params).await?;
    let total: usize = engine
        .sql(&format!("SELECT count(*) FROM slack_users WHERE dt = DATE '{today}'"))
        .await?
        .first()
        .map_or(0, |b| {
            datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(b.column(0))
                .value(0) as usize
        });
    let rows = report.data.rows();
    if okta_ran {
        let live = counts(
            &engine,
            &format!(
                "SELECT app, count(*) FROM accounts WHERE dt = DATE '{today}' AND status <> 'deactivated' GROUP BY app"
            ),
        )
        .await?;
        // Per app, from the report's own rows (its `app` column), so the figures add up to it.
        let mut dormant: std::collections::BTreeMap<String, i64> = Default::default();
        for b in &report.data.batches {
            let app = datafusion::arrow::compute::cast(
                b.column(b.schema().index_of("app")?),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )?;
            for a in datafusion::arrow::array::AsArray::as_string::<i32>(&app).iter().flatten() {
                *dormant.entry(a.to_owned()).or_default() += 1;
            }
        }
        let by_app: Vec<String> =
            live.iter().map(|(app, n)| format!("{app}: {} of {n}", dormant.get(app).copied().unwrap_or(0))).collect();
        outln!(
            "\nDormant accounts as of {today}, Slack and Okta: {rows} live accounts show no activity in the last {} days (or never) ({}).",
            args.dormant_days,
            by_app.join(", ")
        );
        let via_okta = counts(
            &engine,
            &format!(
                "SELECT app, count(*) FROM last_seen WHERE dt = DATE '{today}' AND last_seen_source = 'okta_sso' GROUP BY app"
            ),
        )
        .await?;
        let via_okta: i64 = via_okta.iter().filter(|(a, _)| a == "slack").map(|(_, n)| n).sum();
        outln!(
            "Okta's sign-ins into Slack are the latest evidence of use for {via_okta} Slack accounts (the System Log's `user.authentication.sso`).\n"
        );
    } else {
        outln!(
            "\nDormant Slack accounts as of {today}: {rows} of {total} accounts show no activity in the last {} days (or never).\n",
            args.dormant_days
        );
    }
    let owners = counts(
        &engine,
        &format!(
            "SELECT match_status, count(*) AS n FROM account_identity AS i JOIN accounts AS a \
             ON a.dt = i.dt AND a.account_id = i.account_id \
             WHERE i.dt = DATE '{today}' AND a.status <> 'deactivated' GROUP BY match_status"
        ),
    )
    .await?;
    let summary: Vec<String> = owners.iter().map(|(status, n)| format!("{n} {status}")).collect();
    if !summary.is_empty() {
        outln!(
            "Owners of live accounts (from the HR export in {}): {}.\n",
            identities_path.display(),
            summary.join(", ")
        );
    }
    let shown = head(&report.data.batches, args.limit)?;
    lastseen_query::format::write(&shown, lastseen_query::OutputFormat::Table, &mut std::io::stdout())?;
    if rows > args.limit {
        outln!("… and {} more.", rows - args.limit);
    }
    let lake_arg = out.display();
    outln!("\nThe lake is in {lake_arg} ({} daily runs). Try:", args.runs);
    outln!("  lastseen report dormant --lake {lake_arg} --days {} --format csv", args.dormant_days);
    outln!("  lastseen sql --lake {lake_arg} \"SELECT dt, count(*) FROM slack_access_logs GROUP BY dt ORDER BY dt\"");
    if okta_ran {
        outln!("  lastseen report identities --lake {lake_arg}   # people dormant in every app, or only in some");
        outln!(
            "  lastseen sql --lake {lake_arg} \"SELECT app_instance_label, count(*) AS people FROM sso_last_seen WHERE dt = DATE '{today}' GROUP BY 1\""
        );
    }
    Ok(crate::exit::OK)
}

/// `(key, count)` rows of a two-column query (a key of any string type and a count), sorted by key.
async fn counts(engine: &lastseen_query::QueryEngine, sql: &str) -> anyhow::Result<Vec<(String, i64)>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    let mut out = Vec::new();
    for b in engine.sql(sql).await? {
        let app = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let app = app.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((app.value(i).to_owned(), n.value(i)));
        }
    }
    out.sort();
    Ok(out)
}

/// The first `limit` rows, showing the columns a person scans first.
fn head(batches: &[RecordBatch], limit: usize) -> anyhow::Result<Vec<RecordBatch>> {
    const COLUMNS: [&str; 7] =
        ["account_id", "username", "account_type", "last_seen_at", "days_since_last_seen", "state", "email"];
    let mut out = Vec::new();
    let mut left = limit;
    for b in batches {
        if left == 0 {
            break;
        }
        let idx: Vec<usize> = COLUMNS.iter().filter_map(|c| b.schema().index_of(c).ok()).collect();
        let b = b.project(&idx)?;
        let take = left.min(b.num_rows());
        out.push(b.slice(0, take));
        left -= take;
    }
    Ok(out)
}
