-- Okta's single sign-ons into app instances, per day: every successful
-- `user.authentication.sso` whose actor is a User, per (day, user, target app instance), for
-- `sso_last_seen` (sql/sso_last_seen.sql). One file per identity provider under sql/sso/ (the
-- file name is the IdP, an app whose accounts are the IdP's users: sql/accounts/okta.sql).
--
-- @table okta_log_events
--
-- Every instance counts, mapped to a lastseen app or not (`mapped_app`, set by the collector
-- from the configuration): an identity team asks "who still signs into Zoom" whether or not
-- lastseen collects Zoom's accounts. Failed SSOs, non-User actors and events without a target
-- app instance are left out.
--
-- Parameters: $from DATE, $to DATE (the days being folded).
SELECT
    'okta'                                                          AS idp,
    dt                                                              AS day,
    actor_id                                                        AS idp_user_id,
    target_app_id                                                   AS app_instance_id,
    first_value(target_app_label ORDER BY published DESC, target_app_label)
                                                                    AS app_instance_label,
    first_value(mapped_app ORDER BY published DESC, mapped_app)     AS mapped_app,
    min(published)                                                  AS first_at,
    max(published)                                                  AS last_at
FROM okta_log_events
WHERE dt BETWEEN $from AND $to
  AND event_type = 'user.authentication.sso'
  AND outcome_result = 'SUCCESS'
  AND actor_type = 'User'
  AND actor_id IS NOT NULL
  AND target_app_id IS NOT NULL
GROUP BY dt, actor_id, target_app_id
