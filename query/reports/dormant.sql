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
-- Evidence comes from the derived `last_seen` table (access logs, analytics, audit logins, Grid
-- last-active, whichever the plan provides). Its `state` says `never_seen` when a source could
-- have seen the account and did not, and `unknown` when no source covers the day at all.
SELECT
    a.workspace_id                                       AS workspace_id,
    a.account_id                                         AS account_id,
    a.username                                           AS username,
    a.email                                              AS email,
    a.display_name                                       AS display_name,
    a.account_type                                       AS account_type,
    a.status = 'invited'                                 AS invited,
    ls.last_seen_at                                      AS last_seen_at,
    ls.last_seen_source                                  AS last_seen_source,
    CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST(ls.last_seen_at AS DATE) AS INT)
                                                         AS days_since_last_seen,
    CASE
        WHEN ls.last_seen_at IS NOT NULL THEN 'dormant'
        ELSE COALESCE(ls.state, 'never_seen')
    END                                                  AS state
FROM accounts AS a
LEFT JOIN last_seen AS ls
       ON ls.dt = a.dt
      AND ls.app = a.app
      AND ls.account_id = a.account_id
WHERE a.dt = CAST($as_of AS DATE)
  AND a.status <> 'deactivated'
  AND a.account_type NOT IN ('bot', 'app', 'slackbot')
  AND (ls.last_seen_at IS NULL OR CAST(ls.last_seen_at AS DATE) <= CAST($cutoff AS DATE))
ORDER BY
    a.account_type IN ('primary_owner', 'owner', 'admin') DESC,
    ls.last_seen_at ASC NULLS LAST,
    a.workspace_id,
    a.account_id
