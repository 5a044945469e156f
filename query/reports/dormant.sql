-- dormant: accounts that can still be used but show no evidence of use.
--
-- Lists every account of the as-of snapshot that is not deactivated (active members, guests
-- and invited-but-never-joined accounts) whose last evidence of use is on or before the cutoff
-- (as_of - days), or that was never seen at all. Bots, apps and Slackbot are left out unless
-- $include_bots: their use does not show in access logs, so "never seen" says nothing about them.
--
-- Parameters (bound by `lastseen report dormant`):
--   $as_of           DATE     the snapshot day (--as-of; default: the newest last_seen snapshot)
--   $cutoff          DATE     as_of - days (--days; default reports.dormant_days): dormant when
--                             the last evidence is on or before it
--   $days            BIGINT   the threshold itself, for the reason text
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $department      VARCHAR  only accounts whose owner identity is in this department
--                             (case-insensitive); NULL = all
--   $exclude_guests  BOOLEAN  leave out single- and multi-channel guests
--   $include_bots    BOOLEAN  keep bots, apps and Slackbot
--
-- Columns:
--   app              the app the account is of (accounts.app)
--   workspace_id, workspace_name   the account's home workspace (slack_workspaces of as_of)
--   account_id, username, email, display_name   from the users snapshot (`accounts`)
--   account_type     primary_owner | owner | admin | member | guest_multi | guest_single |
--                    bot | app | slackbot | workflow_bot | connector_bot
--   roles            the Slack roles that type carries (a primary owner is also owner and admin)
--   status           active | invited (deactivated accounts are never listed)
--   billable         Slack bills the seat (team.billableInfo); NULL where the plan has no billing
--   last_seen_at, last_seen_source   the latest evidence of use up to the end of as_of
--                    (`last_seen`: access logs, analytics, audit logins or Grid last-active)
--   days_since_last_seen   as_of - the day of last_seen_at; NULL when never seen
--   state            dormant (seen, but not since the cutoff) | never_seen (a source covered the
--                    account and never saw it) | unknown (no source covers as_of: not evidence)
--   identity_id, identity_name, department, manager_email, manager_name, identity_status,
--   termination_date from the owner identity (`account_identity` → `identities`, the HR/IdP
--                    export); NULL when no export is configured or nobody owns the account
--   match_status     matched | orphan | ambiguous | no_owner (an override says so) | service
--   orphan           no owner: match_status orphan or no_owner (NULL without correlation)
--   owner_terminated the owner's identity is terminated on or before as_of
--   privileged       primary owner, owner or admin
--   guest            single- or multi-channel guest
--   risk             4 × privileged + 4 × owner_terminated + 2 × orphan + 1 × billable: the sort key
--   recommended_action, reason   the rule of review.sql, as it applies to dormant rows:
--                    revoke when the owner is terminated; investigate for service accounts
--                    (--include-bots) and when no activity source covers as_of (nothing is
--                    proven); otherwise revoke (no use since the cutoff, never seen, or an
--                    invitation never accepted)
--
-- Sorted by risk (highest first), then the longest silence (never seen first), then account id.
--
-- Reads the run's daily rollup `account_report` (the joins of accounts, last_seen,
-- account_identity, identities and slack_workspaces, done once per day by the run), which is
-- stored in this report's order: `risk` and `days_since_last_seen` are its columns, computed
-- by the run as below (transform/sql/account_report.sql), so the rows are read in order and
-- merged rather than sorted, and pages of accounts seen since the cutoff are skipped unread.
-- On a lake whose as-of day has no rollup (written before it existed, or before the rollup
-- had those two columns: the `@guard`), lastseen runs the same report over the raw tables
-- instead (query/reports/oracle/dormant.sql): same rows, slower.
--
-- @title     Dormant accounts
-- @snapshots last_seen
-- @rollup    account_report
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     days            Dormant after this many days without evidence of use (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     department      Only accounts whose owner identity is in this department (case-insensitive); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
-- @param     include_bots    Keep bots, apps and Slackbot (left out by default).
--
WITH acct AS (
    SELECT
        app,
        workspace_id,
        workspace_name,
        account_id,
        username,
        email,
        display_name,
        account_type,
        CASE account_type
            WHEN 'primary_owner' THEN 'primary_owner,owner,admin'
            WHEN 'owner'         THEN 'owner,admin'
            WHEN 'admin'         THEN 'admin'
            WHEN 'guest_multi'   THEN 'multi_channel_guest'
            WHEN 'guest_single'  THEN 'single_channel_guest'
            ELSE account_type
        END                                                         AS roles,
        status,
        billable,
        last_seen_at,
        last_seen_source,
        days_since_last_seen,
        CASE
            WHEN last_seen_at IS NOT NULL THEN 'dormant'
            ELSE COALESCE(last_seen_state, 'never_seen')
        END                                                         AS state,
        identity_id,
        identity_name,
        department,
        manager_email,
        manager_name,
        identity_status,
        termination_date,
        match_status,
        CASE WHEN match_status IS NOT NULL THEN match_status IN ('orphan', 'no_owner') END
                                                                    AS orphan,
        COALESCE(lower(identity_status) = 'terminated'
                 AND (termination_date IS NULL OR termination_date <= CAST($as_of AS DATE)), false)
                                                                    AS owner_terminated,
        account_type IN ('primary_owner', 'owner', 'admin')         AS privileged,
        account_type IN ('guest_multi', 'guest_single')             AS guest,
        risk
    FROM account_report
    WHERE dt = CAST($as_of AS DATE)
      AND status <> 'deactivated'
      AND ($include_bots OR account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot'))
      AND NOT ($exclude_guests AND account_type IN ('guest_multi', 'guest_single'))
      AND ($app IS NULL OR app = $app)
      AND ($workspace IS NULL OR workspace_id = $workspace
           OR COALESCE(array_has(workspace_ids, $workspace), false))
      AND ($department IS NULL OR lower(department) = lower($department))
      -- Last seen on or before the cutoff, or never: days_since_last_seen is as_of - the day
      -- last seen, so this is `CAST(last_seen_at AS DATE) <= $cutoff` on a column whose page
      -- statistics skip the accounts seen since.
      AND (days_since_last_seen IS NULL
           OR days_since_last_seen >= CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST($cutoff AS DATE) AS INT))
)
SELECT
    app,
    workspace_id,
    workspace_name,
    account_id,
    username,
    email,
    display_name,
    account_type,
    roles,
    status,
    billable,
    last_seen_at,
    last_seen_source,
    days_since_last_seen,
    state,
    identity_id,
    identity_name,
    department,
    manager_email,
    manager_name,
    identity_status,
    termination_date,
    match_status,
    orphan,
    owner_terminated,
    privileged,
    guest,
    risk,
    CASE
        WHEN owner_terminated THEN 'revoke'
        WHEN account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN 'investigate'
        WHEN state = 'unknown' THEN 'investigate'
        ELSE 'revoke'
    END                                                             AS recommended_action,
    CASE
        WHEN owner_terminated
            THEN 'owner ' || identity_id || ' terminated'
                 || COALESCE(' on ' || CAST(termination_date AS VARCHAR), '')
        WHEN account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot')
            THEN 'service account: its use is not observable; confirm it is still needed'
        WHEN state = 'unknown' THEN 'no activity source covers ' || CAST(CAST($as_of AS DATE) AS VARCHAR)
        WHEN status = 'invited' AND last_seen_at IS NULL THEN 'invitation never accepted'
        WHEN last_seen_at IS NULL THEN 'never seen'
        ELSE 'no activity in ' || CAST($days AS VARCHAR) || ' days (last seen '
             || CAST(CAST(last_seen_at AS DATE) AS VARCHAR) || ' via ' || last_seen_source || ')'
    END                                                             AS reason
FROM acct
ORDER BY risk DESC, days_since_last_seen DESC NULLS FIRST, app, workspace_id, account_id;

-- @guard
-- The rollup answers only where its rows carry `risk` (a day derived before the rollup had it
-- has none, and is stored in another order). Otherwise lastseen runs the oracle.
SELECT count(*) = count(risk) AS ok FROM account_report WHERE dt = CAST($as_of AS DATE);

-- @chart bar Dormant accounts by department
SELECT COALESCE(department, '(none)') AS department, count(*) AS accounts
FROM report
GROUP BY 1
ORDER BY accounts DESC, department;

-- @chart bar Dormant accounts by account type
SELECT account_type, count(*) AS accounts FROM report GROUP BY account_type ORDER BY accounts DESC, account_type;

-- @chart bar Dormant accounts by time since last seen
SELECT bucket, accounts FROM (
    SELECT
        CASE
            WHEN days_since_last_seen IS NULL THEN 6
            WHEN days_since_last_seen <= 60   THEN 1
            WHEN days_since_last_seen <= 90   THEN 2
            WHEN days_since_last_seen <= 180  THEN 3
            WHEN days_since_last_seen <= 365  THEN 4
            ELSE 5
        END AS k,
        count(*) AS accounts
    FROM report
    GROUP BY 1
) AS b
JOIN (VALUES (1, 'up to 60 days'), (2, '61-90 days'), (3, '91-180 days'), (4, '181-365 days'),
             (5, 'over a year'), (6, 'never seen')) AS names (k, bucket)
  ON names.k = b.k
ORDER BY b.k;
