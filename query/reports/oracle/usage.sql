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
-- @title     Active accounts per day (DAU, WAU, MAU)
-- @snapshots last_seen
-- @param     as_of           The last day of the trend (default: the newest snapshot).
-- @param     days            The number of days of the trend, ending on the as-of day (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     department      Only accounts whose owner identity is in this department (case-insensitive); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
-- @param     include_bots    Keep bots, apps and Slackbot (left out by default).
--
WITH people AS (
    SELECT
        a.app,
        a.account_id,
        a.workspace_id,
        COALESCE(i.department, '(none)') AS department
    FROM accounts AS a
    LEFT JOIN account_identity AS ai
           ON ai.dt = a.dt AND ai.app = a.app AND ai.account_id = a.account_id
    LEFT JOIN identities AS i
           ON i.dt = a.dt AND i.identity_id = ai.identity_id
    WHERE a.dt = CAST($as_of AS DATE)
      AND ($include_bots OR a.account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot'))
      AND NOT ($exclude_guests AND a.account_type IN ('guest_multi', 'guest_single'))
      AND ($app IS NULL OR a.app = $app)
      AND ($workspace IS NULL OR a.workspace_id = $workspace
           OR COALESCE(array_has(a.workspace_ids, $workspace), false))
      AND ($department IS NULL OR lower(i.department) = lower($department))
),
days AS (
    -- Every day of the trend, as a day number (days since 1970-01-01).
    SELECT CAST(CAST($cutoff AS DATE) AS INT) + k AS n
    FROM unnest(range(1, CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST($cutoff AS DATE) AS INT) + 1)) AS t(k)
),
active AS (
    -- Active account-days that can count for a day of the trend (29 days of look-back for mau).
    SELECT d.app, d.account_id, CAST(d.dt AS INT) AS n
    FROM activity_daily AS d
    WHERE d.active
      AND d.dt > CAST(CAST(CAST($cutoff AS DATE) AS INT) - 29 AS DATE)
      AND d.dt <= CAST($as_of AS DATE)
),
spans AS (
    -- An account active on day n, and next on day next_n, was last active on n for every day
    -- from n to next_n - 1: it counts for dau on n, for wau up to n + 6 and for mau up to
    -- n + 29, within that span (a repeated account-day gets an empty span, so it counts once).
    -- Counted per group and span shape, so each account-day is read once, not once per day.
    SELECT
        p.workspace_id,
        p.department,
        s.n,
        least(COALESCE(s.next_n, s.n + 1), s.n + 1)                  AS dau_end,
        least(COALESCE(s.next_n, s.n + 7), s.n + 7)                  AS wau_end,
        least(COALESCE(s.next_n, s.n + 30), s.n + 30)                AS mau_end,
        count(*)                                                     AS accounts
    FROM people AS p                -- the smaller side first: DataFusion builds its hash table on it
    JOIN (
        SELECT app, account_id, n, lead(n) OVER (PARTITION BY app, account_id ORDER BY n) AS next_n
        FROM active
    ) AS s ON s.app = p.app AND s.account_id = p.account_id
    GROUP BY p.workspace_id, p.department, s.n,
             least(COALESCE(s.next_n, s.n + 1), s.n + 1),
             least(COALESCE(s.next_n, s.n + 7), s.n + 7),
             least(COALESCE(s.next_n, s.n + 30), s.n + 30)
),
changes AS (
    -- Each span adds its accounts on its first day and takes them away on the first day it no
    -- longer counts (dau_end, wau_end, mau_end), per day and group.
    SELECT
        CASE c.k WHEN 0 THEN s.n WHEN 1 THEN s.dau_end WHEN 2 THEN s.wau_end ELSE s.mau_end END AS n,
        CASE WHEN grouping(s.workspace_id) = 1 THEN '(all)' ELSE s.workspace_id END AS workspace_id,
        CASE WHEN grouping(s.department) = 1 THEN '(all)' ELSE s.department END     AS department,
        sum(CASE c.k WHEN 0 THEN s.accounts WHEN 1 THEN -s.accounts ELSE 0 END)     AS dau,
        sum(CASE c.k WHEN 0 THEN s.accounts WHEN 2 THEN -s.accounts ELSE 0 END)     AS wau,
        sum(CASE c.k WHEN 0 THEN s.accounts WHEN 3 THEN -s.accounts ELSE 0 END)     AS mau
    FROM spans AS s
    CROSS JOIN unnest(range(0, 4)) AS c(k)
    GROUP BY GROUPING SETS (
        (CASE c.k WHEN 0 THEN s.n WHEN 1 THEN s.dau_end WHEN 2 THEN s.wau_end ELSE s.mau_end END),
        (CASE c.k WHEN 0 THEN s.n WHEN 1 THEN s.dau_end WHEN 2 THEN s.wau_end ELSE s.mau_end END, s.workspace_id),
        (CASE c.k WHEN 0 THEN s.n WHEN 1 THEN s.dau_end WHEN 2 THEN s.wau_end ELSE s.mau_end END, s.department)
    )
),
active_counts AS (
    -- dau, wau and mau of day n: the running sum of the changes up to n.
    SELECT dy.n, c.workspace_id, c.department, sum(c.dau) AS dau, sum(c.wau) AS wau, sum(c.mau) AS mau
    FROM days AS dy
    JOIN changes AS c ON c.n <= dy.n
    GROUP BY dy.n, c.workspace_id, c.department
),
billed_groups AS (
    -- The billable flag in each collected day's own users snapshot, per day, workspace and
    -- department (the organisation and per-workspace/department totals are summed from these).
    SELECT
        CAST(b.dt AS INT)                                                        AS n,
        p.workspace_id,
        p.department,
        count(*) FILTER (WHERE b.billable)                                       AS billable_seats,
        count(b.billable)                                                        AS billing_known
    FROM people AS p                -- the smaller side first: DataFusion builds its hash table on it
    JOIN accounts AS b ON b.app = p.app AND b.account_id = p.account_id
    WHERE b.dt > CAST($cutoff AS DATE) AND b.dt <= CAST($as_of AS DATE)
    GROUP BY b.dt, p.workspace_id, p.department
),
billed AS (
    -- NULL count = unknown.
    SELECT
        n,
        CASE WHEN grouping(workspace_id) = 1 THEN '(all)' ELSE workspace_id END  AS workspace_id,
        CASE WHEN grouping(department) = 1 THEN '(all)' ELSE department END      AS department,
        sum(billable_seats)                                                      AS billable_seats,
        sum(billing_known)                                                       AS billing_known
    FROM billed_groups
    GROUP BY GROUPING SETS ((n), (n, workspace_id), (n, department))
),
collected AS (
    SELECT DISTINCT CAST(dt AS INT) AS n
    FROM accounts
    WHERE dt > CAST($cutoff AS DATE) AND dt <= CAST($as_of AS DATE)
),
apps AS (
    SELECT COALESCE(array_to_string(array_sort(array_agg(DISTINCT app)), ','), '(none)') AS app
    FROM people
),
groups AS (
    SELECT
        CASE WHEN grouping(workspace_id) = 1 THEN '(all)' ELSE workspace_id END  AS workspace_id,
        CASE WHEN grouping(department) = 1 THEN '(all)' ELSE department END      AS department,
        count(*)                                                                 AS accounts
    FROM people
    GROUP BY GROUPING SETS ((), (workspace_id), (department))
)
SELECT
    ap.app,
    CAST(dy.n AS DATE)                                              AS day,
    g.workspace_id,
    g.department,
    g.accounts,
    COALESCE(a.dau, 0)                                              AS dau,
    COALESCE(a.wau, 0)                                              AS wau,
    COALESCE(a.mau, 0)                                              AS mau,
    CASE WHEN b.billing_known > 0 THEN b.billable_seats END         AS billable_seats,
    c.n IS NOT NULL                                                 AS collected
FROM days AS dy
CROSS JOIN apps AS ap
CROSS JOIN groups AS g
LEFT JOIN active_counts AS a
       ON a.n = dy.n AND a.workspace_id = g.workspace_id AND a.department = g.department
LEFT JOIN billed AS b
       ON b.n = dy.n AND b.workspace_id = g.workspace_id AND b.department = g.department
LEFT JOIN collected AS c ON c.n = dy.n
ORDER BY day, g.workspace_id = '(all)' DESC, g.workspace_id, g.department = '(all)' DESC, g.department;

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
