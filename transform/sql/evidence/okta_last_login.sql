-- Evidence from the Okta users snapshot's `lastLogin` ("the timestamp of the last login"), as
-- seen in each day's snapshot. Like Grid's last-active time it is attributed to the snapshot day
-- and counts as activity on that day only when the timestamp falls inside it; an older value
-- restates an earlier sign-in, which is how a user whose last sign-in predates the System Log's
-- 90-day retention (or the first collection) is `dormant` with a date instead of `never_seen`.
--
-- @app      okta
-- @table    okta_users
-- @priority 2
--
-- Parameters: $from DATE, $to DATE.
SELECT
    'okta'                                          AS app,
    dt                                              AS day,
    user_id                                         AS account_id,
    ''                                              AS workspace_id,
    'okta_last_login'                               AS source,
    bool_or(CAST(last_login AS DATE) = dt)          AS active,
    min(last_login)                                 AS first_at,
    max(last_login)                                 AS last_at,
    CAST(NULL AS BIGINT)                            AS logins,
    CAST(NULL AS BIGINT)                            AS messages
FROM okta_users
WHERE dt BETWEEN $from AND $to
  AND last_login IS NOT NULL
GROUP BY dt, user_id
