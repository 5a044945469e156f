-- Evidence from Okta's System Log: a successful `user.session.start` whose actor is a User is a
-- sign-in to Okta by that user, i.e. use of their Okta account, at `published` (the event sits in
-- the partition of that moment's UTC day).
--
-- Not evidence: failed sign-ins (outcome FAILURE: a password guess proves nothing about the
-- owner), events whose actor is not a User (SystemPrincipal, clients, apps) and events without
-- an actor id. SSO into an app (`user.authentication.sso`) is evidence for the target app's
-- account (sql/evidence/okta_sso_slack.sql) and goes to sso_last_seen (sql/sso/okta.sql); it is
-- not counted here, because every SSO follows a session start that already is.
--
-- @app      okta
-- @table    okta_log_events
-- @priority 1
--
-- Parameters: $from DATE, $to DATE (the days being derived).
SELECT
    'okta'                      AS app,
    dt                          AS day,
    actor_id                    AS account_id,
    ''                          AS workspace_id,
    'okta_sessions'             AS source,
    true                        AS active,
    min(published)              AS first_at,
    max(published)              AS last_at,
    count(*)                    AS logins,
    CAST(NULL AS BIGINT)        AS messages
FROM okta_log_events
WHERE dt BETWEEN $from AND $to
  AND event_type = 'user.session.start'
  AND outcome_result = 'SUCCESS'
  AND actor_type = 'User'
  AND actor_id IS NOT NULL
GROUP BY dt, actor_id
