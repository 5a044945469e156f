-- Slack's accounts as of one snapshot day: the app-agnostic account row of every Slack account
-- in that day's users snapshot (DESIGN §4). One file per app under sql/accounts/ (found by
-- build.rs; the file name is the app): the derivation unions the files of the apps whose account
-- snapshot table (`@table`) the lake has, so a second app is a second file.
--
-- @table slack_users
--
-- The workspace's name (slack_workspaces) and the SCIM attributes (slack_scim_users) are here so
-- that the correlation and the account_report rollup read `accounts` only, whatever the app.
-- slack_billing, slack_usergroups, slack_usergroup_members and slack_scim_groups are empty when
-- the plan or the collectors do not provide them, which leaves `billable` and `groups` NULL
-- (unknown), not false/empty.
--
-- Parameters: $dt DATE.
SELECT
    'slack'                                                          AS app,
    u.team_id                                                        AS workspace_id,
    u.user_id                                                        AS account_id,
    u.enterprise_id                                                  AS enterprise_id,
    u.name                                                           AS username,
    COALESCE(NULLIF(u.display_name, ''), NULLIF(u.real_name, ''))    AS display_name,
    u.email                                                          AS email,
    CASE
        WHEN u.user_id = 'USLACKBOT'  THEN 'slackbot'
        -- Workflow and connector bots are service accounts whatever is_bot says (null in
        -- snapshots collected before the columns existed).
        WHEN COALESCE(u.is_workflow_bot, false)  THEN 'workflow_bot'
        WHEN COALESCE(u.is_connector_bot, false) THEN 'connector_bot'
        WHEN u.is_bot                 THEN 'bot'
        WHEN u.is_app_user            THEN 'app'
        WHEN u.is_primary_owner       THEN 'primary_owner'
        WHEN u.is_owner               THEN 'owner'
        WHEN u.is_admin               THEN 'admin'
        WHEN u.is_ultra_restricted    THEN 'guest_single'
        WHEN u.is_restricted          THEN 'guest_multi'
        ELSE 'member'
    END                                                              AS account_type,
    CASE
        WHEN u.deleted                THEN 'deactivated'
        WHEN u.is_invited_user        THEN 'invited'
        ELSE 'active'
    END                                                              AS status,
    b.billable                                                       AS billable,
    g.groups                                                         AS groups,
    u.has_2fa                                                        AS has_2fa,
    u.has_sso                                                        AS has_sso,
    u.created_at                                                     AS created_at,
    u.updated                                                        AS updated_at,
    u.workspace_ids                                                  AS workspace_ids,
    u.collected_at                                                   AS collected_at,
    w.name                                                           AS workspace_name,
    s.user_name                                                      AS scim_user_name,
    s.external_id                                                    AS scim_external_id,
    s.email                                                          AS scim_email,
    s.employee_number                                                AS employee_number
FROM slack_users AS u
LEFT JOIN slack_workspaces AS w
       ON w.dt = u.dt AND w.team_id = u.team_id
LEFT JOIN (
    -- The SCIM attributes the correlation rules may match on (one row per user).
    SELECT user_id, min(user_name) AS user_name, min(external_id) AS external_id, min(email) AS email,
           min(employee_number) AS employee_number
    FROM slack_scim_users
    WHERE dt = $dt
    GROUP BY user_id
) AS s ON s.user_id = u.user_id
LEFT JOIN (
    SELECT user_id, bool_or(billing_active) AS billable
    FROM slack_billing
    WHERE dt = $dt
    GROUP BY user_id
) AS b ON b.user_id = u.user_id
LEFT JOIN (
    SELECT user_id, array_sort(array_agg(DISTINCT grp)) AS groups
    FROM (
        SELECT m.user_id, ug.handle AS grp
        FROM slack_usergroup_members AS m
        JOIN slack_usergroups AS ug
          ON ug.team_id = m.team_id AND ug.usergroup_id = m.usergroup_id AND ug.dt = m.dt
        WHERE m.dt = $dt AND NOT ug.disabled
        UNION ALL
        SELECT member_user_id AS user_id, 'scim:' || display_name AS grp
        FROM slack_scim_groups
        WHERE dt = $dt AND member_user_id IS NOT NULL
    ) AS memberships
    GROUP BY user_id
) AS g ON g.user_id = u.user_id
WHERE u.dt = $dt
