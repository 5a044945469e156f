-- seats: billable seats against seats in use, and the seats that could be reclaimed, as of one
-- snapshot day, for the organisation, per workspace and per department.
--
-- Counts the live accounts (not deactivated) of the as-of snapshot after the filters below.
--
-- Parameters (bound by `lastseen report seats`):
--   $as_of           DATE     the snapshot day (--as-of; default: the newest)
--   $cutoff          DATE     as_of - days (--days): used = some evidence of use after it
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $department      VARCHAR  only accounts whose owner identity is in this department; NULL = all
--   $exclude_guests  BOOLEAN  leave out guests
--   $include_bots    BOOLEAN  keep bots, apps and Slackbot (never billed by Slack)
--
-- Columns:
--   app              the apps whose accounts the row counts, comma-separated ('(none)' when it
--                    counts none); --app counts one app's
--   workspace_id     the accounts' home workspace, '(all)' on the organisation and department rows
--   department       the owner identity's department, '(none)' without one, '(all)' on the
--                    organisation and workspace rows
--   live_accounts    accounts not deactivated (active and invited)
--   billable_seats   live accounts Slack bills (team.billableInfo as collected on as_of); NULL
--                    when the plan has no billing (Free)
--   used_seats       live accounts with evidence of use after the cutoff (`last_seen`)
--   dormant_accounts live accounts without evidence of use since the cutoff, or never seen
--                    (the dormant report's rows when the filters are the same)
--   reclaimable_seats billable and dormant: paid for and unused. Under Slack's Fair Billing
--                    policy a member stops being billed after about 14 days without use, so on
--                    such plans this is mostly non-zero for thresholds below two weeks
--   terminated_seats live accounts whose owner identity is terminated on or before as_of
--
-- Rows: the organisation first, then one row per workspace, then one per department.
--
-- Reads the run's daily rollup `account_report` (accounts joined with last_seen,
-- account_identity and identities once per day by the run). On a lake whose as-of day has no
-- rollup (written before it existed), lastseen runs the same report over the raw tables instead
-- (query/reports/oracle/seats.sql): same rows, slower.
--
-- @title     Seats: billable, used and reclaimable
-- @snapshots last_seen
-- @rollup    account_report
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     days            A seat is used when it shows evidence of use in this many days (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     department      Only accounts whose owner identity is in this department (case-insensitive); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
-- @param     include_bots    Keep bots, apps and Slackbot (left out by default).
--
WITH people AS (
    SELECT
        app,
        account_id,
        workspace_id,
        COALESCE(department, '(none)')                                          AS department,
        billable,
        last_seen_at IS NOT NULL
            AND CAST(last_seen_at AS DATE) > CAST($cutoff AS DATE)              AS used,
        COALESCE(lower(identity_status) = 'terminated'
                 AND (termination_date IS NULL OR termination_date <= CAST($as_of AS DATE)), false)
                                                                                AS owner_terminated
    FROM account_report
    WHERE dt = CAST($as_of AS DATE)
      AND status <> 'deactivated'
      AND ($include_bots OR account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot'))
      AND NOT ($exclude_guests AND account_type IN ('guest_multi', 'guest_single'))
      AND ($app IS NULL OR app = $app)
      AND ($workspace IS NULL OR workspace_id = $workspace
           OR COALESCE(array_has(workspace_ids, $workspace), false))
      AND ($department IS NULL OR lower(department) = lower($department))
)
SELECT
    app, workspace_id, department, live_accounts, billable_seats, used_seats, dormant_accounts,
    reclaimable_seats, terminated_seats
FROM (
    SELECT
        COALESCE(array_to_string(array_sort(array_agg(DISTINCT app)), ','), '(none)')
                                                                                   AS app,
        CASE WHEN grouping(workspace_id) = 1 THEN '(all)' ELSE workspace_id END    AS workspace_id,
        CASE WHEN grouping(department) = 1 THEN '(all)' ELSE department END        AS department,
        grouping(workspace_id) + grouping(department)                              AS level,
        grouping(department)                                                       AS by_workspace,
        count(*)                                                                   AS live_accounts,
        CASE WHEN count(billable) > 0 THEN count(*) FILTER (WHERE billable) END    AS billable_seats,
        count(*) FILTER (WHERE used)                                               AS used_seats,
        count(*) FILTER (WHERE NOT used)                                           AS dormant_accounts,
        CASE WHEN count(billable) > 0 THEN count(*) FILTER (WHERE billable AND NOT used) END
                                                                                   AS reclaimable_seats,
        count(*) FILTER (WHERE owner_terminated)                                   AS terminated_seats
    FROM people
    GROUP BY GROUPING SETS ((), (workspace_id), (department))
) AS g
ORDER BY level DESC, by_workspace DESC, workspace_id, department;

-- @chart bar Dormant accounts by department
SELECT department, dormant_accounts
FROM report
WHERE workspace_id = '(all)' AND department <> '(all)'
ORDER BY dormant_accounts DESC, department;
