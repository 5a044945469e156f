-- last_seen as of one snapshot day: for every account in that day's users snapshot, the newest
-- and oldest evidence of use up to the end of the day.
--
-- Evidence today: Slack access logs (team.accessLogs `date_last` / `date_first`). An account
-- with no evidence has NULL last_seen_at (never seen).
--
-- Parameters: $as_of DATE, $computed_at TIMESTAMP.
SELECT
    'slack'                                                    AS app,
    u.team_id                                                  AS workspace_id,
    u.user_id                                                  AS account_id,
    a.last_seen_at                                             AS last_seen_at,
    CASE WHEN a.last_seen_at IS NULL THEN NULL ELSE 'access_logs' END
                                                               AS last_seen_source,
    a.first_seen_at                                            AS first_seen_at,
    CAST($computed_at AS TIMESTAMP) AT TIME ZONE 'UTC'         AS computed_at
FROM slack_users AS u
LEFT JOIN (
    SELECT team_id, user_id, max(date_last) AS last_seen_at, min(date_first) AS first_seen_at
    FROM slack_access_logs
    WHERE dt <= CAST($as_of AS DATE)
    GROUP BY team_id, user_id
) AS a
  ON a.team_id = u.team_id AND a.user_id = u.user_id
WHERE u.dt = CAST($as_of AS DATE)
