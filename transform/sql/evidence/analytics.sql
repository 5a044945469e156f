-- Evidence from admin.analytics.getFile type=member (Business+, Grid): one row per member and
-- day with `is_active`; the file has a day, not a time, so an active day counts from 00:00 UTC.
-- Inactive rows are kept (active = false): they say the source could see the account.
--
-- @app      slack
-- @table    slack_member_analytics
-- @priority 4
--
-- Parameters: $from DATE, $to DATE.
SELECT
    'slack'                                                         AS app,
    dt                                                              AS day,
    user_id                                                         AS account_id,
    min(team_id)                                                    AS workspace_id,
    'analytics'                                                     AS source,
    bool_or(is_active)                                              AS active,
    min(CASE WHEN is_active THEN CAST(dt AS TIMESTAMP) END)         AS first_at,
    max(CASE WHEN is_active THEN CAST(dt AS TIMESTAMP) END)         AS last_at,
    CAST(NULL AS BIGINT)                                            AS logins,
    sum(messages_posted)                                            AS messages
FROM slack_member_analytics
WHERE dt BETWEEN $from AND $to
GROUP BY dt, user_id
