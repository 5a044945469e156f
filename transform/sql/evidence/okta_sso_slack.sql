-- Evidence from Okta's System Log for Slack accounts: a successful `user.authentication.sso`
-- into the app instance that the Okta configuration maps to Slack (`mapped_app = 'slack'`) is a
-- sign-in to Slack by the person behind the Okta user, i.e. use of that person's Slack account,
-- at `published`. It is the only evidence there is for a Slack org without access logs or
-- audit logs (Free and Pro plans without Business+ analytics), and for members who only ever
-- sign in through Okta.
--
-- @app      slack
-- @table    okta_log_events
-- @priority 5
-- @snapshot okta_users
--
-- Which Slack account: the Okta user's email, lower-cased, is
--   (a) the Slack account's email, or
--   (b) the primary email of an identity of the HR export (`identities`) one of whose addresses
--       (primary or alternate) is the Slack account's email
-- (both read on the mapping day below). That is the person link the Okta simulator's ground
-- truth uses, and the one the default correlation rules make: the Okta user and the Slack account
-- correlate to one identity by email or alternate email. Every Slack account that matches is
-- credited (a person with one account per workspace signs into whichever instance Okta maps;
-- the System Log does not say which workspace, so each is credited).
--
-- Limits: the mapping is fixed here, not the configured [correlation] rules: no plus-addressing
-- or domain-alias normalisation, no employee-id match and no correlation overrides (the day's
-- correlation is computed after the evidence it would have to read). An Okta user whose email
-- matches no Slack account proves nothing for Slack. Failed SSOs, non-User actors and instances
-- mapped to another app (or to none) are not evidence for Slack; all SSOs go to sso_last_seen.
--
-- Mapping day: the okta_users, identities and slack_users snapshots of the newest okta_users
-- snapshot day on or before the event's day, or, for an event older than every snapshot (a
-- System Log backfill reaches 90 days back, the users snapshots start with the first run), the
-- oldest snapshot day. Later snapshots never change an older day's mapping unless that day's
-- events are re-committed (then the day is re-derived with the snapshots of that time).
--
-- Parameters: $from DATE, $to DATE (the days being derived); $snap_from DATE, $snap_to DATE
-- (`@snapshot okta_users`: every mapping day of $from .. $to lies between them, so each snapshot
-- table is read for those days only, not its whole history).
WITH sso AS (
    SELECT dt AS day, actor_id, published
    FROM okta_log_events
    WHERE dt BETWEEN $from AND $to
      AND event_type = 'user.authentication.sso'
      AND outcome_result = 'SUCCESS'
      AND actor_type = 'User'
      AND actor_id IS NOT NULL
      AND mapped_app = 'slack'
),
mapping_day AS (
    SELECT e.day, COALESCE(max(s.dt) FILTER (WHERE s.dt <= e.day), min(s.dt)) AS m
    FROM (SELECT DISTINCT day FROM sso) AS e
    CROSS JOIN (SELECT DISTINCT dt FROM okta_users WHERE dt BETWEEN $snap_from AND $snap_to) AS s
    GROUP BY e.day
),
person AS (
    -- Okta user → the addresses of the person on the mapping day: the Okta email, and every
    -- address of the identity whose primary email it is.
    SELECT u.dt AS m, u.user_id, lower(u.email) AS email
    FROM okta_users AS u
    WHERE u.dt BETWEEN $snap_from AND $snap_to AND u.dt IN (SELECT m FROM mapping_day) AND u.email IS NOT NULL
    UNION
    SELECT u.dt AS m, u.user_id, lower(a.alt) AS email
    FROM okta_users AS u
    JOIN (
        SELECT dt, email, unnest(alternate_emails) AS alt
        FROM identities
        WHERE dt BETWEEN $snap_from AND $snap_to AND dt IN (SELECT m FROM mapping_day) AND email IS NOT NULL
    ) AS a
      ON a.dt = u.dt AND lower(a.email) = lower(u.email)
    WHERE u.dt BETWEEN $snap_from AND $snap_to AND u.dt IN (SELECT m FROM mapping_day) AND a.alt IS NOT NULL
),
links AS (
    SELECT p.m, p.user_id AS okta_user_id, s.user_id AS slack_user_id, min(s.team_id) AS team_id
    FROM person AS p
    JOIN slack_users AS s
      ON s.dt = p.m AND lower(s.email) = p.email
    WHERE s.dt BETWEEN $snap_from AND $snap_to AND s.dt IN (SELECT m FROM mapping_day)
    GROUP BY p.m, p.user_id, s.user_id
)
SELECT
    'slack'                     AS app,
    e.day                       AS day,
    l.slack_user_id             AS account_id,
    min(l.team_id)              AS workspace_id,
    'okta_sso'                  AS source,
    true                        AS active,
    min(e.published)            AS first_at,
    max(e.published)            AS last_at,
    count(*)                    AS logins,
    CAST(NULL AS BIGINT)        AS messages
FROM sso AS e
JOIN mapping_day AS d ON d.day = e.day
JOIN links AS l ON l.m = d.m AND l.okta_user_id = e.actor_id
GROUP BY e.day, l.slack_user_id
