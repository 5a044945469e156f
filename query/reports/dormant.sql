-- Dormant accounts as of a snapshot day.
--
-- Lists accounts that can still be used (not deactivated; people, not bots, apps or Slackbot)
-- that show no evidence of use in the `days` days ending on the as-of day, or were never seen.
-- Guests and invited-but-never-joined accounts are included.
--
-- Parameters (bound by `lastseen report dormant`):
--   $as_of   DATE  the snapshot day (default: the newest one)
--   $cutoff  DATE  as_of - days; an account is dormant when its last evidence is on or before it
--
-- Evidence comes from the `last_seen` table, which the daily run derives from the access logs.
SELECT
    u.team_id                                            AS workspace_id,
    u.user_id                                            AS account_id,
    u.name                                               AS username,
    u.email                                              AS email,
    COALESCE(NULLIF(u.display_name, ''), u.real_name)    AS display_name,
    CASE
        WHEN u.is_primary_owner    THEN 'primary_owner'
        WHEN u.is_owner            THEN 'owner'
        WHEN u.is_admin            THEN 'admin'
        WHEN u.is_ultra_restricted THEN 'guest_single'
        WHEN u.is_restricted       THEN 'guest_multi'
        ELSE 'member'
    END                                                  AS account_type,
    u.is_invited_user                                    AS invited,
    ls.last_seen_at                                      AS last_seen_at,
    ls.last_seen_source                                  AS last_seen_source,
    CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST(ls.last_seen_at AS DATE) AS INT)
                                                         AS days_since_last_seen,
    CASE WHEN ls.last_seen_at IS NULL THEN 'never_seen' ELSE 'dormant' END
                                                         AS state
FROM slack_users AS u
LEFT JOIN last_seen AS ls
       ON ls.dt = u.dt
      AND ls.app = 'slack'
      AND ls.workspace_id = u.team_id
      AND ls.account_id = u.user_id
WHERE u.dt = CAST($as_of AS DATE)
  AND NOT u.deleted
  AND NOT u.is_bot
  AND NOT u.is_app_user
  AND u.user_id <> 'USLACKBOT'
  AND (ls.last_seen_at IS NULL OR CAST(ls.last_seen_at AS DATE) <= CAST($cutoff AS DATE))
ORDER BY
    (u.is_primary_owner OR u.is_owner OR u.is_admin) DESC,
    ls.last_seen_at ASC NULLS LAST,
    u.team_id,
    u.user_id
