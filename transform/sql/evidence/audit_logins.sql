-- Evidence from the Audit Logs API (Enterprise Grid): each `user_login` is a use at
-- `date_create`, partitioned by its UTC day. Logouts and failed logins prove nothing.
--
-- @app      slack
-- @table    slack_audit_logins
-- @priority 2
--
-- Parameters: $from DATE, $to DATE.
SELECT
    'slack'                     AS app,
    dt                          AS day,
    user_id                     AS account_id,
    min(team_id)                AS workspace_id,
    'audit_logins'              AS source,
    true                        AS active,
    min(date_create)            AS first_at,
    max(date_create)            AS last_at,
    count(*)                    AS logins,
    CAST(NULL AS BIGINT)        AS messages
FROM slack_audit_logins
WHERE dt BETWEEN $from AND $to
  AND action = 'user_login'
GROUP BY dt, user_id
