-- orphans: live human accounts that no governance identity owns.
--
-- Lists accounts of the as-of snapshot that are not deactivated, are people (members, admins,
-- owners, guests, invited accounts; never bots, apps or Slackbot, which correlation treats as
-- service accounts) and whose correlation (`account_identity`) found no owner: `orphan` (no rule
-- matched any identity) or `no_owner` (an override says nobody owns it). Ambiguous accounts
-- (claimed by several identities) are not orphans: the review report lists them to investigate.
-- Without an identity export (no `account_identity` rows) the report is empty.
--
-- Parameters (bound by `lastseen report orphans`):
--   $as_of           DATE     the snapshot day (--as-of; default: the newest)
--   $cutoff          DATE     as_of - days (--days): `dormant` below is last use on/before it
--   $app             VARCHAR  only accounts of this app (--app); NULL = every app
--   $workspace       VARCHAR  only accounts of this workspace id (home or member); NULL = all
--   $exclude_guests  BOOLEAN  leave out guests (included by default: a guest nobody sponsors is
--                             the classic orphan)
--   (it takes no --department or --include-bots: orphans have no owner, so no department, and
--   service accounts are never orphans)
--
-- Columns:
--   app              the app the account is of (accounts.app)
--   workspace_id, account_id, username, email, display_name, account_type, status, billable,
--   created_at       from the users snapshot (`accounts`)
--   match_status     orphan | no_owner
--   matched_value    for no_owner, the override's reason
--   last_seen_at, last_seen_source, days_since_last_seen, state   from `last_seen`
--   dormant          no evidence of use since the cutoff, or never seen
--   privileged, guest as in the dormant report
--
-- Sorted: privileged first, then in use before dormant (an orphan someone uses is the riskier
-- one), then by account id.
--
-- @title     Orphaned accounts (no owner identity)
-- @snapshots last_seen
-- @param     as_of           The snapshot day (default: the newest one).
-- @param     days            The `dormant` column: no evidence of use in this many days (binds $cutoff = $as_of - $days).
-- @param     app             Only accounts of this app (e.g. slack); default: every app.
-- @param     workspace       Only accounts of this workspace (team id; home or member); default: all.
-- @param     exclude_guests  Leave single- and multi-channel guests out (included by default).
--
SELECT
    a.app,
    a.workspace_id,
    a.account_id,
    a.username,
    a.email,
    a.display_name,
    a.account_type,
    a.status,
    a.billable,
    a.created_at,
    ai.match_status,
    ai.matched_value,
    ls.last_seen_at,
    ls.last_seen_source,
    CAST(CAST($as_of AS DATE) AS INT) - CAST(CAST(ls.last_seen_at AS DATE) AS INT)  AS days_since_last_seen,
    ls.state,
    ls.last_seen_at IS NULL OR CAST(ls.last_seen_at AS DATE) <= CAST($cutoff AS DATE) AS dormant,
    a.account_type IN ('primary_owner', 'owner', 'admin')                           AS privileged,
    a.account_type IN ('guest_multi', 'guest_single')                               AS guest
FROM accounts AS a
JOIN account_identity AS ai
  ON ai.dt = a.dt AND ai.app = a.app AND ai.account_id = a.account_id
LEFT JOIN last_seen AS ls
       ON ls.dt = a.dt AND ls.app = a.app AND ls.account_id = a.account_id
WHERE a.dt = CAST($as_of AS DATE)
  AND a.status <> 'deactivated'
  AND a.account_type NOT IN ('bot', 'app', 'slackbot', 'workflow_bot', 'connector_bot')
  AND ai.match_status IN ('orphan', 'no_owner')
  AND NOT ($exclude_guests AND a.account_type IN ('guest_multi', 'guest_single'))
  AND ($app IS NULL OR a.app = $app)
  AND ($workspace IS NULL OR a.workspace_id = $workspace
       OR COALESCE(array_has(a.workspace_ids, $workspace), false))
ORDER BY privileged DESC, dormant ASC, a.app, a.workspace_id, a.account_id;

-- @chart bar Orphaned accounts by account type
SELECT account_type, count(*) AS accounts FROM report GROUP BY account_type ORDER BY accounts DESC, account_type;

-- @chart bar Orphaned accounts in use and dormant
SELECT CASE WHEN dormant THEN 'dormant' ELSE 'in use' END AS in_use, count(*) AS accounts
FROM report
GROUP BY 1
ORDER BY 1 DESC;
