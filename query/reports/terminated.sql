-- terminated: accounts still live in Slack whose owner has left the organisation.
--
-- Lists accounts of the as-of snapshot that are not deactivated and whose owner identity
-- (`account_identity` → `identities`, the HR/IdP export) has status `terminated` with a
-- termination date on or before as_of (or no date). Bots, apps and Slackbot appear only with
-- --include-bots and an override naming their owner. Without an identity export it is empty.
--
-- Parameters (bound by `lastseen report terminated`):
--   $as_of           DATE     the snapshot day (--as-of; default: the newest)
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $department      VARCHAR  only owners in this department (case-insensitive); NULL = all
--   $exclude_guests  BOOLEAN  leave out guests
--   $include_bots    BOOLEAN  keep bots, apps and Slackbot
--
-- Columns:
--   app              the app the account is of (accounts.app)
--   workspace_id, account_id, username, email, display_name, account_type, status, billable
--                    from the users snapshot (`accounts`)
--   identity_id, identity_name, department, manager_email, manager_name, employee_type
--                    the owner identity and its manager (looked up by email in the same export)
--   termination_date the owner's termination day (NULL when the export gives none)
--   days_since_termination   as_of - termination_date
--   last_seen_at, last_seen_source   the latest evidence of use (`last_seen`)
--   used_after_termination   some evidence of use after the termination day: someone still
--                    holds the credentials, the most urgent case
--   privileged       primary owner, owner or admin
--
-- Sorted: used after termination first, then privileged, then the longest since termination.
--
-- Reads the run's daily rollup `account_report` (accounts joined with last_seen,
-- account_identity and identities once per day by the run). On a lake whose as-of day has no
-- rollup (written before it existed), lastseen runs the same report over the raw tables instead
-- (query/reports/oracle/terminated.sql): same rows, slower.
--
-- @title     Live accounts of terminated owners
-- @snapshots last_seen
-- @rollup    account_report
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     department      Only owners in this department (case-insensitive); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
-- @param     include_bots    Keep bots, apps and Slackbot (left out by default).
--
SELECT
    app,
    workspace_id,
    account_id,
    username,
    email,
    display_name,
    account_type,
    status,
    billable,
    identity_id,
    identity_name,
    department,
    manager_email,
    manager_name,
    employee_type,
    termination_date,
    CAST(CAST($as_of AS DATE) AS INT) - CAST(termination_date AS INT)   AS days_since_termination,
    last_seen_at,
    last_seen_source,
    COALESCE(CAST(last_seen_at AS DATE) > termination_date, false)      AS used_after_termination,
    account_type IN ('primary_owner', 'owner', 'admin')                 AS privileged
FROM account_report
WHERE dt = CAST($as_of AS DATE)
  AND status <> 'deactivated'
  AND identity_id IS NOT NULL     -- an owner identity in the export of as_of
  AND lower(identity_status) = 'terminated'
  AND (termination_date IS NULL OR termination_date <= CAST($as_of AS DATE))
  AND ($include_bots OR account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot'))
  AND NOT ($exclude_guests AND account_type IN ('guest_multi', 'guest_single'))
  AND ($app IS NULL OR app = $app)
  AND ($workspace IS NULL OR workspace_id = $workspace
       OR COALESCE(array_has(workspace_ids, $workspace), false))
  AND ($department IS NULL OR lower(department) = lower($department))
ORDER BY used_after_termination DESC, privileged DESC, days_since_termination DESC NULLS FIRST,
         app, workspace_id, account_id;

-- @chart bar Live accounts of terminated owners by department
SELECT COALESCE(department, '(none)') AS department, count(*) AS accounts
FROM report
GROUP BY 1
ORDER BY accounts DESC, department;
