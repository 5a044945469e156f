-- review: the access-review pack. One row per live account with its entitlements, the evidence
-- of its use, its owner and manager, and a recommendation with its reason.
--
-- Lists every account of the as-of snapshot that is not deactivated (deactivated accounts have
-- nothing left to review); bots, apps and Slackbot only with --include-bots.
--
-- Parameters (bound by `lastseen report review`):
--   $as_of           DATE     the snapshot day (--as-of; default: the newest)
--   $cutoff          DATE     as_of - days (--days): dormant = no evidence of use after it
--   $days            BIGINT   the threshold itself, for the reason text
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $department      VARCHAR  only accounts whose owner is in this department; NULL = all
--   $exclude_guests  BOOLEAN  leave out guests
--   $include_bots    BOOLEAN  keep bots, apps and Slackbot
--
-- Columns:
--   app              the app the account is of (accounts.app)
--   workspace_id, workspace_name, account_id, username, email, display_name, account_type,
--   status, billable, created_at   from the users snapshot (`accounts`)
--   roles            the Slack roles the account type carries (primary owner ⊃ owner ⊃ admin)
--   user_groups      enabled Slack user groups (slack_usergroups/slack_usergroup_members of
--                    as_of) by handle, sorted, '; '-separated; NULL = none or not collected
--   idp_groups       SCIM groups the IdP pushes (slack_scim_groups of as_of), same format
--   last_seen_at, last_seen_source, days_since_last_seen, active_days_30, active_days_90, state
--                    the evidence (`last_seen`: latest use, its source, active days in the last
--                    30 and 90 days, active | dormant | never_seen | unknown)
--   owner_identity_id, owner_name, owner_email, department, employee_type, owner_status,
--   termination_date the owner identity (HR/IdP export) correlation gave the account
--   manager_email, manager_name    the owner's manager (looked up by email in the same export)
--   match_status, match_rule       how the owner was found (`account_identity`): matched (by
--                    which rule) | orphan | ambiguous (candidates in the reason) | no_owner |
--                    service; NULL without an identity export
--   privileged, guest
--   recommendation, reason   the first rule that applies, in this order:
--     1. revoke       the owner is terminated on or before as_of
--     2. investigate  a bot, app or Slackbot: its use is not observable in Slack's logs
--     3. investigate  no activity source covers as_of (state unknown): nothing is proven
--     4. revoke       dormant: no evidence of use since the cutoff, never seen, or an
--                     invitation never accepted
--     5. investigate  in use but nobody owns it (orphan, no_owner) or several identities
--                     claim it (ambiguous)
--     6. keep         in use and owned by an identity not terminated (or no identity export is
--                     configured, which the reason says)
--   previous_decision  the newest imported decision for the account ("revoke by alice (imported
--                    2026-06-29)"), NULL when none: a decision still pending shows here
--   action_status    the newest deprovisioning outcome ("deactivate: done (2026-06-30)",
--                    "deactivate: skipped (…)"), NULL when nothing was attempted
--   decision, decided_by, note   for the reviewer to fill in: `decision` starts as
--                    'proposed: <recommendation>' (not yet decided); write revoke, keep or
--                    investigate, your name in decided_by, then `lastseen review import FILE`
--
-- Sorted: revoke, then investigate, then keep; privileged first within each; then account id.
--
-- Reads the run's daily rollup `account_report` (accounts joined with workspaces, groups,
-- last_seen, account_identity and identities once per day by the run) and the imported
-- decisions and deprovisioning journal. On a lake whose as-of day has no rollup (written before
-- it existed), lastseen runs the same report over the raw tables instead
-- (query/reports/oracle/review.sql): same rows, slower.
--
-- @title     Access review
-- @snapshots last_seen
-- @rollup    account_report
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     days            Dormant after this many days without evidence of use (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     department      Only accounts whose owner is in this department (case-insensitive); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
-- @param     include_bots    Keep bots, apps and Slackbot (left out by default).
--
WITH previous AS (
    -- The newest decision imported for the account (`lastseen review import`), from any review.
    SELECT account_id AS decided_account_id,
           decision || ' by ' || decided_by || ' (imported ' || CAST(CAST(imported_at AS DATE) AS VARCHAR) || ')'
               AS previous_decision
    FROM (SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY imported_at DESC) AS rn
          FROM review_decisions) AS d
    WHERE rn = 1
),
acted AS (
    -- The newest journaled deprovisioning outcome for the account.
    SELECT account_id AS acted_account_id,
           action || ': ' || outcome || ' (' || CAST(CAST(at AS DATE) AS VARCHAR) || ')' AS action_status
    FROM (SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY at DESC, entry_id DESC) AS rn
          FROM deprovision_actions WHERE phase = 'outcome') AS j
    WHERE rn = 1
),
history AS (
    -- Both, per account that has either: one join with the report's rows instead of two (each
    -- join copies every column of all ~500,000 rows). A union and a GROUP BY rather than a FULL
    -- JOIN: the planner can estimate their size from the tables' row counts, sees that this
    -- side is small and builds the join's hash table from it alone, instead of repartitioning
    -- the report's wide rows by account. (Each account is at most once in each of the two.)
    SELECT history_account_id, max(previous_decision) AS previous_decision, max(action_status) AS action_status
    FROM (SELECT decided_account_id AS history_account_id, previous_decision, CAST(NULL AS VARCHAR) AS action_status
          FROM previous
          UNION ALL
          SELECT acted_account_id, CAST(NULL AS VARCHAR), action_status FROM acted) AS h
    GROUP BY history_account_id
),
acct AS (
    SELECT
        app,
        workspace_id,
        workspace_name,
        account_id,
        username,
        email,
        display_name,
        account_type,
        status,
        billable,
        created_at,
        CASE account_type
            WHEN 'primary_owner' THEN 'primary_owner,owner,admin'
            WHEN 'owner'         THEN 'owner,admin'
            WHEN 'admin'         THEN 'admin'
            WHEN 'guest_multi'   THEN 'multi_channel_guest'
            WHEN 'guest_single'  THEN 'single_channel_guest'
            ELSE account_type
        END                                                         AS roles,
        user_groups,
        idp_groups,
        last_seen_at,
        last_seen_source,
        CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST(last_seen_at AS DATE) AS INT)
                                                                    AS days_since_last_seen,
        active_days_30,
        active_days_90,
        last_seen_state                                             AS state,
        identity_id                                                 AS owner_identity_id,
        identity_name                                               AS owner_name,
        identity_email                                              AS owner_email,
        department,
        employee_type,
        identity_status                                             AS owner_status,
        termination_date,
        manager_email,
        manager_name,
        match_status,
        match_rule,
        candidates,
        account_type IN ('primary_owner', 'owner', 'admin')         AS privileged,
        account_type IN ('guest_multi', 'guest_single')             AS guest,
        COALESCE(lower(identity_status) = 'terminated'
                 AND (termination_date IS NULL OR termination_date <= CAST($as_of AS DATE)), false)
                                                                    AS owner_terminated,
        last_seen_at IS NULL OR CAST(last_seen_at AS DATE) <= CAST($cutoff AS DATE)
                                                                    AS dormant
    FROM account_report
    WHERE dt = CAST($as_of AS DATE)
      AND status <> 'deactivated'
      AND ($include_bots OR account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot'))
      AND NOT ($exclude_guests AND account_type IN ('guest_multi', 'guest_single'))
      AND ($app IS NULL OR app = $app)
      AND ($workspace IS NULL OR workspace_id = $workspace
           OR COALESCE(array_has(workspace_ids, $workspace), false))
      AND ($department IS NULL OR lower(department) = lower($department))
),
decided AS (
    SELECT
        acct.*,
        CASE
            WHEN owner_terminated THEN 'revoke'
            WHEN account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot') THEN 'investigate'
            WHEN last_seen_at IS NULL AND state = 'unknown' THEN 'investigate'
            WHEN dormant THEN 'revoke'
            WHEN match_status IN ('orphan', 'no_owner', 'ambiguous') THEN 'investigate'
            ELSE 'keep'
        END                                                         AS recommendation,
        CASE
            WHEN owner_terminated
                THEN 'owner ' || owner_identity_id || ' terminated'
                     || COALESCE(' on ' || CAST(termination_date AS VARCHAR), '')
            WHEN account_type IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot')
                THEN 'service account: its use is not observable; confirm it is still needed'
            WHEN last_seen_at IS NULL AND state = 'unknown'
                THEN 'no activity source covers ' || CAST(CAST($as_of AS DATE) AS VARCHAR)
            WHEN dormant AND status = 'invited' AND last_seen_at IS NULL THEN 'invitation never accepted'
            WHEN dormant AND last_seen_at IS NULL THEN 'never seen'
            WHEN dormant
                THEN 'no activity in ' || CAST($days AS VARCHAR) || ' days (last seen '
                     || CAST(CAST(last_seen_at AS DATE) AS VARCHAR) || ' via ' || last_seen_source || ')'
            WHEN match_status = 'ambiguous'
                THEN 'in use, but claimed by several identities: ' || COALESCE(candidates, '?')
            WHEN match_status IN ('orphan', 'no_owner') THEN 'in use, but no identity owns it'
            WHEN match_status IS NULL
                THEN 'in use (last seen ' || CAST(CAST(last_seen_at AS DATE) AS VARCHAR)
                     || '); owner unknown: no identity export'
            ELSE 'in use (last seen ' || CAST(CAST(last_seen_at AS DATE) AS VARCHAR)
                 || ' via ' || last_seen_source || '); owned by ' || owner_identity_id
        END                                                         AS reason
    FROM acct
)
SELECT
    app, workspace_id, workspace_name, account_id, username, email, display_name, account_type, status,
    roles, billable, created_at, user_groups, idp_groups,
    last_seen_at, last_seen_source, days_since_last_seen, active_days_30, active_days_90, state,
    owner_identity_id, owner_name, owner_email, department, employee_type, owner_status,
    termination_date, manager_email, manager_name, match_status, match_rule,
    privileged, guest, recommendation, reason,
    previous_decision, action_status,
    'proposed: ' || recommendation                                  AS decision,
    CAST(NULL AS VARCHAR)                                           AS decided_by,
    CAST(NULL AS VARCHAR)                                           AS note
FROM decided
LEFT JOIN history ON history_account_id = account_id
ORDER BY CASE recommendation WHEN 'revoke' THEN 0 WHEN 'investigate' THEN 1 ELSE 2 END,
         privileged DESC, app, workspace_id, account_id;

-- @chart bar Recommendations
SELECT recommendation, count(*) AS accounts
FROM report
GROUP BY recommendation
ORDER BY CASE recommendation WHEN 'revoke' THEN 0 WHEN 'investigate' THEN 1 ELSE 2 END;

-- @chart bar Recommendations to revoke by department
SELECT COALESCE(department, '(none)') AS department, count(*) AS accounts
FROM report
WHERE recommendation = 'revoke'
GROUP BY 1
ORDER BY accounts DESC, department;
