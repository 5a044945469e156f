-- usage: daily, weekly and monthly active accounts per day, for the whole organisation, per
-- workspace and per department, with the billable seats of each collected day.
--
-- The population is the accounts of the as-of snapshot after the filters below (deactivated
-- accounts included: they were real users on the days they were active). An account is active
-- on a day when `activity_daily` says so (any evidence source: access logs, analytics, audit
-- logins, Grid last-active). For each day D of the trend:
--   dau  accounts active on D
--   wau  accounts active on at least one day of D-6 .. D
--   mau  accounts active on at least one day of D-29 .. D
--
-- Parameters (bound by `lastseen report usage`):
--   $as_of           DATE     the last day of the trend (--as-of; default: the newest snapshot)
--   $cutoff          DATE     as_of - days (--days): the trend covers cutoff+1 .. as_of
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $department      VARCHAR  only accounts whose owner identity is in this department; NULL = all
--   $exclude_guests  BOOLEAN  leave out guests
--   $include_bots    BOOLEAN  keep bots, apps and Slackbot (they never show activity in Slack's
--                             access logs, so they only change `accounts`)
--
-- Columns:
--   app              the apps whose accounts the report counts, comma-separated ('(none)' when
--                    it counts none); --app counts one app's
--   day              the day D
--   workspace_id     the accounts' home workspace; '(all)' on the organisation-wide and the
--                    per-department rows. On Enterprise Grid an account counts in its home
--                    workspace only, so per-workspace rows add up to the organisation's
--   department       the owner identity's department, '(none)' for accounts without one (guests,
--                    orphans, no identity export); '(all)' on the organisation and workspace rows
--   accounts         accounts of the population in this group
--   dau, wau, mau    as above
--   billable_seats   accounts of the group that Slack billed in D's own users snapshot
--                    (`accounts.billable`); NULL when no run collected D or the plan has no billing
--   collected        a daily run collected D. Access logs aggregate by (ip, user agent) and
--                    keep only the latest use of each, so a day before the first run only shows
--                    the accounts whose last use of some client fell on it: dau of such days is a
--                    lower bound; wau and mau are exact from 29 days after the first run
--
-- Rows: for every day, the organisation ('(all)', '(all)') first, then one row per workspace,
-- then one per department.
--
-- Reads the run's daily rollup `usage_daily` (per day, the accounts counted at the grain the
-- filters need), ≤ days × groups rows. The counts are the day's own accounts, so they equal the
-- definition above only when the population did not change during the trend; the `@guard`
-- query checks that, and when it does not hold (or a day has no rollup: before the first run,
-- a missed day, a lake written before rollups existed) lastseen runs the same report over the
-- raw tables instead (query/reports/oracle/usage.sql): same rows, slower.
--
-- @title     Active accounts per day (DAU, WAU, MAU)
-- @snapshots last_seen
-- @rollup    usage_daily
-- @param     as_of           The last day of the trend (default: the newest snapshot).
-- @param     days            The number of days of the trend, ending on the as-of day (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     department      Only accounts whose owner identity is in this department (case-insensitive); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
-- @param     include_bots    Keep bots, apps and Slackbot (left out by default).
--
WITH daily AS (
    -- The rollup rows of the trend's days, filtered at their grain.
    SELECT CAST(dt AS INT) AS n, app, workspace_id, COALESCE(department, '(none)') AS department,
           accounts, dau, wau, mau, billable_seats, billing_known
    FROM usage_daily
    WHERE dt > CAST($cutoff AS DATE) AND dt <= CAST($as_of AS DATE)
      AND ($include_bots OR account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot'))
      AND NOT ($exclude_guests AND account_type IN ('guest_multi', 'guest_single'))
      AND ($app IS NULL OR app = $app)
      AND ($workspace IS NULL OR workspace_id = $workspace
           OR COALESCE(array_has(workspace_ids, $workspace), false))
      AND ($department IS NULL OR lower(department) = lower($department))
),
days AS (
    -- Every day of the trend, as a day number (days since 1970-01-01).
    SELECT CAST(CAST($cutoff AS DATE) AS INT) + k AS n
    FROM unnest(range(1, CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST($cutoff AS DATE) AS INT) + 1)) AS t(k)
),
counts AS (
    -- Per day: the organisation, each workspace, each department.
    SELECT
        n,
        CASE WHEN grouping(workspace_id) = 1 THEN '(all)' ELSE workspace_id END  AS workspace_id,
        CASE WHEN grouping(department) = 1 THEN '(all)' ELSE department END      AS department,
        sum(accounts)                                                            AS accounts,
        sum(dau)                                                                 AS dau,
        sum(wau)                                                                 AS wau,
        sum(mau)                                                                 AS mau,
        sum(billable_seats)                                                      AS billable_seats,
        sum(billing_known)                                                       AS billing_known
    FROM daily
    GROUP BY GROUPING SETS ((n), (n, workspace_id), (n, department))
),
groups AS (
    -- The population is the as-of day's accounts (the guard below has checked that every day
    -- of the trend counted the same accounts in the same groups). The organisation's row is
    -- there even when the filters leave no account (0 accounts), as in the oracle.
    SELECT '(all)' AS workspace_id, '(all)' AS department,
           COALESCE(max(CASE WHEN workspace_id = '(all)' AND department = '(all)' THEN accounts END), 0) AS accounts
    FROM counts
    WHERE n = CAST(CAST($as_of AS DATE) AS INT)
    UNION ALL
    SELECT workspace_id, department, accounts
    FROM counts
    WHERE n = CAST(CAST($as_of AS DATE) AS INT) AND NOT (workspace_id = '(all)' AND department = '(all)')
),
apps AS (
    -- The apps of the population (the as-of day's accounts).
    SELECT COALESCE(array_to_string(array_sort(array_agg(DISTINCT app)), ','), '(none)') AS app
    FROM daily
    WHERE n = CAST(CAST($as_of AS DATE) AS INT)
),
collected AS (
    -- Days a run derived (every day of the trend, when the rollup answers).
    SELECT DISTINCT CAST(dt AS INT) AS n
    FROM usage_daily
    WHERE dt > CAST($cutoff AS DATE) AND dt <= CAST($as_of AS DATE)
)
SELECT
    ap.app,
    CAST(dy.n AS DATE)                                              AS day,
    g.workspace_id,
    g.department,
    g.accounts,
    COALESCE(c.dau, 0)                                              AS dau,
    COALESCE(c.wau, 0)                                              AS wau,
    COALESCE(c.mau, 0)                                              AS mau,
    CASE WHEN c.billing_known > 0 THEN c.billable_seats END         AS billable_seats,
    k.n IS NOT NULL                                                 AS collected
FROM days AS dy
CROSS JOIN apps AS ap
CROSS JOIN groups AS g
LEFT JOIN counts AS c
       ON c.n = dy.n AND c.workspace_id = g.workspace_id AND c.department = g.department
LEFT JOIN collected AS k ON k.n = dy.n
ORDER BY day, g.workspace_id = '(all)' DESC, g.workspace_id, g.department = '(all)' DESC, g.department;

-- @guard
-- The rollup answers only when the as-of day's accounts are the accounts of every day of the
-- trend, in the same groups: each day has a rollup, counts as many accounts as the as-of day,
-- and no account changed workspace, memberships, department or type (or appeared) after the
-- first day of the trend, and every rollup row names its app (a day derived before usage_daily
-- had an `app` column has none). Otherwise lastseen runs query/reports/oracle/usage.sql.
SELECT
    count(DISTINCT dt) = CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST($cutoff AS DATE) AS INT)
    AND min(total) = max(total) AND min(total) > 0
    AND max(newest_key) <= CAST(CAST(CAST($cutoff AS DATE) AS INT) + 1 AS DATE)
    AND sum(unnamed) = 0                                                                AS ok
FROM (
    SELECT dt, sum(accounts) AS total, count(*) - count(app) AS unnamed,
           max(CASE WHEN dt = CAST($as_of AS DATE) THEN key_since END) AS newest_key
    FROM usage_daily
    WHERE dt > CAST($cutoff AS DATE) AND dt <= CAST($as_of AS DATE)
    GROUP BY dt
) AS per_day

-- @chart line Daily, weekly and monthly active accounts (organisation)
SELECT day, dau, wau, mau
FROM report
WHERE workspace_id = '(all)' AND department = '(all)'
ORDER BY day;

-- @chart bar Monthly active accounts by department (last day)
SELECT department, mau
FROM report
WHERE workspace_id = '(all)' AND department <> '(all)'
  AND day = (SELECT max(day) FROM report)
ORDER BY mau DESC, department;
