-- Dormant accounts as of a snapshot day.
--
-- Lists accounts that can still be used (not deactivated; people, not bots, apps or Slackbot)
-- that show no evidence of use in the `days` days ending on the as-of day, or were never seen.
-- Guests and invited-but-never-joined accounts are included unless $exclude_guests is set; bots
-- and apps only when $include_bots is set; Slackbot never.
--
-- @title     Dormant Slack accounts
-- @snapshots last_seen
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     days            Dormant after this many days without evidence of use. Also binds $cutoff = $as_of - $days: an account is dormant when its last evidence is on or before it.
-- @param     workspace       Only this workspace (team id); default: all.
-- @param     exclude_guests  Leave guest accounts out (included by default).
-- @param     include_bots    Include bot and app accounts (excluded by default).
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
        WHEN u.is_bot OR u.is_app_user THEN 'bot'
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
  AND u.user_id <> 'USLACKBOT'
  AND ($include_bots OR NOT (u.is_bot OR u.is_app_user))
  AND NOT ($exclude_guests AND (u.is_restricted OR u.is_ultra_restricted))
  AND ($workspace IS NULL OR u.team_id = $workspace)
  AND (ls.last_seen_at IS NULL OR CAST(ls.last_seen_at AS DATE) <= CAST($cutoff AS DATE))
ORDER BY
    (u.is_primary_owner OR u.is_owner OR u.is_admin) DESC,
    ls.last_seen_at ASC NULLS LAST,
    u.team_id,
    u.user_id;

-- @chart line Dormant accounts per snapshot day (last 90 days)
-- The same rule applied to each earlier snapshot day of the lake, with that day as the as-of day.
SELECT u.dt AS day, count(*) AS dormant_accounts
FROM slack_users AS u
JOIN (SELECT DISTINCT dt FROM last_seen) AS days ON days.dt = u.dt
LEFT JOIN last_seen AS ls
       ON ls.dt = u.dt
      AND ls.app = 'slack'
      AND ls.workspace_id = u.team_id
      AND ls.account_id = u.user_id
WHERE u.dt <= CAST($as_of AS DATE)
  AND CAST(u.dt AS INT) > CAST(CAST($as_of AS DATE) AS INT) - 90
  AND NOT u.deleted
  AND u.user_id <> 'USLACKBOT'
  AND ($include_bots OR NOT (u.is_bot OR u.is_app_user))
  AND NOT ($exclude_guests AND (u.is_restricted OR u.is_ultra_restricted))
  AND ($workspace IS NULL OR u.team_id = $workspace)
  AND (ls.last_seen_at IS NULL OR CAST(CAST(ls.last_seen_at AS DATE) AS INT) <= CAST(u.dt AS INT) - $days)
GROUP BY u.dt
ORDER BY u.dt;

-- @chart bar Dormant accounts by account type
SELECT account_type, count(*) AS accounts FROM report GROUP BY account_type ORDER BY accounts DESC, account_type;

-- @chart bar Dormant accounts by time since last seen
SELECT bucket, accounts FROM (
    SELECT
        CASE
            WHEN days_since_last_seen IS NULL THEN 6
            WHEN days_since_last_seen <= 60   THEN 1
            WHEN days_since_last_seen <= 90   THEN 2
            WHEN days_since_last_seen <= 180  THEN 3
            WHEN days_since_last_seen <= 365  THEN 4
            ELSE 5
        END AS k,
        count(*) AS accounts
    FROM report
    GROUP BY 1
) AS b
JOIN (VALUES (1, 'up to 60 days'), (2, '61-90 days'), (3, '91-180 days'), (4, '181-365 days'),
             (5, 'over a year'), (6, 'never seen')) AS names (k, bucket)
  ON names.k = b.k
ORDER BY b.k;
