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
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $department      VARCHAR  only accounts whose owner identity is in this department; NULL = all
--   $exclude_guests  BOOLEAN  leave out guests
--   $include_bots    BOOLEAN  keep bots, apps and Slackbot (they never show activity in Slack's
--                             access logs, so they only change `accounts`)
--
-- Columns:
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
WITH people AS (
    SELECT
        a.account_id,
        a.workspace_id,
        COALESCE(i.department, '(none)') AS department
    FROM accounts AS a
    LEFT JOIN account_identity AS ai
           ON ai.dt = a.dt AND ai.app = a.app AND ai.account_id = a.account_id
    LEFT JOIN identities AS i
           ON i.dt = a.dt AND i.identity_id = ai.identity_id
    WHERE a.dt = CAST($as_of AS DATE)
      AND ($include_bots OR a.account_type NOT IN ('bot', 'app', 'slackbot'))
      AND NOT ($exclude_guests AND a.account_type IN ('guest_multi', 'guest_single'))
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
    SELECT DISTINCT d.account_id, CAST(d.dt AS INT) AS n
    FROM activity_daily AS d
    WHERE d.active
      AND d.dt > CAST(CAST(CAST($cutoff AS DATE) AS INT) - 29 AS DATE)
      AND d.dt <= CAST($as_of AS DATE)
),
covered AS (
    -- An account active on day n counts for mau on n .. n+29, for wau on n .. n+6 and for dau
    -- on n: `since` is how many days ago (at most) the account was last active, as of day n+k.
    SELECT a.account_id, a.n + k AS n, min(k) AS since
    FROM active AS a
    CROSS JOIN unnest(range(0, 30)) AS t(k)
    GROUP BY a.account_id, a.n + k
),
in_trend AS (
    SELECT c.n, p.workspace_id, p.department, c.since
    FROM covered AS c
    JOIN people AS p ON p.account_id = c.account_id
    WHERE c.n > CAST(CAST($cutoff AS DATE) AS INT) AND c.n <= CAST(CAST($as_of AS DATE) AS INT)
),
active_counts AS (
    SELECT
        n,
        CASE WHEN grouping(workspace_id) = 1 THEN '(all)' ELSE workspace_id END  AS workspace_id,
        CASE WHEN grouping(department) = 1 THEN '(all)' ELSE department END      AS department,
        count(*) FILTER (WHERE since = 0)                                        AS dau,
        count(*) FILTER (WHERE since < 7)                                        AS wau,
        count(*)                                                                 AS mau
    FROM in_trend
    GROUP BY GROUPING SETS ((n), (n, workspace_id), (n, department))
),
billed AS (
    -- The billable flag in each collected day's own users snapshot; NULL count = unknown.
    SELECT
        CAST(b.dt AS INT)                                                        AS n,
        CASE WHEN grouping(p.workspace_id) = 1 THEN '(all)' ELSE p.workspace_id END AS workspace_id,
        CASE WHEN grouping(p.department) = 1 THEN '(all)' ELSE p.department END  AS department,
        count(*) FILTER (WHERE b.billable)                                       AS billable_seats,
        count(b.billable)                                                        AS billing_known
    FROM accounts AS b
    JOIN people AS p ON p.account_id = b.account_id
    WHERE b.dt > CAST($cutoff AS DATE) AND b.dt <= CAST($as_of AS DATE)
    GROUP BY GROUPING SETS ((b.dt), (b.dt, p.workspace_id), (b.dt, p.department))
),
collected AS (
    SELECT DISTINCT CAST(dt AS INT) AS n
    FROM accounts
    WHERE dt > CAST($cutoff AS DATE) AND dt <= CAST($as_of AS DATE)
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
CROSS JOIN groups AS g
LEFT JOIN active_counts AS a
       ON a.n = dy.n AND a.workspace_id = g.workspace_id AND a.department = g.department
LEFT JOIN billed AS b
       ON b.n = dy.n AND b.workspace_id = g.workspace_id AND b.department = g.department
LEFT JOIN collected AS c ON c.n = dy.n
ORDER BY day, g.workspace_id = '(all)' DESC, g.workspace_id, g.department = '(all)' DESC, g.department
