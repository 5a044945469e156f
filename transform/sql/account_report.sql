-- account_report for one snapshot day $dt: one row per account of the `accounts` snapshot (every
-- status and type: the reports filter), with the joins every account report repeats, done once
-- by the run instead of on every report:
--
--   accounts            the account itself (type, status, billable, workspaces)
--   slack_workspaces    the home workspace's name
--   last_seen           the latest evidence of use as of $dt and its state
--   account_identity    correlation: the owner identity and how it was found
--   identities          the owner identity (HR/IdP export) and its manager (by email)
--   slack_usergroups, slack_usergroup_members, slack_scim_groups   the account's groups
--
-- Only facts of the day that do not depend on a report parameter are kept; the reports apply
-- $cutoff, $workspace, $department, $exclude_guests and $include_bots on these rows. Each join
-- is the one the reports made before (query/reports/oracle/), so a report over this table
-- returns exactly the rows it returned over the raw tables.
--
-- Parameter: $dt DATE.
WITH manager AS (
    -- Managers are named by email in most HR exports; one row per address.
    SELECT lower(email) AS email, min(display_name) AS name
    FROM identities
    WHERE dt = $dt AND email IS NOT NULL
    GROUP BY lower(email)
),
user_groups AS (
    SELECT m.user_id, array_to_string(array_sort(array_agg(DISTINCT g.handle)), '; ') AS groups
    FROM slack_usergroup_members AS m
    JOIN slack_usergroups AS g
      ON g.dt = m.dt AND g.team_id = m.team_id AND g.usergroup_id = m.usergroup_id
    WHERE m.dt = $dt AND NOT g.disabled
    GROUP BY m.user_id
),
idp_groups AS (
    SELECT member_user_id AS user_id,
           array_to_string(array_sort(array_agg(DISTINCT display_name)), '; ') AS groups
    FROM slack_scim_groups
    WHERE dt = $dt AND member_user_id IS NOT NULL
    GROUP BY member_user_id
)
SELECT
    a.app,
    a.workspace_id,
    w.name                  AS workspace_name,
    a.account_id,
    a.workspace_ids,
    a.username,
    a.email,
    a.display_name,
    a.account_type,
    a.status,
    a.billable,
    a.created_at,
    ug.groups               AS user_groups,
    ig.groups               AS idp_groups,
    ls.last_seen_at,
    ls.last_seen_source,
    ls.active_days_30,
    ls.active_days_90,
    ls.state                AS last_seen_state,
    ai.match_status,
    ai.rule                 AS match_rule,
    ai.matched_value,
    ai.candidates,
    i.identity_id,
    i.display_name          AS identity_name,
    i.email                 AS identity_email,
    i.department,
    i.employee_type,
    i.status                AS identity_status,
    i.termination_date,
    i.manager_email,
    m.name                  AS manager_name
FROM accounts AS a
LEFT JOIN slack_workspaces AS w
       ON w.dt = a.dt AND w.team_id = a.workspace_id
LEFT JOIN last_seen AS ls
       ON ls.dt = a.dt AND ls.app = a.app AND ls.account_id = a.account_id
LEFT JOIN account_identity AS ai
       ON ai.dt = a.dt AND ai.app = a.app AND ai.account_id = a.account_id
LEFT JOIN identities AS i
       ON i.dt = a.dt AND i.identity_id = ai.identity_id
LEFT JOIN manager AS m
       ON m.email = lower(i.manager_email)
LEFT JOIN user_groups AS ug
       ON ug.user_id = a.account_id
LEFT JOIN idp_groups AS ig
       ON ig.user_id = a.account_id
WHERE a.dt = $dt
