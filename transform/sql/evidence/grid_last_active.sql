-- Evidence from Enterprise Grid's admin.users.list `last_active_ts`, as seen in each day's
-- users snapshot. It is attributed to the snapshot day; it counts as activity on that day only
-- when the timestamp falls inside it (an older value just restates an earlier day).
--
-- @app      slack
-- @table    slack_users
-- @priority 3
--
-- Parameters: $from DATE, $to DATE.
SELECT
    'slack'                                         AS app,
    dt                                              AS day,
    user_id                                         AS account_id,
    min(team_id)                                    AS workspace_id,
    'grid_last_active'                              AS source,
    bool_or(CAST(last_active_at AS DATE) = dt)      AS active,
    min(last_active_at)                             AS first_at,
    max(last_active_at)                             AS last_at,
    CAST(NULL AS BIGINT)                            AS logins,
    CAST(NULL AS BIGINT)                            AS messages
FROM slack_users
WHERE dt BETWEEN $from AND $to
  AND last_active_at IS NOT NULL
GROUP BY dt, user_id
