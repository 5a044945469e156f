-- Evidence from team.accessLogs (paid plans): an entry's `date_last` is a moment the account
-- used Slack, and the entry sits in the partition of that moment's UTC day. `date_first` of any
-- entry is the earliest use it proves (it may predate the day).
--
-- @app      slack
-- @table    slack_access_logs
-- @priority 1
--
-- Parameters: $from DATE, $to DATE (the days being derived).
SELECT
    'slack'                     AS app,
    dt                          AS day,
    user_id                     AS account_id,
    min(team_id)                AS workspace_id,
    'access_logs'               AS source,
    true                        AS active,
    min(date_first)             AS first_at,
    max(date_last)              AS last_at,
    CAST(NULL AS BIGINT)        AS logins,
    CAST(NULL AS BIGINT)        AS messages
FROM slack_access_logs
WHERE dt BETWEEN $from AND $to
GROUP BY dt, user_id
