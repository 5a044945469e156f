-- account_report for one snapshot day $dt: one row per account of the `accounts` snapshot (every
-- status and type: the reports filter), with the joins every account report repeats, done once
-- by the run instead of on every report:
--
--   accounts            the account itself (type, status, billable, workspaces, the home
--                       workspace's name, and its groups: the app's own groups, and those
--                       its IdP pushes, which the app's accounts file prefixes `scim:`)
--   last_seen           the latest evidence of use as of $dt and its state
--   account_identity    correlation: the owner identity and how it was found
--   identities          the owner identity (HR/IdP export) and its manager (by email)
--
-- An account is (app, account_id): every join is on both. Nothing here is one app's.
--
-- Only facts of the day that do not depend on a report parameter are kept; the reports apply
-- $cutoff, $workspace, $department, $exclude_guests and $include_bots on these rows. Each join
-- is the one the reports made before (query/reports/oracle/), so a report over this table
-- returns exactly the rows it returned over the raw tables.
--
-- Two columns are folded from the previous rollup day $base (the `account_report` rows of $base;
-- none when $base has no rollup), so each day reads only the activity days after $base:
--
--   last_active_day  the newest day of $dt-29 .. $dt on which `activity_daily` says the account
--                    was active (NULL: none): `usage_daily` counts DAU/WAU/MAU from it
--   key_since        the first rollup day since which the account has been listed with this
--                    home workspace, memberships, department and type ($dt when it was not
--                    listed on $base, or differently)
--
-- Parameters: $dt DATE, $base DATE, $from DATE (the activity days read are $from < dt <= $dt:
-- max($base, $dt - 30)), $month DATE ($dt - 30: an older base day is out of the window).
WITH manager AS (
    -- Managers are named by email in most HR exports; one row per address.
    SELECT lower(email) AS email, min(display_name) AS name
    FROM identities
    WHERE dt = $dt AND email IS NOT NULL
    GROUP BY lower(email)
),
recent AS (
    SELECT app, account_id, max(dt) AS last_active_day
    FROM activity_daily
    WHERE active AND dt > $from AND dt <= $dt
    GROUP BY app, account_id
),
base AS (
    SELECT app, account_id, workspace_id, workspace_ids, department, account_type, last_active_day, key_since
    FROM account_report
    WHERE dt = $base
)
SELECT
    a.app,
    a.workspace_id,
    a.workspace_name,
    a.account_id,
    a.workspace_ids,
    a.username,
    a.email,
    a.display_name,
    a.account_type,
    a.status,
    a.billable,
    a.created_at,
    -- `accounts.groups` split back: the app's own groups, and those its IdP pushes (which the
    -- app's accounts file prefixes `scim:`), each sorted and joined with '; '. `group_list` is
    -- the list sorted and distinct, its entries joined with U+001F (a control character no
    -- group name holds): every `scim:` entry then sits in one run, so the IdP groups are that
    -- run and the app's groups the rest. Done per row: the aggregation it replaces (unnest,
    -- then array_agg(DISTINCT) per account) held every account's group set in memory at once.
    NULLIF(replace(btrim(regexp_replace(a.group_list, '(^|\x1f)scim:[^\x1f]*', '', 'g'), chr(31)), chr(31), '; '), '')
                            AS user_groups,
    NULLIF(replace(substr(regexp_match(a.group_list, '(?:^|\x1f)(scim:[^\x1f]*(?:\x1fscim:[^\x1f]*)*)')[1], 6),
                   chr(31) || 'scim:', '; '), '')
                            AS idp_groups,
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
    m.name                  AS manager_name,
    CASE
        WHEN r.last_active_day IS NOT NULL THEN r.last_active_day
        WHEN b.last_active_day > $month THEN b.last_active_day
    END                     AS last_active_day,
    CASE
        WHEN b.account_id IS NOT NULL
             AND b.workspace_id = a.workspace_id
             AND b.account_type = a.account_type
             AND (b.department IS NOT DISTINCT FROM i.department)
             AND (array_to_string(b.workspace_ids, ',') IS NOT DISTINCT FROM array_to_string(a.workspace_ids, ','))
            THEN b.key_since
        ELSE $dt
    END                     AS key_since,
    -- The `dormant` report's order, which the table is stored in (see its definition there):
    -- the risk the report ranks by as of $dt, and the days since the account was last seen.
    CASE WHEN a.account_type IN ('primary_owner', 'owner', 'admin') THEN 4 ELSE 0 END
        + CASE WHEN COALESCE(lower(i.status) = 'terminated'
                             AND (i.termination_date IS NULL OR i.termination_date <= $dt), false)
               THEN 4 ELSE 0 END
        + CASE WHEN ai.match_status IN ('orphan', 'no_owner') THEN 2 ELSE 0 END
        + CASE WHEN a.billable THEN 1 ELSE 0 END
                            AS risk,
    CAST($dt AS INT) - CAST(CAST(ls.last_seen_at AS DATE) AS INT)
                            AS days_since_last_seen
FROM (SELECT *, array_to_string(array_sort(array_distinct(groups)), chr(31)) AS group_list FROM accounts) AS a
LEFT JOIN last_seen AS ls
       ON ls.dt = a.dt AND ls.app = a.app AND ls.account_id = a.account_id
LEFT JOIN account_identity AS ai
       ON ai.dt = a.dt AND ai.app = a.app AND ai.account_id = a.account_id
LEFT JOIN identities AS i
       ON i.dt = a.dt AND i.identity_id = ai.identity_id
LEFT JOIN manager AS m
       ON m.email = lower(i.manager_email)
LEFT JOIN recent AS r
       ON r.app = a.app AND r.account_id = a.account_id
LEFT JOIN base AS b
       ON b.app = a.app AND b.account_id = a.account_id
WHERE a.dt = $dt
